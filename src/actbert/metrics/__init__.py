"""Metrics of the five downstream tasks: pure functions, numpy / plain Python in, floats and dicts out.

Each follows the definition of the public system people compare against (``shared/spec/protocols.md``,
``docs/metrics.md``) and labels its result with the protocol or tie policy that produced it. Captioning
imports pycocoevalcap lazily, so importing this package stays cheap.
"""
from __future__ import annotations

from actbert.metrics.captioning import caption_metrics, normalize_caption
from actbert.metrics.localization import crosstask_recall, order_constrained_decode
from actbert.metrics.qa import mc_accuracy
from actbert.metrics.retrieval import TIE_POLICIES, both_directions, positives_from_gt, ranks, retrieval_metrics
from actbert.metrics.segmentation import average_window_logits, coin_second_labels, frame_accuracy, window_starts

__all__ = [
    "TIE_POLICIES", "ranks", "retrieval_metrics", "both_directions", "positives_from_gt",
    "caption_metrics", "normalize_caption",
    "coin_second_labels", "frame_accuracy", "window_starts", "average_window_logits",
    "order_constrained_decode", "crosstask_recall",
    "mc_accuracy",
]
