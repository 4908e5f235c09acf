"""Paired bootstrap confidence intervals over test items: is model A better than model B on these items?

Both models are scored on the same items (videos, queries, questions), so the question is about the
per-item differences: one resample of the items (with replacement) gives one value of
``metric(A) - metric(B)``, and the 2.5th and 97.5th percentiles of many resamples are the 95 % interval
(the percentile bootstrap). A difference whose interval lies above zero is one the test items support.

Items carry a numerator and a denominator, so one function covers plain means (denominator 1: a query's
R@1 hit, a question's correctness) and ratios whose unit is bigger than one item (a video's correct
seconds over its seconds, a video's hit steps over its steps), and an optional group: a metric that
averages per-group ratios (CrossTask's recall, averaged over tasks) is recomputed on each resample over
the groups it drew (items are resampled across groups, not within them: a task with one test video would
otherwise add no variance at all). Why not `scipy.stats.bootstrap`: its statistic sees one resampled
sample at a time; ratio-of-sums and group averages are a matrix product over resampling counts here.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 10_000


def _onehot(groups: Sequence | None, n: int) -> np.ndarray:
    """[n, G] item-to-group indicator (a single group when `groups` is None)."""
    if groups is None:
        return np.ones((n, 1))
    keys = list(groups)
    if len(keys) != n:
        raise ValueError(f"groups has {len(keys)} entries for {n} items")
    index = {g: i for i, g in enumerate(dict.fromkeys(keys))}
    out = np.zeros((n, len(index)))
    out[np.arange(n), [index[g] for g in keys]] = 1.0
    return out


def _statistic(counts: np.ndarray, num: np.ndarray, den: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """For each row of `counts` (how often each item was drawn): the mean over the groups drawn of
    sum(num) / sum(den) within the group."""
    n_g, d_g = counts @ (num[:, None] * onehot), counts @ (den[:, None] * onehot)  # [R, G]
    present = d_g > 0
    ratio = np.divide(n_g, d_g, out=np.zeros_like(n_g), where=present)
    return ratio.sum(1) / np.maximum(present.sum(1), 1)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], den: Sequence[float] | None = None,
                     groups: Sequence | None = None, resamples: int = RESAMPLES, confidence: float = CONFIDENCE,
                     seed: int = 0) -> dict:
    """Difference metric(a) - metric(b) over the same items, with a percentile bootstrap interval.

    `a[i]`, `b[i]`: item i's numerator under each model (a hit 0/1, a score, correct seconds); `den[i]`:
    its denominator (default 1); `groups[i]`: its group (default: one). The metric is the mean over groups
    of sum(num) / sum(den); a resample that drew no item of a group leaves that group out. Returns ``a, b,
    diff, low, high, n_items, confidence, resamples``; ``low > 0`` means the items support "a is better". Seeded: the same inputs give the same interval.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n = len(a)
    if n == 0 or len(b) != n:
        raise ValueError(f"paired_bootstrap needs the same non-zero number of items for both models, "
                         f"got {n} and {len(b)}")
    d = np.ones(n) if den is None else np.asarray(den, dtype=np.float64)
    if len(d) != n:
        raise ValueError(f"den has {len(d)} entries for {n} items")
    onehot = _onehot(groups, n)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)  # [R, n] draws per item
    whole = np.ones((1, n))
    point_a, point_b = float(_statistic(whole, a, d, onehot)[0]), float(_statistic(whole, b, d, onehot)[0])
    diffs = _statistic(counts, a, d, onehot) - _statistic(counts, b, d, onehot)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(diffs, [tail, 100.0 - tail])
    return {"a": point_a, "b": point_b, "diff": point_a - point_b, "low": float(low), "high": float(high),
            "n_items": n, "confidence": confidence, "resamples": resamples}
