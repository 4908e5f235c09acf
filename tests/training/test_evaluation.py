"""The held-out matching metric: a balanced set (half positives, half negatives from another video), so a
constant answer scores exactly 50 %, and a one-video set, which has no negative, is refused."""
from __future__ import annotations

import numpy as np
import pytest

from actbert.training.evaluation import balanced_pairs, matching_metrics

LOG_HALF = np.log(0.5)


def _scores(n: int, diag: float, off: float) -> np.ndarray:
    S = np.full((n, n), off)
    np.fill_diagonal(S, diag)
    return S


def test_pairs_are_balanced_and_negatives_come_from_another_video():
    vids = ["a", "a", "b", "c", "c", "c"]
    clips, captions = balanced_pairs(vids)
    assert list(clips) == list(range(6))
    assert all(vids[c] != vids[k] for c, k in zip(clips, captions))


def test_one_class_set_is_refused():
    # the demo's held-out split once held one video: every pair was a positive and "majority" read 100 %
    with pytest.raises(ValueError, match="at least 2 videos"):
        balanced_pairs(["v", "v", "v"])


@pytest.mark.parametrize("answer", [0.0, -10.0])  # "always matched" and "never matched"
def test_constant_answer_scores_half(answer):
    m = matching_metrics(np.full((8, 8), answer), list("aabbccdd"))
    assert m["match_count"] == 16 and m["match_majority_acc"] == 0.5
    assert m["match_acc"] == 0.5


def test_perfect_and_inverted_scorers():
    vids = list("abcd")
    assert matching_metrics(_scores(4, 0.0, -5.0), vids)["match_acc"] == 1.0
    assert matching_metrics(_scores(4, -5.0, 0.0), vids)["match_acc"] == 0.0
    # P(matched) exactly 0.5 is "not matched" (the argmax of two equal logits is class 0)
    assert matching_metrics(_scores(4, LOG_HALF, LOG_HALF), vids)["match_acc"] == 0.5
