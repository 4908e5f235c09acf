"""`actbert bench NAME ...`: the benchmarks whose results are in docs/performance.md."""
from __future__ import annotations

import argparse
import importlib

DESCRIPTION = "Run a benchmark; `actbert bench NAME --help` lists its flags. Results: docs/performance.md."

BENCHMARKS = {
    "train-step": ("actbert.bench.train_step", "model training step: samples/s, GFLOP/s, peak RSS"),
    "data": ("actbert.bench.data_loading", "data loader samples/s with workers at base sizes"),
    "store": ("actbert.bench.store", "feature store random-access reads/s and streaming MB/s"),
    "extraction": ("actbert.bench.extraction", "decode fps, action net clips/s, detector frames/s, end to end"),
    "detector": ("actbert.bench.detector", "region detector frames/s"),
    "pretrain": ("actbert.bench.pretrain", "end-to-end pre-training samples/s, data share, DDP scaling"),
    "retrieval": ("actbert.bench.retrieval", "retrieval time vs N: naive, cached, two-stage"),
    "search": ("actbert.bench.search", "search latency and memory vs index size"),
    "serve": ("actbert.bench.serve", "actbert serve: /api/search p50/p95 over HTTP, page load to first results"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(BENCHMARKS), help="which benchmark: " + "; ".join(
        f"{k}: {v[1]}" for k, v in BENCHMARKS.items()))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(BENCHMARKS[args.name][0])
    return int(module.main(args.args) or 0)
