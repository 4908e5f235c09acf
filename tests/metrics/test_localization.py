"""CrossTask decoding against brute force, and recall by hand."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from actbert.metrics.localization import crosstask_recall, order_constrained_decode


def brute_force(scores):
    """Best total over ALL strictly increasing assignments of K steps to T seconds."""
    T, K = scores.shape
    return max(sum(scores[t, k] for k, t in enumerate(c)) for c in itertools.combinations(range(T), K))


def test_dp_by_hand():
    scores = np.array([[1, 0], [0, 5], [3, 0], [0, 2]], dtype=float)
    # (0,1): 1 + 5 = 6 beats (2,3): 3 + 2 = 5 and (0,3): 1 + 2 = 3
    assert order_constrained_decode(scores).tolist() == [0, 1]
    # order matters: swapping would score 9 + 9, in order the only choice is (0, 1) = 0 + 0
    assert order_constrained_decode(np.array([[0, 9], [9, 0]], dtype=float)).tolist() == [0, 1]


def test_dp_matches_brute_force_on_random_matrices():
    rng = np.random.default_rng(0)
    for _ in range(400):
        T = int(rng.integers(1, 9))
        K = int(rng.integers(1, min(T, 4) + 1))
        scores = rng.normal(size=(T, K))
        if rng.random() < 0.3:
            scores = np.round(scores)  # ties
        seconds = order_constrained_decode(scores)
        assert seconds.shape == (K,) and np.all(np.diff(seconds) > 0)
        assert 0 <= seconds.min() and seconds.max() < T
        assert scores[seconds, np.arange(K)].sum() == pytest.approx(brute_force(scores))


def test_recall_pooled_per_task_then_averaged():
    Y = np.zeros((5, 3), dtype=np.uint8)
    Y[4, 2] = 1                      # video a2: only step 2 annotated, at second 4
    gt = {
        "A": {
            # steps 0, 1, 2 annotated over seconds [0, 3), [4, 6), [9, 10); (3, 3) is empty and ignored
            "a1": [(0, 0.5, 2.2), (1, 4.0, 6.0), (2, 9.0, 10.0), (1, 3.0, 3.0)],
            "a2": Y,
        },
        "B": {"b1": [(0, 2.0, 3.0)]},
    }
    pred = {
        "A": {"a1": np.array([1, 6, 8]),   # 1 in [0,3) hit; 6 not in [4,6); 8 not in [9,10) -> 1 of 3
              "a2": np.array([1, 2, 4])},  # step 2 at 4: hit -> 1 of 1
        "B": {"b1": np.array([0, 1])},     # 0 not in [2,3) -> 0 of 1
    }
    m = crosstask_recall(pred, gt)
    # A pooled: (1 + 1) / (3 + 1) = 50 % (a per-video mean would be 66.7 %); B: 0 %; mean = 25 %
    assert m["per_task"]["A"] == {"recall": 50.0, "hits": 2, "steps": 4, "videos": 2}
    assert m["per_task"]["B"]["recall"] == 0.0
    assert m["avg_recall"] == pytest.approx(25.0)
    assert (m["n_tasks"], m["n_videos"]) == (2, 3)


@pytest.mark.parametrize("pred, gt, match", [
    ({"A": {"x": np.array([0])}}, {"A": {"y": [(0, 0, 1)]}}, "same videos"),
    ({"B": {"x": np.array([0])}}, {"A": {"x": [(0, 0, 1)]}}, "same tasks"),
    ({"A": {"x": np.array([0])}}, {"A": {"x": [(1, 0, 1)]}}, "0-based"),
    ({"A": {"x": np.array([0])}}, {"A": {"x": [(0, 3, 3)]}}, "no annotated step"),
    ({"A": {"x": np.array([9])}}, {"A": {"x": np.ones((5, 1))}}, "past the 5"),
    ({"A": {"x": np.array([0.5])}}, {"A": {"x": [(0, 0, 1)]}}, "integer"),
])
def test_recall_errors(pred, gt, match):
    with pytest.raises(ValueError, match=match):
        crosstask_recall(pred, gt)


def test_decode_errors():
    with pytest.raises(ValueError, match="2 seconds for 3 steps"):
        order_constrained_decode(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        order_constrained_decode(np.array([[np.nan]]))
