"""`actbert bench store`: random-access reads/s and streaming MB/s of the feature store on this machine.

Builds a store of synthetic videos (base-like dims by default), then times
  * random access: `store[vid]` for ids drawn uniformly at random (cold handle cache per run),
  * streaming: `store.iter_videos()` over every shard, MB/s counted in float32 in-memory bytes and
    in on-disk bytes.
The page cache is warm after the write (the benchmark says so); numbers are what a data loader sees
when the store fits in RAM. `make_synthetic_video` is also used by the tests.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from actbert.data.store import FeatureStore, StoreWriter, VideoFeatures


def make_synthetic_video(vid: str, rng: np.random.Generator, num_clips: int = 20, num_frames: int = 10,
                         boxes: int = 10, action_dim: int = 512, region_dim: int = 1024, num_classes: int = 91,
                         clip_s: float = 2.0, valid_frac: float = 0.8, image_size: tuple[int, int] = (360, 640)
                         ) -> VideoFeatures:
    """A VideoFeatures with the right shapes and plausible values (softmax classes, boxes inside the image)."""
    h, w = image_size
    duration = num_clips * clip_s
    starts = np.arange(num_clips, dtype=np.float32) * clip_s
    logits = rng.standard_normal((num_frames, boxes, num_classes)).astype(np.float32) * 2
    cls = np.exp(logits - logits.max(-1, keepdims=True))
    cls /= cls.sum(-1, keepdims=True)
    xy = rng.uniform(0, 0.6, (num_frames, boxes, 2)) * [w, h]
    wh = rng.uniform(0.05, 0.4, (num_frames, boxes, 2)) * [w, h]
    box = np.concatenate([xy, np.minimum(xy + wh, [w, h])], -1).astype(np.float32)
    score = np.sort(rng.uniform(0.05, 1.0, (num_frames, boxes)), axis=1)[:, ::-1].astype(np.float32)
    valid = np.arange(boxes)[None, :] < np.maximum(1, rng.binomial(boxes, valid_frac, num_frames))[:, None]
    return VideoFeatures(
        video_id=vid,
        action=np.abs(rng.standard_normal((num_clips, action_dim))).astype(np.float32),
        action_times=np.stack([starts, starts + clip_s], 1),
        region=np.abs(rng.standard_normal((num_frames, boxes, region_dim))).astype(np.float32),
        region_boxes=box, region_cls=cls, region_score=score, region_valid=valid,
        frame_times=(np.arange(num_frames, dtype=np.float32) + 0.5) * (duration / max(num_frames, 1)),
        image_size=(h, w), duration=float(duration))


def build_store(root: Path, videos: int, seed: int = 0, shard_videos: int = 64, **dims) -> float:
    """Write `videos` synthetic videos with clip counts 5..60; returns the write time (s)."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    with StoreWriter(root, part="bench", shard_videos=shard_videos) as w:
        for i in range(videos):
            w.add(make_synthetic_video(f"vid{i:06d}", rng, num_clips=int(rng.integers(5, 61)), **dims))
    return time.perf_counter() - t0


def run_bench(root: Path, random_reads: int, seed: int = 0) -> dict:
    store = FeatureStore(root)
    ids = store.video_ids()
    disk = sum(p.stat().st_size for p in (root / "shards").glob("*.safetensors"))
    rng = np.random.default_rng(seed + 1)
    picks = [ids[i] for i in rng.integers(0, len(ids), random_reads)]
    fresh = FeatureStore(root)  # no open handles yet: includes shard opening costs
    t0 = time.perf_counter()
    mem = 0
    for vid in picks:
        mem += fresh[vid].nbytes()
    t_rand = time.perf_counter() - t0
    t0 = time.perf_counter()
    mem_stream = sum(v.nbytes() for v in FeatureStore(root).iter_videos())
    t_stream = time.perf_counter() - t0
    t0 = time.perf_counter()
    FeatureStore(root)
    t_open = time.perf_counter() - t0
    return {"videos": len(ids), "shards": len(store.shards()), "disk_MB": disk / 1e6,
            "open_s": t_open, "random_reads": random_reads, "random_reads_per_s": random_reads / t_rand,
            "random_MB_per_s_float32": mem / t_rand / 1e6, "stream_videos_per_s": len(ids) / t_stream,
            "stream_MB_per_s_float32": mem_stream / t_stream / 1e6, "stream_MB_per_s_disk": disk / t_stream / 1e6}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="actbert bench store", description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=300, help="synthetic videos written")
    ap.add_argument("--random-reads", type=int, default=1000, help="random video reads timed")
    ap.add_argument("--shard-videos", type=int, default=64, help="videos per shard file")
    ap.add_argument("--action-dim", type=int, default=512, help="action feature size")
    ap.add_argument("--region-dim", type=int, default=1024, help="region feature size")
    ap.add_argument("--classes", type=int, default=91, help="region classes of the detector distribution")
    ap.add_argument("--frames", type=int, default=10, help="key frames per video")
    ap.add_argument("--boxes", type=int, default=10, help="boxes per key frame")
    ap.add_argument("--root", type=Path, default=None, help="store folder (default: a temp dir, removed after)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args(argv)
    root = args.root or Path(tempfile.mkdtemp(prefix="actbert-bench-store-"))
    try:
        if args.root is None or not (root / "shards").exists():
            t_write = build_store(root, args.videos, shard_videos=args.shard_videos, action_dim=args.action_dim,
                                  region_dim=args.region_dim, num_classes=args.classes, num_frames=args.frames,
                                  boxes=args.boxes)
        else:
            t_write = float("nan")
        res = run_bench(root, args.random_reads)
        res["write_videos_per_s"] = args.videos / t_write
        res["config"] = {k: v for k, v in vars(args).items() if k not in ("root", "json")}
    finally:
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        for k, v in res.items():
            print(f"{k:28s} {v:.1f}" if isinstance(v, float) else f"{k:28s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
