"""Which action clips and which region boxes of a video belong to a time window.

One implementation for every consumer: the pre-training corpus (caption windows) and the downstream
tasks (retrieval clips, localisation seconds, captioning and segmentation windows), so a model sees
the same kind of input at evaluation as in pre-training.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def spread(n: int, k: int) -> np.ndarray:
    """At most `k` indices spread evenly over `range(n)` (all of them when n <= k), increasing."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(np.int64))


@dataclass
class WindowSelection:
    clips: np.ndarray  # indices into action / action_times, time order
    frames: np.ndarray  # indices of the key frames used, time order
    frame_pos: np.ndarray  # per chosen box: its frame's position in `frames` (the sample's region_frame)
    boxes: np.ndarray  # per chosen box: the box index within its frame
    clips_subsampled: bool = False
    frame_from_nearest: bool = False


def select_window(
    action_times: np.ndarray,
    frame_times: np.ndarray,
    region_valid: np.ndarray,
    region_score: np.ndarray,
    start: float,
    end: float,
    max_actions: int,
    max_regions: int,
    max_frames: int | None = None,
    nearest_clip: bool = False,
    nearest_frame_s: float = float("inf"),
    region_select: str = "balanced",
) -> WindowSelection:
    """Clips overlapping `[start, end)` and key frames inside `[start, end]`, then the boxes.

    Clips beyond `max_actions` are subsampled evenly. Boxes: with "balanced", every frame's best box comes
    before any frame's second (so a long window is not described by one busy frame), "score" takes the
    global top scores; at most `max_regions`, laid out in time order, best first within a frame.
    `nearest_clip` / `nearest_frame_s`: a window with no clip / key frame inside takes the nearest one
    (tasks want a short window to still see the video; pre-training allows empty streams).
    """
    times = np.asarray(action_times, dtype=np.float64).reshape(-1, 2)
    sel = WindowSelection(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    if len(times):
        clips = np.flatnonzero((times[:, 1] > start) & (times[:, 0] < max(end, start + 1e-6)))
        if not len(clips) and nearest_clip:
            clips = np.array([int(np.abs(times.mean(1) - (start + end) / 2).argmin())])
        sel.clips_subsampled = len(clips) > max_actions
        sel.clips = clips[spread(len(clips), max_actions)]
    ft = np.asarray(frame_times, dtype=np.float64)
    frames = np.flatnonzero((ft >= start) & (ft <= end))
    if not len(frames) and len(ft):
        near = int(np.abs(ft - (start + end) / 2).argmin())
        if min(abs(ft[near] - start), abs(ft[near] - end)) <= nearest_frame_s:
            frames = np.array([near])
            sel.frame_from_nearest = True
    if max_frames is not None:
        frames = frames[spread(len(frames), min(max_frames, max(max_regions, 1)))]
    sel.frames = frames
    fi, bi = np.nonzero(np.asarray(region_valid, dtype=bool)[frames])
    score = np.asarray(region_score, dtype=np.float64)[frames][fi, bi]
    if region_select == "balanced":  # rank of each box within its frame: every frame's best first
        order = np.lexsort((-score, fi))
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order)) - np.searchsorted(fi[order], fi[order])
        keep = np.lexsort((-score, rank))[:max_regions]
    elif region_select == "score":
        keep = np.argsort(-score, kind="stable")[:max_regions]
    else:
        raise ValueError(f"region_select must be 'balanced' or 'score', got {region_select!r}")
    keep = keep[np.lexsort((-score[keep], fi[keep]))]  # time order, best first within a frame
    sel.frame_pos, sel.boxes = fi[keep].astype(np.int64), bi[keep].astype(np.int64)
    return sel


def region_location(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """[n, 4] pixel boxes -> [n, 5] `[x1/W, y1/H, x2/W, y2/H, area]`, clipped to the image (area of the clipped box)."""
    h, w = (float(x) for x in image_size)
    box = np.clip(np.asarray(boxes, np.float32).reshape(-1, 4) / np.array([w, h, w, h], np.float32), 0.0, 1.0)
    area = np.clip(box[:, 2] - box[:, 0], 0, None) * np.clip(box[:, 3] - box[:, 1], 0, None)
    return np.concatenate([box, area[:, None]], 1).astype(np.float32)
