"""`actbert bench NAME ...`: the benchmarks whose results are in docs/performance.md."""
from __future__ import annotations

import argparse
import importlib

DESCRIPTION = "Run a benchmark; `actbert bench NAME --help` lists its flags. Results: docs/performance.md."

BENCHMARKS = {
    "train-step": ("actbert.bench.train_step", "model training step: samples/s, GFLOP/s, peak RSS"),
    "peer-paddle": ("actbert.bench.peer_paddle", "our training step vs PaddleVideo's, in turns, and the ratio"),
    "train-step-ab": ("actbert.bench.train_step_ab", "our training step in two settings (environments), in turns: the ratio"),
    "data": ("actbert.bench.data_loading", "data loader samples/s with workers at base sizes"),
    "store": ("actbert.bench.store", "feature store random-access reads/s and streaming MB/s"),
    "extraction": ("actbert.bench.extraction", "decode fps, action net clips/s, detector frames/s, end to end"),
    "detector": ("actbert.bench.detector", "region detector frames/s"),
    "pretrain": ("actbert.bench.pretrain", "end-to-end pre-training samples/s, data share, DDP scaling"),
    "retrieval": ("actbert.bench.retrieval", "retrieval time vs N: naive, cached, two-stage"),
    "search": ("actbert.bench.search", "search latency and memory vs index size"),
    "extraction-precision": ("actbert.bench.extraction_precision", "bf16 vs float32 feature extraction: effect on the demo's retrieval R@1"),
    "index": ("actbert.bench.index_speed", "`actbert index` on real videos with the real-data backbones: video-s per wall-s"),
    "serve": ("actbert.bench.serve", "actbert serve: /api/search p50/p95 over HTTP, page load to first results"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(BENCHMARKS), help="which benchmark: " + "; ".join(
        f"{k}: {v[1]}" for k, v in BENCHMARKS.items()))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(BENCHMARKS[args.name][0])
    return int(module.main(args.args) or 0)
