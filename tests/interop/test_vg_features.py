"""Visual Genome-style region features (2048-d, 1601 classes) imported into the feature store."""
from __future__ import annotations

import numpy as np
import pytest

from actbert.data.store import FeatureStore, StoreWriter
from actbert.interop.vg_features import KeyframeDetections, video_features_from_keyframes


def _frame(rng, t, n, dim=2048, classes=1601):
    probs = rng.random((n, classes)).astype(np.float32)
    return KeyframeDetections(t, rng.standard_normal((n, dim)).astype(np.float32),
                              np.tile([1, 2, 30, 40], (n, 1)).astype(np.float32), probs / probs.sum(1, keepdims=True),
                              scores=np.arange(n, dtype=np.float32))


def test_vg_features_round_trip_through_the_store(tmp_path):
    rng = np.random.default_rng(0)
    frames = [_frame(rng, 2.0, 3), _frame(rng, 0.0, 12)]  # out of order, fewer and more boxes than top_k
    v = video_features_from_keyframes("vid1", rng.standard_normal((4, 2048)), [[0, 1], [1, 2], [2, 3], [3, 4]],
                                      frames, (240, 320), 4.0, top_k=10)
    with StoreWriter(tmp_path / "store") as w:
        w.add(v)
    back = FeatureStore(tmp_path / "store")["vid1"]
    assert back.region.shape == (2, 10, 2048) and back.region_cls.shape == (2, 10, 1601)
    assert back.frame_times.tolist() == [0.0, 2.0]
    assert back.region_valid.sum(1).tolist() == [10, 3]
    # highest-score boxes first: frame 0 had 12 boxes scored 0..11, so 11 leads and 0, 1 are dropped
    np.testing.assert_allclose(back.region[0, 0], frames[1].features[11], atol=1e-2)  # float16 on disk
    np.testing.assert_allclose(back.region_cls[1, :3].sum(-1), 1.0, atol=1e-2)


def test_mismatched_arrays_name_the_video_and_frame():
    rng = np.random.default_rng(0)
    bad = _frame(rng, 1.5, 3)
    bad.boxes = bad.boxes[:2]
    with pytest.raises(ValueError, match=r"video 'v', key frame at 1.5s"):
        video_features_from_keyframes("v", np.zeros((1, 8)), [[0, 1]], [bad], (10, 10), 2.0)
