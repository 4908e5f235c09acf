"""CrossTask step localization: order-constrained decoding and average recall.

Protocol (CrossTask, Zhukov et al. 2019, as in ``shared/spec/protocols.md``): every (second, step) pair of a
video is scored; dynamic programming assigns each of the task's K steps exactly one second, the seconds
strictly increasing in the task's step order, maximising the summed score (the other seconds are
background). A step is a hit when its predicted second lies in a ground-truth interval of that step,
the interval covering seconds ``[floor(start), ceil(end))`` as CrossTask's ``read_assignment`` builds its
``Y`` matrix. Recall of a task = hits / annotated steps pooled over the task's videos (CrossTask's
``get_recalls``: ``sum(Y_true * Y_pred) / sum(Y_true.sum(0) > 0)``); the final number is the mean over
tasks (the 18 primary tasks on the real benchmark).
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

__all__ = ["order_constrained_decode", "crosstask_recall"]


def order_constrained_decode(scores) -> np.ndarray:
    """Seconds `[K]` (int64, strictly increasing) maximising `sum_k scores[t_k, k]`.

    `scores` is `[T, K]` with `T >= K`. O(T*K) dynamic programming: `best[k, t]` is the best total of
    steps `0..k` with step `k` at second `t`, built from a running maximum of `best[k-1, :t]`. Ties
    between equally good assignments go to the earliest seconds, decided from the last step backwards
    (the first maximum of `best[K-1]`, then the first maximum of each prefix). `-inf` scores are allowed
    (a forbidden pair); NaN and `+inf` are not.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] == 0:
        raise ValueError(f"scores must be [seconds, steps] with at least one step, got shape {scores.shape}")
    T, K = scores.shape
    if T < K:
        raise ValueError(f"scores has {T} seconds for {K} steps (shape {scores.shape}); each step needs its own second")
    if np.isnan(scores).any() or np.isposinf(scores).any():
        raise ValueError(f"scores of shape {scores.shape} contain NaN or +inf")
    best = scores[:, 0].copy()          # best[t] for the current step
    back = np.zeros((K, T), dtype=np.int64)  # back[k, t]: second of step k-1 when step k is at t
    for k in range(1, K):
        # running max of the previous step's totals over seconds < t, and where it was first reached
        # (only over seconds where step k-1 can sit, k-1 onwards, so that a row of -inf scores still
        # backtracks to a feasible second)
        base = k - 1
        prev = best[base:]
        run = np.maximum.accumulate(prev)
        new_max = np.empty(prev.shape[0], dtype=bool)
        new_max[0] = True
        new_max[1:] = prev[1:] > run[:-1]
        arg_run = base + np.maximum.accumulate(np.where(new_max, np.arange(prev.shape[0]), 0))
        best = np.full(T, -np.inf)
        # step k can sit at seconds k .. T-K+k (room for the earlier and the later steps)
        t = np.arange(k, T - K + k + 1)
        best[t] = scores[t, k] + run[t - 1 - base]
        back[k, t] = arg_run[t - 1 - base]
    lo, hi = K - 1, T  # the last step lies in [K-1, T)
    seconds = np.empty(K, dtype=np.int64)
    seconds[K - 1] = lo + int(np.argmax(best[lo:hi]))
    for k in range(K - 1, 0, -1):
        seconds[k - 1] = back[k, seconds[k]]
    return seconds


def _hits_from_matrix(y: np.ndarray, pred: np.ndarray, where: str) -> tuple[int, int]:
    if y.ndim != 2 or y.shape[1] != pred.shape[0]:
        raise ValueError(f"{where}: ground-truth matrix must be [T, K={pred.shape[0]}], got shape {y.shape}")
    if pred.max(initial=-1) >= y.shape[0]:
        raise ValueError(f"{where}: predicted second {int(pred.max())} is past the {y.shape[0]} annotated seconds")
    y = y.astype(bool)
    hits = int(y[pred, np.arange(pred.shape[0])].sum())
    return hits, int(y.any(axis=0).sum())


