"""Multiple-choice accuracy by hand."""
from __future__ import annotations

import numpy as np
import pytest

from actbert.metrics.qa import mc_accuracy


def test_accuracy_and_ties_by_hand():
    scores = np.array([[0.1, 0.9, 0.0, 0.0, 0.0],   # predicts 1, answer 1: correct
                       [0.5, 0.1, 0.2, 0.3, 0.4],   # predicts 0, answer 4: wrong
                       [0.7, 0.7, 0.1, 0.1, 0.1],   # tie 0/1 -> first (0), answer 0: correct but tied
                       [0.2, 0.2, 0.2, 0.2, 0.2]])  # all tied -> 0, answer 3: wrong
    m = mc_accuracy(scores, np.array([1, 4, 0, 3]))
    assert m["accuracy"] == pytest.approx(50.0)              # 2 correct of 4
    assert m["accuracy_pessimistic"] == pytest.approx(25.0)  # only question 0 is a sole maximum
    assert (m["n"], m["n_correct"], m["n_tied"]) == (4, 2, 2)


@pytest.mark.parametrize("scores, answers, match", [
    (np.zeros((2, 5)), np.array([0]), "answers must be"),
    (np.zeros((2, 5)), np.array([0, 5]), r"\[0, 5\)"),
    (np.zeros((0, 5)), np.array([], dtype=int), "scores must have shape"),
    (np.zeros(5), np.array([0]), "scores must have shape"),
    (np.zeros((1, 5)), np.array([0.0]), "integer"),
])
def test_errors(scores, answers, match):
    with pytest.raises(ValueError, match=match):
        mc_accuracy(scores, answers)
