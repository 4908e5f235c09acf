"""Captioning: a short training on features that determine the sentence reproduces it on held-out clips,
beam 1 = greedy, metrics come from `caption_metrics` with protocol labels, save/load round-trip, CLI.

Test-made data: three feature patterns ↔ three sentences. Each video has one clip whose action and region
features are its pattern + noise; training and held-out clips are different videos of the same patterns.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from actbert.bench.store import make_synthetic_video
from actbert.model import ActBERTForPretraining, get_preset
from actbert.tasks import captioning as C
from actbert.tasks.caption_decoder import CaptionHeadConfig, length_penalty
from actbert.tasks.scoring import Clip
from tests.tasks.conftest import DictStore

SENTENCES = ["cut the tomato on the board", "pour water into the bowl", "fry the egg in the pan"]
AD, RD = 16, 24


def make_data(n_per_pattern: int, seed: int, prefix: str):
    """Videos whose features are one of 3 patterns (+ noise) and the clip captions that go with them."""
    rng = np.random.default_rng(seed)
    proto = np.random.default_rng(123)
    pa, pr = proto.normal(0, 2, (3, AD)).astype(np.float32), proto.normal(0, 2, (3, RD)).astype(np.float32)
    store, clips = DictStore(), []
    for i in range(3 * n_per_pattern):
        k, vid = i % 3, f"{prefix}{i}"
        v = make_synthetic_video(vid, rng, num_clips=4, num_frames=4, boxes=3, action_dim=AD, region_dim=RD,
                                 num_classes=5)
        v.action = (pa[k] + 0.5 * rng.standard_normal(v.action.shape)).astype(np.float32)
        v.region = (pr[k] + 0.5 * rng.standard_normal(v.region.shape)).astype(np.float32)
        store[vid] = v
        clips.append(Clip(vid, SENTENCES[k], 0.0, 8.0))
    return store, clips


def tiny_model():
    torch.manual_seed(0)
    from actbert.data.tokenizer import WordPieceTokenizer

    tok = WordPieceTokenizer.train(SENTENCES * 3, vocab_size=120, min_frequency=1)
    cfg = get_preset("tiny", vocab_size=tok.vocab_size, action_feat_dim=AD, region_feat_dim=RD,
                     num_region_classes=5, max_actions=4, max_regions=6, max_text_len=16)
    return ActBERTForPretraining(cfg).eval(), tok


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    model, tok = tiny_model()
    store, train = make_data(6, seed=0, prefix="tr")
    test_store, test = make_data(2, seed=1, prefix="te")
    store.update(test_store)
    cfg = C.CaptionTrainConfig(head=CaptionHeadConfig(num_layers=1, num_heads=4, max_len=10, dropout=0.0),
                               max_steps=60, batch_size=9, lr=3e-3, encoder_lr=1e-3, label_smoothing=0.0,
                               progress=False)
    before = {k: v.clone() for k, v in model.actbert.state_dict().items()}
    cap = C.train_captioner(model, tok, train, store, cfg)
    return model, before, cap, store, train, test


def test_training_reproduces_the_sentence_on_held_out_clips(trained):
    model, before, cap, store, train, test = trained
    assert cap.history[-1]["loss"] < 0.5 * cap.history[0]["loss"]
    preds = cap.generate(cap.video_inputs(store, test), beam_size=3)
    exact = np.mean([p == c.text for p, c in zip(preds, test)])
    assert exact >= 5 / 6, list(zip(preds, [c.text for c in test]))  # chance (one of 3 sentences) is 1/3
    # the caller's pre-trained model is untouched (the captioner fine-tunes a copy)
    assert all(torch.equal(v, model.actbert.state_dict()[k]) for k, v in before.items())


def test_beam_one_equals_greedy(trained):
    _, _, cap, store, _, test = trained
    items = cap.video_inputs(store, test)
    assert cap.generate_ids(items, "beam", beam_size=1) == cap.generate_ids(items, "greedy")
    with pytest.raises(ValueError, match="method"):
        cap.generate_ids(items, "sample")


def test_metrics_in_both_protocols_are_labelled_and_match_caption_metrics(trained, tmp_path):
    from actbert.metrics.captioning import caption_metrics

    _, _, cap, store, _, test = trained
    m = C.evaluate_captioning(cap, test, store, protocol="both", meteor=False,
                              predictions_path=tmp_path / "p.jsonl", progress=False)
    assert m["corpus"]["protocol"] == "corpus" and m["per_video"]["protocol"] == "per_video"
    assert m["decoding"]["beam_size"] == 5 and m["n_clips"] == len(test)
    recs = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert recs == m["predictions"] and len(recs) == len(test)
    preds = {i: r["prediction"] for i, r in enumerate(recs)}
    refs = {i: [r["reference"]] for i, r in enumerate(recs)}
    direct = caption_metrics(preds, refs, protocol="corpus", meteor=False)
    assert m["corpus"] == direct
    assert m["corpus"]["BLEU4"] > 50  # the sentences are (nearly) reproduced


def test_save_load_round_trip_gives_identical_predictions(trained, tmp_path):
    _, _, cap, store, _, test = trained
    cap.save(tmp_path / "cap")
    assert {p.name for p in (tmp_path / "cap").iterdir()} == {"captioning.json", "model.safetensors", "vocab.txt",
                                                              "tokenizer_config.json"}
    back = C.Captioner.load(tmp_path / "cap")
    items = cap.video_inputs(store, test)
    assert back.generate_ids(items) == cap.generate_ids(items)
    assert back.head == cap.head
    (tmp_path / "bad").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no captioning model"):
        C.Captioner.load(tmp_path / "bad")


def test_bad_input_is_named():
    model, tok = tiny_model()
    store, clips = make_data(1, seed=0, prefix="x")
    with pytest.raises(KeyError, match="nowhere"):
        C.train_captioner(model, tok, [Clip("nowhere", "a b", 0, 1)], store,
                          C.CaptionTrainConfig(max_steps=1, progress=False))
    with pytest.raises(ValueError, match="empty sentence.*'x0'"):
        C.train_captioner(model, tok, [Clip("x0", " ", 0, 1)], store, C.CaptionTrainConfig(max_steps=1, progress=False))
    with pytest.raises(ValueError, match="num_heads"):
        CaptionHeadConfig(d_model=30, num_heads=4)
    assert length_penalty(1, 0.0) == 1.0 and length_penalty(7, 1.0) == 2.0


def test_cli_finetune_then_evaluate_on_youcook2_json(tmp_path, capsys):
    """The registry's contract: finetune on `training`, evaluate `validation`, results.json with both protocols."""
    from actbert.data.store import StoreWriter

    model, tok = tiny_model()
    store, clips = make_data(2, seed=0, prefix="y")
    with StoreWriter(tmp_path / "store", part="p0") as w:
        for v in store.values():
            w.add(v)
    db = {c.video_id: {"duration": 8.0, "subset": "training" if i < 4 else "validation", "recipe_type": "1",
                       "annotations": [{"segment": [0, 8], "id": 0, "sentence": c.text}], "video_url": ""}
          for i, c in enumerate(clips)}
    (tmp_path / "yc2.json").write_text(json.dumps({"database": db}))
    model.save_pretrained(tmp_path / "ckpt", tokenizer=tok)
    common = ["--store", str(tmp_path / "store"), "--annotations", str(tmp_path / "yc2.json"), "--no-meteor",
              "--no-progress", "--beam-size", "2"]
    p = argparse.ArgumentParser()
    C.add_finetune_arguments(p)
    args = p.parse_args(["--model", str(tmp_path / "ckpt"), "--out", str(tmp_path / "run"),
                         "--max-steps", "3", "--decoder-layers", "1", *common])
    assert C.run_finetune(args) == 0
    rec = json.loads((tmp_path / "run" / "results.json").read_text())
    assert rec["task"] == "captioning" and rec["split"] == "validation"
    assert set(rec["metrics"]) >= {"corpus", "per_video", "decoding"}
    assert "predictions" not in rec["metrics"] and (tmp_path / "run" / "predictions.jsonl").is_file()
    p = argparse.ArgumentParser()
    C.add_evaluate_arguments(p)
    args = p.parse_args(["--model", str(tmp_path / "run"), "--out", str(tmp_path / "run2"), "--protocol",
                         "corpus", *common])
    assert C.run_evaluate(args) == 0
    rec2 = json.loads((tmp_path / "run2" / "results.json").read_text())
    assert rec2["metrics"]["corpus"] == rec["metrics"]["corpus"]  # same weights, same beam, same captions
