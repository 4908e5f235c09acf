"""Paired bootstrap confidence intervals over test items: is model A better than model B on these items?

Both models are scored on the same items (videos, queries, questions), so the question is about the
per-item differences: one resample of the items (with replacement) gives one value of
``metric(A) - metric(B)``, and the 2.5th and 97.5th percentiles of many resamples are the 95 % interval
(the percentile bootstrap). A difference whose interval lies above zero is one the test items support.

Items carry a numerator and a denominator, so one function covers plain means (denominator 1: a query's
R@1 hit, a question's correctness) and ratios whose unit is bigger than one item (a video's correct
seconds over its seconds, a video's hit steps over its steps), and an optional group: a metric that
averages per-group ratios (CrossTask's recall, averaged over tasks) is resampled within each group (the
stratified bootstrap), so every resample has every group. Why not `scipy.stats.bootstrap`: it resamples
one flat sample and has no strata; the resampling here is a few lines of numpy.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 10_000


def _groups(groups: Sequence | None, n: int) -> list[np.ndarray]:
    if groups is None:
        return [np.arange(n)]
    keys = list(groups)
    if len(keys) != n:
        raise ValueError(f"groups has {len(keys)} entries for {n} items")
    order: dict = {}
    for i, g in enumerate(keys):
        order.setdefault(g, []).append(i)
    return [np.asarray(ix) for ix in order.values()]


def _statistic(num: np.ndarray, den: np.ndarray, strata: list[np.ndarray], picks: list[np.ndarray]) -> np.ndarray:
    """Mean over groups of sum(num) / sum(den) within the group, for every resample (rows of `picks`)."""
    per_group = []
    for ix, pick in zip(strata, picks):
        chosen = ix[pick]  # [R, n_g] item indices
        d = den[chosen].sum(-1)
        per_group.append(np.divide(num[chosen].sum(-1), d, out=np.zeros(d.shape), where=d > 0))
    return np.mean(per_group, axis=0)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], den: Sequence[float] | None = None,
                     groups: Sequence | None = None, resamples: int = RESAMPLES, confidence: float = CONFIDENCE,
                     seed: int = 0) -> dict:
    """Difference metric(a) - metric(b) over the same items, with a percentile bootstrap interval.

    `a[i]`, `b[i]`: item i's numerator under each model (a hit 0/1, a score, correct seconds); `den[i]`:
    its denominator (default 1); `groups[i]`: its stratum (default: one). The metric is the mean over
    groups of sum(num) / sum(den). Returns ``a, b, diff, low, high, n_items, confidence, resamples``;
    ``low > 0`` means the items support "a is better". Seeded: the same inputs give the same interval.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n = len(a)
    if n == 0 or len(b) != n:
        raise ValueError(f"paired_bootstrap needs the same non-zero number of items for both models, got {n} and {len(b)}")
    d = np.ones(n) if den is None else np.asarray(den, dtype=np.float64)
    if len(d) != n:
        raise ValueError(f"den has {len(d)} entries for {n} items")
    strata = _groups(groups, n)
    rng = np.random.default_rng(seed)
    picks = [rng.integers(0, len(ix), size=(resamples, len(ix))) for ix in strata]
    whole = [np.arange(len(ix))[None] for ix in strata]
    point_a, point_b = float(_statistic(a, d, strata, whole)[0]), float(_statistic(b, d, strata, whole)[0])
    diffs = _statistic(a, d, strata, picks) - _statistic(b, d, strata, picks)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(diffs, [tail, 100.0 - tail])
    return {"a": point_a, "b": point_b, "diff": point_a - point_b, "low": float(low), "high": float(high),
            "n_items": n, "confidence": confidence, "resamples": resamples}
