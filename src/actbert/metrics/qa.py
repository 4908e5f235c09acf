"""Multiple-choice QA accuracy (MSR-VTT MC: score the video against each of 5 candidate captions).

Prediction = the highest-scoring candidate. Ties go to the **first** (lowest-index) of the tied
candidates, which is what ``np.argmax`` / ``torch.argmax`` do and what the public MC evaluators
inherit from them. A degenerate scorer (all candidates equal) would then score the share of questions
whose answer is candidate 0, so the number of questions whose top score is tied is reported next to the
accuracy (``n_tied``). ``accuracy_pessimistic`` counts a tied question as
correct only when the true answer is the sole maximum, a lower bound that makes such ties visible.
"""
from __future__ import annotations

import numpy as np

__all__ = ["mc_accuracy"]


def mc_accuracy(scores, answers) -> dict:
    """Accuracy (percent) of choosing the top-scoring candidate.

    `scores` `[Q, C]` (C = 5 for MSR-VTT MC; any C >= 2 accepted), `answers` `[Q]` 0-based indices.
    Returns ``accuracy, accuracy_pessimistic, n, correct, n_correct, n_tied, unit``; ``correct`` is 0/1 per question.
    """
    scores = np.asarray(scores)
    answers = np.asarray(answers)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] < 2:
        raise ValueError(f"scores must have shape [questions, candidates >= 2], got {scores.shape}")
    if not np.issubdtype(scores.dtype, np.number):
        raise ValueError(f"scores must be numeric, got dtype {scores.dtype}")
    if np.isnan(scores).any():
        raise ValueError(f"scores contain NaN in rows {np.unique(np.argwhere(np.isnan(scores))[:, 0])[:5].tolist()}")
    if answers.shape != (scores.shape[0],) or not np.issubdtype(answers.dtype, np.integer):
        raise ValueError(f"answers must be an integer array of shape ({scores.shape[0]},) to match scores "
                         f"{scores.shape}, got shape {answers.shape} dtype {answers.dtype}")
    if answers.min() < 0 or answers.max() >= scores.shape[1]:
        raise ValueError(f"answers must lie in [0, {scores.shape[1]}) (candidates of scores {scores.shape}), "
                         f"got min {answers.min()} max {answers.max()}")
    pred = np.argmax(scores, axis=1)  # first maximum on ties
    correct = pred == answers
    top = scores.max(axis=1, keepdims=True)
    n_at_top = (scores == top).sum(axis=1)
    tied = n_at_top > 1
    correct_pess = correct & ~tied
    n = scores.shape[0]
    return {
        "accuracy": float(100.0 * correct.mean()),
        "accuracy_pessimistic": float(100.0 * correct_pess.mean()),
        "n": int(n),
        "correct": correct.astype(int).tolist(),  # per question, for paired intervals (metrics.bootstrap)
        "n_correct": int(correct.sum()),
        "n_tied": int(tied.sum()),
        "unit": "percent",
    }
