"""The training-step benchmark measures a real step and attributes FLOPs to every part of the model."""
from __future__ import annotations

from actbert.bench.train_step import run


def test_train_step_benchmark_reports_consistent_numbers():
    r = run("tiny", batch_size=2, steps=1, warmup=0, precision="fp32", threads=None)
    assert r["samples_per_s"] > 0 and r["peak_rss_gib"] > 0
    parts = r["forward_gflop_per_sample_by_part"]
    assert set(parts) == {"text", "region", "action", "tnt", "heads"} and all(v > 0 for v in parts.values())
    # training (forward + backward) costs more than the forward pass of the counted parts alone
    assert r["gflop_per_sample"] > sum(parts.values())
    assert 0 < r["fraction_of_fp32_peak"] < 1.5