def _hits_from_intervals(intervals, pred: np.ndarray, where: str) -> tuple[int, int]:
    K = pred.shape[0]
    annotated = np.zeros(K, dtype=bool)
    hit = np.zeros(K, dtype=bool)
    for n, item in enumerate(intervals):
        try:
            step, start, end = item
        except (TypeError, ValueError):
            raise ValueError(f"{where}: interval {n} must be (step, start, end), got {item!r}") from None
        if int(step) != step or not 0 <= int(step) < K:
            raise ValueError(f"{where}: interval {n} has step {step!r}; steps are 0-based indices below K={K}")
        lo, hi = int(math.floor(float(start))), int(math.ceil(float(end)))
        if hi <= lo:
            continue  # an empty interval marks no second, as in CrossTask's Y[lo:hi] = 1
        s = int(step)
        annotated[s] = True
        hit[s] |= lo <= pred[s] < hi
    return int(hit.sum()), int(annotated.sum())


def crosstask_recall(predictions: Mapping, ground_truth: Mapping) -> dict:
    """Average recall (percent) over tasks, with a per-task table.

    `predictions[task][video]`: predicted second of each step, `[K]` ints (`order_constrained_decode`).
    `ground_truth[task][video]`: either CrossTask's binary `Y` matrix `[T, K]`, or a list of
    `(step, start, end)` with 0-based `step` (CrossTask's files are 1-based: subtract 1 when reading).
    Both mappings must hold the same tasks and videos. Returns ``avg_recall, per_task, n_tasks,
    n_videos, unit``; ``per_task[task]`` has ``recall, hits, steps, videos``.
    """
    if not ground_truth:
        raise ValueError("ground_truth is empty: no task to score")
    if set(predictions) != set(ground_truth):
        raise ValueError(f"predictions and ground_truth must hold the same tasks; only in predictions: "
                         f"{sorted(map(str, set(predictions) - set(ground_truth)))[:5]}, only in ground_truth: "
                         f"{sorted(map(str, set(ground_truth) - set(predictions)))[:5]}")
    per_task: dict = {}
    n_videos = 0
    for task, gt_videos in ground_truth.items():
        pred_videos = predictions[task]
        if set(pred_videos) != set(gt_videos):
            raise ValueError(f"task {task}: predictions and ground_truth must hold the same videos; "
                             f"only in predictions: {sorted(map(str, set(pred_videos) - set(gt_videos)))[:5]}, "
                             f"only in ground_truth: {sorted(map(str, set(gt_videos) - set(pred_videos)))[:5]}")
        hits = steps = 0
        for video, gt in gt_videos.items():
            where = f"task {task} video {video}"
            pred = np.asarray(pred_videos[video])
            if pred.ndim != 1 or pred.size == 0 or not np.issubdtype(pred.dtype, np.integer):
                raise ValueError(f"{where}: prediction must be a non-empty 1-D integer array [K], "
                                 f"got shape {pred.shape} dtype {pred.dtype}")
            if pred.min() < 0:
                raise ValueError(f"{where}: predicted seconds must be >= 0, got {pred.tolist()}")
            if isinstance(gt, np.ndarray):
                h, s = _hits_from_matrix(gt, pred, where)
            else:
                h, s = _hits_from_intervals(gt, pred, where)
            hits += h
            steps += s
        if steps == 0:
            raise ValueError(f"task {task}: no annotated step in any of its {len(gt_videos)} videos; recall undefined")
        per_task[task] = {"recall": 100.0 * hits / steps, "hits": hits, "steps": steps, "videos": len(gt_videos)}
        n_videos += len(gt_videos)
    return {
        "avg_recall": float(np.mean([v["recall"] for v in per_task.values()])),
        "per_task": per_task,
        "n_tasks": len(per_task),
        "n_videos": n_videos,
        "unit": "percent",
    }
