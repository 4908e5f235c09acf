"""`actbert train-detector`: train or fine-tune the Faster R-CNN region detector on a COCO-style json."""
from __future__ import annotations

import argparse
import math
import sys

DESCRIPTION = (
    "Train or fine-tune the region detector (torchvision Faster R-CNN) on a COCO-style box-annotated set, "
    "e.g. the one `actbert world` writes. Writes a region-extractor folder (model.safetensors + config.json, "
    "read by `actbert extract`) and metrics.json (held-out mAP@0.5, per-class AP and recall)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from actbert.cli.options import add_no_progress, add_out, add_regions_per_frame, add_val_fraction
    from actbert.video.detector import BACKBONES

    parser.add_argument("--coco", required=True, metavar="JSON",
                        help="COCO detection json; image file_names are relative to its folder")
    add_out(parser, "output folder for the extractor and metrics.json")
    parser.add_argument("--backbone", default="tiny", choices=sorted(BACKBONES),
                        help="detector backbone: tiny (synthetic world, trains on CPU in minutes), "
                             "fasterrcnn_mobilenet_v3_large_320_fpn (CPU default for real video), "
                             "fasterrcnn_mobilenet_v3_large_fpn, fasterrcnn_resnet50_fpn_v2 (quality)")
    parser.add_argument("--weights", default=None, metavar="PATH",
                        help="start from these weights: a .safetensors / torchvision .pth file, an extractor "
                             "folder, or 'torchvision' (COCO weights already in the torch hub cache; never downloads)")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the training images")
    parser.add_argument("--batch-size", type=int, default=8, help="images per optimisation step")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: adamw 3e-3 from scratch, 1e-4 from --weights; "
                             "sgd 0.02 / 0.01)")
    parser.add_argument("--optimizer", default="adamw", choices=["sgd", "adamw"], help="optimiser")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay")
    add_val_fraction(parser, 0.2, "images")
    parser.add_argument("--seed", type=int, default=0, help="seed for the split, initialisation and augmentation")
    parser.add_argument("--min-size", type=int, default=None, help="resize frames so the short side is this (default per backbone)")
    parser.add_argument("--max-size", type=int, default=None, help="cap for the long side after resizing (default per backbone)")
    add_regions_per_frame(parser, 10, "regions kept per key frame by the saved extractor")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop training after this many minutes")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    add_no_progress(parser)


def _fmt(x: float) -> str:
    return "  n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:5.3f}"


def run(args: argparse.Namespace) -> int:
    import torch

    from actbert.video.detector_train import train_detector

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        result = train_detector(
            args.coco, args.out, backbone=args.backbone, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            val_fraction=args.val_fraction, seed=args.seed, progress=not args.no_progress, optimizer=args.optimizer,
            weights=args.weights, weight_decay=args.weight_decay, min_size=args.min_size, max_size=args.max_size,
            top_k=args.regions_per_frame, max_seconds=args.max_minutes * 60 if args.max_minutes else None)
    except (FileNotFoundError, ValueError, FloatingPointError) as exc:
        print(f"actbert train-detector: error: {exc}", file=sys.stderr)
        return 2
    m = result.metrics
    print(f"\ntrained {m['backbone']} for {m['epochs_run']} epoch(s), {m['steps']} steps, {m['seconds']:.0f} s "
          f"on {m['num_train_images']} images; held out {m['num_val_images']}")
    if m["skipped"]:
        print("skipped while reading annotations: " + ", ".join(f"{k}={v}" for k, v in m["skipped"].items()))
    print(f"mAP@0.5: {_fmt(m['map50_initial'])} before -> {_fmt(m['map50'])} after")
    if m["ap_per_class"]:
        width = max(len(n) for n in m["ap_per_class"]) + 2
        print(f"{'class':<{width}} {'AP@0.5':>7} {'recall':>7} {'boxes':>6}")
        for name, ap in m["ap_per_class"].items():
            print(f"{name:<{width}} {_fmt(ap):>7} {_fmt(m['recall_per_class'][name]):>7} {m['num_gt_per_class'][name]:>6}")
        print(f"(recall: ground truth found by a detection of score >= {m['recall_score_thresh']})")
    print(f"extractor + metrics.json written to {result.out_dir}")
    return 0
