"""`actbert train-action-net`: train the 3D CNN on (clip, verb) pairs mined from narration."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

DESCRIPTION = """Train the action network (ActBERT's global action features) on narration windows labelled
with their first kept verb: --captions is HowTo100M-style json {video_id: {"start", "end", "text"}},
--vocab an action vocabulary from `actbert vocab`, --videos the video files (named <video_id>.<ext>).
Lines without a kept verb are skipped and counted. Starts from --weights (a local file, or 'kinetics' when
torchvision's file is already in the torch hub cache; nothing is ever downloaded) or from scratch."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from actbert.cli.options import add_device, add_no_progress, add_out, add_val_fraction
    from actbert.video.action_models import ARCHS

    parser.add_argument("--videos", required=True, help="directory of videos, or a text file with one path per line")
    parser.add_argument("--captions", required=True, help='narration json {video_id: {"start", "end", "text"}}')
    parser.add_argument("--vocab", required=True, help="action vocabulary json (actbert vocab)")
    add_out(parser, "output folder for action_net.safetensors + config.json")
    parser.add_argument("--arch", default="r3d_18", choices=sorted(ARCHS),
                        help="network: r3d_18 for real data; tiny3d for the CPU demo on small synthetic clips")
    parser.add_argument("--weights", default=None,
                        help="initial weights: a .safetensors / torchvision .pth file, or 'kinetics'")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the training clips")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per optimisation step")
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW peak learning rate (warm-up then cosine)")
    parser.add_argument("--weight-decay", type=float, default=0.05, help="AdamW weight decay")
    parser.add_argument("--label-smoothing", type=float, default=0.0, help="cross-entropy label smoothing")
    add_val_fraction(parser, 0.1)
    parser.add_argument("--clip-frames", type=int, default=None, help="frames per clip (default: the arch's)")
    parser.add_argument("--fps", type=float, default=None, help="clip frame rate (default: the arch's)")
    parser.add_argument("--resize", type=int, default=None, help="short side before cropping (default: the arch's)")
    parser.add_argument("--crop", type=int, default=None, help="square crop fed to the network (default: the arch's)")
    parser.add_argument("--no-hflip", action="store_true",
                        help="no horizontal-flip augmentation (when verbs depend on left/right)")
    parser.add_argument("--max-window", type=float, default=None,
                        help="seconds of a long narration window to decode (default: two clip lengths)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers when clips are decoded per step")
    add_device(parser)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (split, augmentation, init)")
    add_no_progress(parser)


def _read_captions(path: Path):
    """Captions through the project's HowTo100M reader (skips empty lines, counts them)."""
    from actbert.data.formats.howto100m import read_captions

    try:
        from actbert.data.formats.errors import ReadReport

        report = ReadReport()
        return read_captions(path, report), report
    except ImportError:  # older reader without ReadReport
        return read_captions(path), None


def run(args: argparse.Namespace) -> int:
    import torch

    from actbert.data.vocab import ActionVocab
    from actbert.video.action_net import ActionTrainConfig, build_action_samples, save_action_net, train_action_net
    from actbert.video.extract import list_videos, video_id_of

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    vocab = ActionVocab.load(args.vocab)
    captions, read_report = _read_captions(Path(args.captions))
    videos = {video_id_of(p): str(p) for p in list_videos(args.videos)}
    samples, skipped = build_action_samples(captions, vocab, videos)
    print(f"{len(samples)} labelled clips from {len({s.video_id for s in samples})} videos; "
          f"skipped lines: {json.dumps(skipped)}"
          + (f"; skipped by the caption reader: {dict(read_report.counts)}" if read_report and read_report.total else ""))
    if not samples:
        print("nothing to train on: no caption line has a verb of the vocabulary and a video file")
        return 2
    cfg = ActionTrainConfig(arch=args.arch, weights=args.weights, epochs=args.epochs, batch_size=args.batch_size,
                            lr=args.lr, weight_decay=args.weight_decay, label_smoothing=args.label_smoothing,
                            held_out_fraction=args.val_fraction, seed=args.seed, clip_frames=args.clip_frames,
                            fps=args.fps, resize=args.resize, crop=args.crop, hflip=not args.no_hflip,
                            max_window_s=args.max_window, num_workers=args.workers, device=args.device,
                            verbs=list(vocab.verbs), progress=not args.no_progress)
    net = train_action_net(samples, num_classes=len(vocab), cfg=cfg)
    net.config.training["skipped_lines"] = skipped
    save_action_net(net, args.out)
    rep = net.report
    rows = [("arch", args.arch), ("classes (verbs)", len(vocab)), ("clips used: train", rep.train_clips),
            ("clips used: held-out", rep.held_out_clips),
            ("lines skipped: no kept verb", skipped["no_verb"]), ("lines skipped: no video file", skipped["no_video"]),
            ("lines skipped: end <= start", skipped["bad_time"]), ("unreadable videos", len(rep.failures)),
            ("train accuracy (last epoch)", f"{rep.train_accuracy:.3f}"),
            ("held-out accuracy", f"{rep.held_out_accuracy:.3f}"), ("seconds", f"{rep.seconds:.1f}"),
            ("saved to", args.out)]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"  {k:<{width}}  {v}" for k, v in rows))
    for path, reason in rep.failures:
        print(f"  FAILED {path}: {reason}")
    return 0
