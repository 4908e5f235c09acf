"""Bring region features from another detector into the feature store: e.g. the Visual Genome Faster R-CNN
(bottom-up attention: 2048-d RoI features, a 1601-class distribution per box) that the paper and the released
PaddleVideo checkpoint use, where our own extractors give torchvision COCO features (91 classes, 1024-d).

`video_features_from_keyframes` shapes one video's per-key-frame detections (any number of boxes per frame,
any feature width, any class count) into a `VideoFeatures`; `StoreWriter.add` then stores it like any other
video. docs/extraction.md shows the whole loop.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from actbert.data.store_format import VideoFeatures, validate


@dataclass
class KeyframeDetections:
    time: float  # seconds
    features: np.ndarray  # [N, D_r] RoI features
    boxes: np.ndarray  # [N, 4] x1, y1, x2, y2 in pixels
    class_probs: np.ndarray  # [N, C] the detector's class distribution per box (rows sum to 1)
    scores: np.ndarray | None = None  # [N] detection confidence (default: the top class probability)


def video_features_from_keyframes(video_id: str, action: np.ndarray, action_times: np.ndarray,
                                  keyframes: Sequence[KeyframeDetections], image_size: tuple[int, int],
                                  duration: float, top_k: int = 10) -> VideoFeatures:
    """One video's features: the `top_k` highest-scoring boxes of each key frame, padded (and marked invalid)
    where a frame has fewer. Raises ValueError naming the video, key frame and array that do not fit."""
    if not keyframes:
        raise ValueError(f"video {video_id!r}: no key frames")
    dim, classes = np.shape(keyframes[0].features)[-1], np.shape(keyframes[0].class_probs)[-1]
    F = len(keyframes)
    region = np.zeros((F, top_k, dim), np.float32)
    boxes = np.zeros((F, top_k, 4), np.float32)
    cls = np.zeros((F, top_k, classes), np.float32)
    score = np.zeros((F, top_k), np.float32)
    valid = np.zeros((F, top_k), bool)
    for f, kf in enumerate(sorted(keyframes, key=lambda k: k.time)):
        feats, bx, probs = (np.asarray(a, np.float32) for a in (kf.features, kf.boxes, kf.class_probs))
        n = len(feats)
        if feats.shape != (n, dim) or bx.shape != (n, 4) or probs.shape != (n, classes):
            raise ValueError(f"video {video_id!r}, key frame at {kf.time}s: features {feats.shape}, boxes {bx.shape}, "
                             f"class_probs {probs.shape} do not agree with ({n}, {dim}) / ({n}, 4) / ({n}, {classes})")
        s = probs.max(-1) if kf.scores is None else np.asarray(kf.scores, np.float32).reshape(n)
        keep = np.argsort(-s, kind="stable")[:top_k]
        k = len(keep)
        region[f, :k], boxes[f, :k], cls[f, :k], score[f, :k], valid[f, :k] = feats[keep], bx[keep], probs[keep], s[keep], True
    cls[~valid] = 1.0 / classes  # padding rows: a valid distribution, never read (region_valid is False)
    return validate(VideoFeatures(
        video_id=video_id, action=np.asarray(action, np.float32), action_times=np.asarray(action_times, np.float32),
        region=region, region_boxes=boxes, region_cls=cls, region_score=score, region_valid=valid,
        frame_times=np.array(sorted(k.time for k in keyframes), np.float32), image_size=tuple(image_size),
        duration=float(duration), extra={"region_source": "imported"}))
