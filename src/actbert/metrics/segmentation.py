"""COIN action segmentation: per-second labels, frame accuracy, and window averaging for long videos.

Protocol (``shared/spec/protocols.md``): one label per second over the whole video, 0 = background for
every un-annotated second, otherwise the step id (1..778) over ``[floor(start), ceil(end))``. Frame
accuracy = correct seconds / all seconds pooled over all test videos (background included). Because
background seconds are a large share of every video, a model predicting only background can reach a
high frame accuracy (the spec notes that this happened to a public system), so the accuracy on
non-background seconds is reported next to it.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

__all__ = ["coin_second_labels", "frame_accuracy", "window_starts", "average_window_logits"]


def coin_second_labels(annotations: Iterable[tuple[Sequence[float], int]], duration: float) -> np.ndarray:
    """Per-second labels `[ceil(duration)]` (int64) from `(segment, step_id)` pairs.

    `segment` is `(start, end)` in seconds, `step_id` >= 1. Second `t` covers `[t, t+1)`; a video of
    171.4 s has 172 labelled seconds. Segments are clipped to the video; where two segments overlap the
    later one in `annotations` wins (COIN segments do not overlap, so this only matters for bad input).
    This stays pure over plain lists; the COIN json reader lives in `actbert.data.formats`.
    """
    duration = float(duration)
    if not math.isfinite(duration) or duration <= 0:
        raise ValueError(f"duration must be a positive number of seconds, got {duration}")
    n = int(math.ceil(duration))
    labels = np.zeros(n, dtype=np.int64)
    for k, item in enumerate(annotations):
        try:
            (start, end), step = item
        except (TypeError, ValueError):
            raise ValueError(f"annotations[{k}] must be ((start, end), step_id), got {item!r}") from None
        start, end = float(start), float(end)
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise ValueError(f"annotations[{k}] has an invalid segment ({start}, {end})")
        if int(step) != step or int(step) < 1:
            raise ValueError(f"annotations[{k}] step_id must be an integer >= 1 (0 is background), got {step!r}")
        lo = max(0, int(math.floor(start)))
        hi = min(n, int(math.ceil(end)))
        if hi > lo:
            labels[lo:hi] = int(step)
    return labels


def frame_accuracy(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], background: int = 0) -> dict:
    """Frame accuracy pooled over videos, with and without background (both in percent).

    `preds[v]` and `gts[v]` are 1-D integer label arrays of the same length (one label per second).
    Returns ``frame_acc, nonbg_acc, n_seconds, n_nonbg, n_videos, unit``; ``nonbg_acc`` is NaN when the
    ground truth has no non-background second at all.
    """
    if len(preds) != len(gts):
        raise ValueError(f"preds and gts must list the same videos, got {len(preds)} and {len(gts)} arrays")
    if len(gts) == 0:
        raise ValueError("gts is empty: no video to score")
    correct = total = correct_fg = total_fg = 0
    for v, (p, g) in enumerate(zip(preds, gts)):
        p, g = np.asarray(p), np.asarray(g)
        if p.ndim != 1 or g.ndim != 1 or p.shape != g.shape:
            raise ValueError(f"preds[{v}] and gts[{v}] must be 1-D arrays of equal length, "
                             f"got shapes {p.shape} and {g.shape}")
        if not (np.issubdtype(p.dtype, np.integer) and np.issubdtype(g.dtype, np.integer)):
            raise ValueError(f"preds[{v}] and gts[{v}] must hold integer labels, got {p.dtype} and {g.dtype}")
        hit = p == g
        fg = g != background
        correct += int(hit.sum())
        total += int(g.size)
        correct_fg += int((hit & fg).sum())
        total_fg += int(fg.sum())
    if total == 0:
        raise ValueError("gts hold no seconds at all (every array is empty)")
    return {
        "frame_acc": 100.0 * correct / total,
        "nonbg_acc": 100.0 * correct_fg / total_fg if total_fg else float("nan"),
        "n_seconds": total,
        "n_nonbg": total_fg,
        "n_videos": len(gts),
        "unit": "percent",
    }


def window_starts(total_len: int, window: int, stride: int) -> list[int]:
    """Start indices of windows of `window` seconds every `stride` seconds that cover `[0, total_len)`.

    The regular grid `0, stride, 2*stride, ...` stops at the first window that reaches the end; if the
    grid would leave a tail uncovered, one last window is aligned to end exactly at `total_len` (so
    every window is full-length when the video is at least one window long). A video shorter than a
    window gets the single start 0 (its window is padded by the caller).
    """
    if window <= 0 or stride <= 0:
        raise ValueError(f"window and stride must be positive, got window={window} stride={stride}")
    if stride > window:
        raise ValueError(f"stride {stride} > window {window} would leave seconds uncovered")
    if total_len <= 0:
        raise ValueError(f"total_len must be positive, got {total_len}")
    if total_len <= window:
        return [0]
    starts = [0]
    while starts[-1] + window < total_len:
        nxt = starts[-1] + stride
        if nxt + window > total_len:
            nxt = total_len - window  # align the last window to the end instead of running past it
        starts.append(nxt)
    return starts


def average_window_logits(window_logits, starts: Sequence[int], total_len: int) -> np.ndarray:
    """Average per-second logits of overlapping windows into one `[total_len, C]` array.

    `window_logits[w]` is `[W_w, C]` (a list of arrays, or one `[n_windows, W, C]` array) for the seconds
    `starts[w] .. starts[w] + W_w - 1`; rows past `total_len` (padding of the last window) are ignored.
    Each second gets the mean over the windows that contain it; a second that no window covers is an
    error, not a silent zero.
    """
    if len(window_logits) != len(starts):
        raise ValueError(f"window_logits has {len(window_logits)} windows but starts has {len(starts)}")
    if len(starts) == 0:
        raise ValueError("window_logits is empty: no window to average")
    if total_len <= 0:
        raise ValueError(f"total_len must be positive, got {total_len}")
    n_cls = None
    acc = count = None
    for w, (logits, s) in enumerate(zip(window_logits, starts)):
        logits = np.asarray(logits, dtype=np.float64)
        if logits.ndim != 2:
            raise ValueError(f"window_logits[{w}] must be [window_len, classes], got shape {logits.shape}")
        if n_cls is None:
            n_cls = logits.shape[1]
            acc = np.zeros((total_len, n_cls))
            count = np.zeros(total_len)
        elif logits.shape[1] != n_cls:
            raise ValueError(f"window_logits[{w}] has {logits.shape[1]} classes, window 0 has {n_cls}")
        s = int(s)
        if s < 0 or s >= total_len:
            raise ValueError(f"starts[{w}] = {s} lies outside [0, {total_len})")
        e = min(total_len, s + logits.shape[0])
        acc[s:e] += logits[: e - s]
        count[s:e] += 1
    if (count == 0).any():
        missing = np.flatnonzero(count == 0)
        raise ValueError(f"seconds {missing[:10].tolist()} (of total_len {total_len}) are covered by no window")
    return acc / count[:, None]
