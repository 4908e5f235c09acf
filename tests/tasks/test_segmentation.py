"""Segmentation: per-second tokens and windows cover the video, overlapping logits are averaged, a short
training beats the all-background predictor on non-background seconds, timeline PNG, save/load, CLI.

Test-made videos: 1-s clips whose action feature is the prototype of that second's label (background or
one of 3 steps) + noise, so the per-second feature determines the step.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from actbert.bench.store import make_synthetic_video
from actbert.model import ActBERTForPretraining, get_preset
from actbert.tasks import segmentation as G
from actbert.tasks.segmentation import SegmentHeadConfig, SegmentTrainConfig, SegVideo
from tests.tasks.conftest import DictStore

AD, RD, NCLS = 16, 24, 4  # background + 3 steps


def make_videos(n: int, seed: int, prefix: str):
    """Videos of 20-30 s: background, then steps of 3-6 s separated by background, 1-s clips."""
    rng = np.random.default_rng(seed)
    proto = np.random.default_rng(7).normal(0, 2, (NCLS, AD)).astype(np.float32)
    store, videos = DictStore(), []
    for i in range(n):
        vid = f"{prefix}{i}"
        labels = []
        while len(labels) < 20:
            labels += [0] * int(rng.integers(1, 4)) + [int(rng.integers(1, NCLS))] * int(rng.integers(3, 7))
        labels = np.array(labels + [0] * int(rng.integers(0, 3)), dtype=np.int64)
        T = len(labels)
        v = make_synthetic_video(vid, rng, num_clips=T, num_frames=T // 2, boxes=2, action_dim=AD, region_dim=RD,
                                 num_classes=5, clip_s=1.0)
        v.action = (proto[labels] + 0.7 * rng.standard_normal((T, AD))).astype(np.float32)
        store[vid] = v
        videos.append(SegVideo(vid, labels))
    return store, videos


def tiny_model():
    torch.manual_seed(0)
    cfg = get_preset("tiny", vocab_size=50, action_feat_dim=AD, region_feat_dim=RD, num_region_classes=5,
                     max_actions=4, max_regions=6, max_text_len=8)
    return ActBERTForPretraining(cfg).eval()


HEAD = SegmentHeadConfig(num_classes=NCLS, window=8, stride=4, max_regions=4, dropout=0.0, cls_id=2, sep_id=3)


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    store, train = make_videos(8, seed=0, prefix="tr")
    test_store, test = make_videos(4, seed=1, prefix="te")
    store.update(test_store)
    cfg = SegmentTrainConfig(head=HEAD, max_steps=40, batch_size=8, lr=5e-3, encoder_lr=1e-3, progress=False)
    return G.train_segmenter(tiny_model(), train, store, cfg), store, test


def test_per_second_tokens_map_each_second_to_the_clip_covering_its_centre():
    v = make_synthetic_video("v", np.random.default_rng(0), num_clips=3, num_frames=3, action_dim=AD, region_dim=RD,
                             clip_s=2.0)
    v.action_times = np.array([[0, 2], [2, 4], [5, 7]], np.float32)  # a gap over [4, 5), nothing after 7 s
    # centres 0.5 1.5 | 2.5 3.5 | 4.5 (gap: nearest centre is clip 1 at 3 vs clip 2 at 6) | 5.5 6.5 | 7.5 8.5
    np.testing.assert_array_equal(G.second_clip_index(v, 9), [0, 0, 1, 1, 1, 2, 2, 2, 2])
    starts, items = G.video_windows(v, 9, SegmentHeadConfig(num_classes=3, window=4, stride=2, max_regions=2))
    assert starts == [0, 2, 4, 5]
    covered = np.zeros(9, int)
    for s, it in zip(starts, items):
        covered[s:s + len(it["action"])] += 1
        assert len(it["action"]) == 4 and len(it["region"]) <= 2
    assert (covered >= 1).all()
    np.testing.assert_array_equal(items[3]["action"], v.action[[2, 2, 2, 2]])
    v.action_times = np.zeros((0, 2), np.float32)
    with pytest.raises(ValueError, match="'v' has no action clip"):
        G.second_clip_index(v, 3)


def test_prediction_averages_the_overlapping_windows(trained):
    seg, store, test = trained
    video = store[test[0].video_id]
    T = len(test[0].labels)
    starts, items = G.video_windows(video, T, seg.head)
    with torch.no_grad():
        wl = seg.window_logits(items).numpy()
    manual = np.zeros((T, NCLS))
    count = np.zeros(T)
    for s, w in zip(starts, wl):
        n = min(T - s, len(w))
        manual[s:s + n] += w[:n]
        count[s:s + n] += 1
    np.testing.assert_allclose(seg.predict_logits(video, T), manual / count[:, None], rtol=1e-5, atol=1e-5)
    # a video shorter than one window: one padded window
    short = seg.predict_logits(video, 5)
    assert short.shape == (5, NCLS)


def test_short_training_beats_background_only_on_non_background_seconds(trained):
    seg, store, test = trained
    assert seg.history[-1]["loss"] < seg.history[0]["loss"]
    m = G.evaluate_segmentation(seg, test, store, progress=False)
    assert m["background_only"]["nonbg_acc"] == 0.0
    assert m["nonbg_acc"] > 60.0, m  # chance among 3 steps is 33 %
    assert m["frame_acc"] > m["background_only"]["frame_acc"] + 20
    assert m["n_seconds"] == sum(len(v.labels) for v in test)
    assert set(m["predictions"]) == {v.video_id for v in test}


def test_timeline_plot_writes_a_png(trained, tmp_path):
    seg, store, test = trained
    v = test[0]
    pred = seg.predict(store[v.video_id], len(v.labels))
    path = G.plot_timeline(pred, v.labels, {1: "cut", 2: "pour"}, tmp_path / "t.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="equal length"):
        G.plot_timeline(pred[:-1], v.labels, None, tmp_path / "u.png")


def test_save_load_round_trip_gives_identical_predictions(trained, tmp_path):
    seg, store, test = trained
    seg.save(tmp_path / "seg")
    back = G.Segmenter.load(tmp_path / "seg")
    assert back.head == seg.head
    for v in test:
        np.testing.assert_array_equal(back.predict_logits(store[v.video_id], len(v.labels)),
                                      seg.predict_logits(store[v.video_id], len(v.labels)))


def test_bad_input_is_named():
    model = tiny_model()
    store, videos = make_videos(1, seed=0, prefix="b")
    with pytest.raises(ValueError, match="max_action_positions"):
        G.Segmenter(model.actbert, SegmentHeadConfig(num_classes=4, window=64, stride=32))
    with pytest.raises(KeyError, match="nowhere"):
        G.train_segmenter(model, [SegVideo("nowhere", np.zeros(3, np.int64))], store,
                          SegmentTrainConfig(head=HEAD, max_steps=1, progress=False))
    with pytest.raises(ValueError, match=r"labels go up to \d but the head has 2 classes"):
        G.train_segmenter(model, videos, store, SegmentTrainConfig(
            head=SegmentHeadConfig(num_classes=2, window=8, stride=4, cls_id=2, sep_id=3), max_steps=1, progress=False))
    with pytest.raises(ValueError, match="stride"):
        SegmentHeadConfig(window=8, stride=9)


def test_cli_finetune_then_evaluate_on_coin_json(tmp_path):
    from actbert.data.store import StoreWriter

    store, videos = make_videos(5, seed=3, prefix="c")
    with StoreWriter(tmp_path / "store", part="p0") as w:
        for v in store.values():
            w.add(v)
    db = {}
    for i, v in enumerate(videos):
        segs, t = [], 0
        while t < len(v.labels):  # runs of equal labels -> COIN segments
            e = t
            while e < len(v.labels) and v.labels[e] == v.labels[t]:
                e += 1
            if v.labels[t]:
                segs.append({"id": str(v.labels[t]), "segment": [float(t), float(e)], "label": f"step{v.labels[t]}"})
            t = e
        db[v.video_id] = {"duration": float(len(v.labels)), "class": "T", "recipe_type": 0, "video_url": "",
                          "subset": "training" if i < 3 else "testing", "annotation": segs}
    (tmp_path / "COIN.json").write_text(json.dumps({"database": db}))
    from actbert.data.tokenizer import WordPieceTokenizer

    tok = WordPieceTokenizer.train(["cut pour fry"], vocab_size=30, min_frequency=1)  # [CLS] = 2, [SEP] = 3
    tiny_model().save_pretrained(tmp_path / "ckpt", tokenizer=tok)
    common = ["--store", str(tmp_path / "store"), "--annotations", str(tmp_path / "COIN.json"), "--no-progress",
              "--plots", "1"]
    p = argparse.ArgumentParser()
    G.add_finetune_arguments(p)
    args = p.parse_args(["--model", str(tmp_path / "ckpt"), "--out", str(tmp_path / "run"),
                         "--max-steps", "2", "--window", "8", "--stride", "4", *common])
    assert G.run_finetune(args) == 0
    rec = json.loads((tmp_path / "run" / "results.json").read_text())
    assert rec["task"] == "segmentation" and rec["split"] == "testing"
    assert {"frame_acc", "nonbg_acc", "background_only"} <= set(rec["metrics"])
    assert rec["metrics"]["n_videos"] == 2 and rec["config"]["head"]["num_classes"] == NCLS
    assert rec["config"]["head"]["cls_id"] == tok.cls_id
    assert (tmp_path / "run" / "timeline_c3.png").is_file()
    preds = json.loads((tmp_path / "run" / "predictions.json").read_text())
    assert sorted(preds) == ["c3", "c4"]
    p = argparse.ArgumentParser()
    G.add_evaluate_arguments(p)
    args = p.parse_args(["--model", str(tmp_path / "run"), "--out", str(tmp_path / "run2"), *common])  # run folder
    assert G.run_evaluate(args) == 0
    assert json.loads((tmp_path / "run2" / "predictions.json").read_text()) == preds
