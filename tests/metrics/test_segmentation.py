"""COIN per-second labels, frame accuracy and window averaging by hand."""
from __future__ import annotations

import numpy as np
import pytest

from actbert.metrics.segmentation import average_window_logits, coin_second_labels, frame_accuracy, window_starts


def test_second_labels_floor_start_ceil_end():
    # 10.5 s -> 11 seconds; (1.2, 3.5) covers floor 1 .. ceil 4 (exclusive) = seconds 1, 2, 3;
    # (6.0, 8.0) covers seconds 6, 7; (9.7, 30) is clipped to second 9, 10
    labels = coin_second_labels([((1.2, 3.5), 7), ((6.0, 8.0), 3), ((9.7, 30.0), 2)], 10.5)
    assert labels.tolist() == [0, 7, 7, 7, 0, 0, 3, 3, 0, 2, 2]
    assert coin_second_labels([], 3.0).tolist() == [0, 0, 0]


def test_all_background_prediction_scores_high_frame_but_zero_nonbg_accuracy():
    gts = [np.array([0, 0, 0, 5, 5, 0, 0, 0, 0, 0]), np.array([0, 0, 3, 0, 0])]
    preds = [np.zeros(10, dtype=int), np.zeros(5, dtype=int)]
    m = frame_accuracy(preds, gts)
    # 15 seconds, 3 of them non-background: 12 / 15 = 80 % frame accuracy, 0 / 3 non-background
    assert m["frame_acc"] == pytest.approx(80.0)
    assert m["nonbg_acc"] == 0.0
    assert (m["n_seconds"], m["n_nonbg"], m["n_videos"]) == (15, 3, 2)


def test_frame_accuracy_pooled_not_averaged():
    gts = [np.array([1, 1, 0, 0]), np.array([2, 2])]
    preds = [np.array([1, 0, 0, 0]), np.array([2, 0])]
    m = frame_accuracy(preds, gts)
    # pooled: correct 3 (1, 0, 0) + 1 (2) = 4 of 6 -> 66.67 %; non-bg: 1 + 1 of 2 + 2 -> 50 %
    # (averaging per video would give (75 + 50) / 2 = 62.5 %: must not)
    assert m["frame_acc"] == pytest.approx(400 / 6)
    assert m["nonbg_acc"] == pytest.approx(50.0)


def test_window_starts_cover_the_end():
    assert window_starts(70, 32, 16) == [0, 16, 32, 38]   # 48 + 32 > 70, so the last one ends at 70
    assert window_starts(64, 32, 16) == [0, 16, 32]       # 32 + 32 = 64 reaches the end
    assert window_starts(20, 32, 16) == [0]               # shorter than one window
    for n in range(1, 120):
        s = window_starts(n, 32, 16)
        assert s[-1] + 32 >= n and all(b - a <= 16 for a, b in zip(s, s[1:]))


def test_average_window_logits_by_hand():
    w0 = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])     # seconds 0, 1, 2
    w1 = np.array([[5.0, 1.0], [7.0, 1.0], [9.0, 1.0], [100.0, 100.0]])  # seconds 2, 3, 4 (+ padding)
    out = average_window_logits([w0, w1], [0, 2], total_len=5)
    # second 2 is in both windows: ([3, 0] + [5, 1]) / 2 = [4, 0.5]; the padding row past 5 is ignored
    assert out.tolist() == [[1, 0], [2, 0], [4, 0.5], [7, 1], [9, 1]]
    with pytest.raises(ValueError, match="covered by no window"):
        average_window_logits([w0], [0], total_len=5)


@pytest.mark.parametrize("call, match", [
    (lambda: frame_accuracy([np.zeros(3, int)], [np.zeros(4, int)]), r"shapes \(3,\) and \(4,\)"),
    (lambda: frame_accuracy([], []), "empty"),
    (lambda: frame_accuracy([np.zeros(3, int)], []), "same videos"),
    (lambda: coin_second_labels([((1, 2), 0)], 5), "step_id"),
    (lambda: coin_second_labels([], 0), "duration"),
    (lambda: window_starts(10, 8, 9), "stride"),
    (lambda: average_window_logits([np.zeros((3, 2)), np.zeros((3, 4))], [0, 1], 4), "classes"),
])
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_agrees_with_the_coin_reader_labels():
    # the data package's reader builds the same labels from its CoinVideo; the two must never drift
    coin = pytest.importorskip("actbert.data.formats.coin")
    segs = [((1.2, 3.5), 7), ((6.0, 8.0), 3), ((2.5, 4.1), 9), ((9.7, 30.0), 2)]
    video = coin.CoinVideo(video_id="v", duration=10.5, target_id=0, task_label="t", subset="testing", url="",
                           segments=[coin.CoinSegment(step_id=s, start=a, end=b, label="") for (a, b), s in segs])
    assert coin.coin_second_labels(video).tolist() == coin_second_labels(segs, 10.5).tolist()
