"""Benchmark `RegionExtractor.extract` frames/s (random weights), wired as `actbert bench detector`.

Random weights give the same network cost as trained ones; only the post-processing varies with how
many boxes pass the score threshold (random weights with threshold 0 keep many, so this is a slight
upper bound on NMS time). Reports wall-clock frames/s and CPU seconds per frame: on a shared machine
the CPU time is the figure that does not depend on what else is running.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

DEFAULT_CASES = ["tiny:112x112:4", "fasterrcnn_mobilenet_v3_large_320_fpn:480x640:91"]


def _parser() -> argparse.ArgumentParser:
    from actbert.cli.options import HelpFormatter, add_regions_per_frame

    p = argparse.ArgumentParser(prog="actbert bench detector", description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--cases", nargs="+", default=DEFAULT_CASES,
                   help="BACKBONE:HxW:NUM_CLASSES (num_classes includes background)")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8], help="frames per extract() call")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--frames", type=int, default=32, help="frames timed per (case, batch size), after one warm-up batch")
    add_regions_per_frame(p, 10, "regions kept per key frame")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the rows as json here")
    return p


def bench_case(backbone: str, height: int, width: int, num_classes: int, batch_size: int, frames: int,
               top_k: int = 10, seed: int = 0) -> dict:
    import torch

    from actbert.video.detector import RegionExtractor, build_detector

    torch.manual_seed(seed)
    ex = RegionExtractor(build_detector(backbone, num_classes), top_k=top_k, backbone=backbone, batch_size=batch_size)
    rng = np.random.default_rng(seed)
    imgs = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(batch_size)]
    ex.extract(imgs)  # warm-up: allocator, oneDNN kernel selection
    n_batches = max(1, frames // batch_size)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n_batches):
        ex.extract(imgs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = n_batches * batch_size
    return {"backbone": backbone, "size": f"{height}x{width}", "batch": batch_size, "frames": n,
            "frames_per_s": n / wall, "cpu_s_per_frame": cpu / n, "feature_dim": ex.feature_dim}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"threads={args.threads} torch={torch.__version__} load_avg_1min={load:.1f} cpus={os.cpu_count()}")
    print(f"{'backbone':<40} {'size':>9} {'batch':>5} {'frames/s':>9} {'cpu s/frame':>12}")
    rows = []
    for case in args.cases:
        try:
            backbone, size, ncls = case.split(":")
            h, w = (int(v) for v in size.lower().split("x"))
        except ValueError:
            print(f"bad --cases entry {case!r}; expected BACKBONE:HxW:NUM_CLASSES", file=sys.stderr)
            return 2
        for b in args.batch_sizes:
            row = bench_case(backbone, h, w, int(ncls), b, args.frames, args.regions_per_frame)
            rows.append(row)
            print(f"{backbone:<40} {row['size']:>9} {b:>5} {row['frames_per_s']:>9.1f} {row['cpu_s_per_frame']:>12.4f}",
                  flush=True)
    if args.json:
        from actbert.utils import atomic_write_json

        atomic_write_json(args.json, {"threads": args.threads, "load_avg_1min": load, "rows": rows})
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
