"""Paired bootstrap intervals: the point difference is the metric's, the interval covers it, and it lies
above zero only when the items support the difference."""
from __future__ import annotations

import numpy as np
import pytest

from actbert.metrics.bootstrap import paired_bootstrap


def test_identical_models_have_a_zero_interval():
    x = np.random.default_rng(0).integers(0, 2, 40)
    r = paired_bootstrap(x, x, resamples=500)
    assert r["diff"] == r["low"] == r["high"] == 0.0 and r["n_items"] == 40


def test_clear_win_is_supported_and_a_coin_flip_is_not():
    rng = np.random.default_rng(1)
    assert paired_bootstrap(np.ones(30), np.zeros(30), resamples=500)["low"] == 1.0
    a, b = rng.integers(0, 2, 60), rng.integers(0, 2, 60)
    r = paired_bootstrap(a, b, resamples=2000)
    assert r["low"] < r["diff"] < r["high"] and r["low"] < 0 < r["high"]
    assert r["diff"] == pytest.approx(a.mean() - b.mean())
    assert paired_bootstrap(a, b, resamples=2000) == r  # seeded


def test_ratio_items_and_groups():
    # two videos: 3 of 4 seconds right vs 1 of 10; the metric is pooled seconds, not the mean of videos
    r = paired_bootstrap([3, 1], [0, 0], den=[4, 10], resamples=200)
    assert r["a"] == pytest.approx(4 / 14)
    # groups: the mean of per-group ratios (CrossTask's average over tasks), not the pooled ratio (1/3)
    r = paired_bootstrap([1, 1, 0, 0], [0, 0, 0, 0], den=[1, 1, 2, 2], groups=["t1", "t1", "t2", "t2"], resamples=200)
    assert r["a"] == pytest.approx(0.5) and r["low"] <= 0.5 <= r["high"]
    # a group of one item still varies between resamples (a stratified bootstrap would give it none)
    r = paired_bootstrap([1, 0, 1], [0, 0, 0], groups=["t1", "t2", "t3"], resamples=500)
    assert r["diff"] == pytest.approx(2 / 3) and r["low"] < r["diff"] < r["high"]
    with pytest.raises(ValueError, match="same non-zero number"):
        paired_bootstrap([1, 0], [1])
