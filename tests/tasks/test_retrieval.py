"""Retrieval: cached + batched scoring equals the naive per-pair loop, two-stage k=N equals exhaustive,
metrics of a hand-made matrix pass through unchanged, windows, and fine-tuning runs.

The helpers at the top (tiny model, stand-in store, tokenizer) are shared with test_qa / test_localization.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from actbert.bench.store import make_synthetic_video
from actbert.model import ActBERTForPretraining, get_preset
from actbert.tasks import retrieval as R
from actbert.tasks import scoring as S
from actbert.tasks.scoring import Clip
from tests.tasks.conftest import DictStore

DIMS = dict(action_dim=16, region_dim=24, num_classes=5, boxes=4)
WORDS = "cut the onion slice tomato fry egg pour water stir mix add salt boil pasta whisk cream".split()


def tiny_model(seed: int = 0, **overrides) -> ActBERTForPretraining:
    torch.manual_seed(seed)
    cfg = get_preset("tiny", vocab_size=200, action_feat_dim=16, region_feat_dim=24, num_region_classes=5,
                     max_actions=4, max_regions=6, max_text_len=12, hidden_dropout=0.1, **overrides)
    return ActBERTForPretraining(cfg).eval()


def make_store(n: int, seed: int = 0, clips: int = 6, prefix: str = "v") -> DictStore:
    rng = np.random.default_rng(seed)
    return DictStore({f"{prefix}{i}": make_synthetic_video(f"{prefix}{i}", rng, num_clips=clips,
                                                           num_frames=clips, **DIMS) for i in range(n)})


def make_tokenizer(texts=None):
    from actbert.data.tokenizer import WordPieceTokenizer

    corpus = list(texts or []) + [" ".join(WORDS)] * 3
    return WordPieceTokenizer.train(corpus, vocab_size=150, min_frequency=1)


def captions(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 7)))) for _ in range(n)]


# --- scoring engine ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def setup():
    model, store, tok = tiny_model(), make_store(5), make_tokenizer()
    clips = [Clip(f"v{i}", t, 2.0 * (i % 2), 2.0 * (i % 2) + 6.0) for i, t in enumerate(captions(5))]
    return model, store, tok, clips


def test_window_inputs_selects_overlapping_clips_and_spreads_regions():
    v = make_store(1, clips=8)["v0"]  # clips of 2 s: [0,2), [2,4), ...
    w = S.window_inputs(v, 3.0, 7.0, max_actions=10, max_regions=100)
    np.testing.assert_array_equal(w["action"], v.action[[1, 2, 3]])
    assert S.window_inputs(v, 3.0, 7.0, max_actions=2, max_regions=3)["action"].shape == (2, 16)
    # outside every clip: the nearest one, never an empty window
    assert S.window_inputs(v, 100.0, 101.0, 4, 4)["action"].shape[0] == 1
    r = S.window_inputs(v, 0.0, 16.0, max_actions=4, max_regions=8)
    assert r["region"].shape == (8, 24) and len(set(r["region_frame"].tolist())) == 8  # one box per frame first
    assert (r["region_loc"][:, :4] <= 1).all() and (r["region_loc"] >= 0).all()
    with pytest.raises(ValueError, match="'v0'.*before its start"):
        S.window_inputs(v, 5.0, 1.0, 4, 4)


def test_missing_video_is_named():
    with pytest.raises(KeyError, match="nope"):
        S.windows_for(make_store(1), [("nope", None, None)], tiny_model().config)


@pytest.mark.parametrize("batch_size", [1, 3, 7])
def test_cached_batched_scores_equal_naive_pair_by_pair(setup, batch_size):
    model, store, tok, clips = setup
    ids, mask = S.tokenize(tok, [c.text for c in clips], model.config.max_text_len)
    items = S.windows_for(store, [c.window for c in clips], model.config)
    text = S.encode_texts(model, ids, mask, batch_size=batch_size)
    video = S.encode_windows(model, items, batch_size=batch_size)
    fast = S.score_matrix(model, text, video, batch_size=batch_size)
    naive = np.zeros_like(fast)
    for i in range(len(clips)):  # the reference: one full model(batch) per pair, each unpadded
        for j in range(len(clips)):
            t_ids, t_mask = tok.encode_batch([clips[i].text], model.config.max_text_len)
            it = items[j]
            vb = S.collate_windows([it], max(1, it["action"].shape[0]), max(1, it["region"].shape[0]))
            with torch.no_grad():
                logits = model({"text_ids": t_ids, "text_mask": t_mask, **vb}).match_logits
            naive[i, j] = torch.log_softmax(logits, -1)[0, 1].item()
    np.testing.assert_allclose(fast, naive, rtol=1e-4, atol=1e-5)
    assert fast.std() > 0  # not a constant matrix


def test_naive_helper_matches_cached(setup):
    model, store, tok, clips = setup
    ids, mask = S.tokenize(tok, [c.text for c in clips], model.config.max_text_len)
    items = S.windows_for(store, [c.window for c in clips], model.config)
    vb = S.collate_windows(items, 4, 6)
    ti, vj = np.divmod(np.arange(25), 5)
    naive = S.naive_score_pairs(model, ids, mask, vb, ti, vj, batch_size=4).reshape(5, 5)
    cached = S.score_matrix(model, S.encode_texts(model, ids, mask), S.encode_windows(model, items), batch_size=6)
    np.testing.assert_allclose(cached, naive, rtol=1e-4, atol=1e-5)


# --- retrieval ----------------------------------------------------------------------------------------
def test_two_stage_with_k_equal_n_is_exhaustive(setup):
    model, store, tok, clips = setup
    ex = R.retrieval_scores(model, tok, clips, store, "exhaustive", progress=False, batch_size=4)
    two = R.retrieval_scores(model, tok, clips, store, "two-stage", k=len(clips), progress=False)
    for d in ("t2v", "v2t"):
        np.testing.assert_array_equal(np.argsort(-ex[d], 1, kind="stable"), np.argsort(-two[d], 1, kind="stable"))
    # the first stage alone: contrastive text embedding of caption i . video embedding of clip j
    text, video, t_map, v_map = R._encode(model, tok, clips, store, 256, False)
    with torch.no_grad():
        te, ve = model.embed_text(text).numpy()[t_map], model.embed_video(video).numpy()[v_map]
    np.testing.assert_allclose(two["first_stage_t2v"], te @ ve.T, rtol=1e-5, atol=1e-6)
    assert "first_stage_t2v" not in ex
    a = R.evaluate_retrieval(model, tok, clips, store, "exhaustive", progress=False)
    b = R.evaluate_retrieval(model, tok, clips, store, "two-stage", k=len(clips), progress=False)
    assert a["t2v"] == b["t2v"] and a["v2t"] == b["v2t"]


def test_two_stage_order_rest_keeps_first_stage_order():
    sim = np.array([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]])
    top = np.array([[0, 2], [1, 3]])
    full = np.array([[-2.0, -0.1], [-0.5, -0.5]])  # re-ranking swaps row 0's pair, ties row 1's
    out = R.two_stage_matrix(sim, top, full)
    assert np.argsort(-out[0], kind="stable").tolist() == [2, 0, 3, 1]
    assert out[1, 1] == out[1, 3] and out[1, 3] > out[1, 2] > out[1, 0]
    np.testing.assert_array_equal(R.first_stage_topk(sim, 2), [[0, 2], [1, 3]])
    pytest.importorskip("faiss")
    np.testing.assert_array_equal(R.first_stage_topk(sim, 2, "faiss", sim, np.eye(4)), [[0, 2], [1, 3]])


def test_hand_made_matrix_metrics_pass_through(monkeypatch, setup):
    """The spec's tie example: whatever the model, the task reports metrics of the matrix it scored."""
    model, store, tok, _ = setup
    S_hand = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    monkeypatch.setattr(R, "retrieval_scores", lambda *a, **k: {
        "t2v": S_hand, "v2t": S_hand.T, "n_pairs_scored": 9, "n_unique_texts": 3, "n_unique_videos": 3,
        "seconds": {}})
    m = R.evaluate_retrieval(model, tok, [Clip("v0", "a")] * 3, store, progress=False)
    assert m["t2v"]["R1"] == 75.0 and m["t2v"]["tie_policy"] == "reference" and m["v2t"]["direction"] == "v2t"
    from actbert.metrics.retrieval import both_directions

    ref = both_directions(S_hand)
    assert m["t2v"] == ref["t2v"] and m["v2t"] == ref["v2t"]


def test_duplicate_windows_are_encoded_once_and_tie(setup):
    model, store, tok, _ = setup
    clips = [Clip("v0", "cut the onion"), Clip("v0", "fry egg"), Clip("v1", "cut the onion")]
    sc = R.retrieval_scores(model, tok, clips, store, progress=False)
    assert sc["n_unique_videos"] == 2 and sc["n_unique_texts"] == 2
    assert sc["t2v"][0, 0] == sc["t2v"][0, 1] and sc["t2v"][0, 2] == sc["t2v"][2, 2]


def test_finetune_lowers_matching_loss():
    model, store, tok = tiny_model(1), make_store(6, seed=3), make_tokenizer()
    clips = [Clip(f"v{i}", t) for i, t in enumerate(captions(6, seed=2))]
    hist = R.finetune_retrieval(model, tok, clips, store, epochs=20, batch_size=6, lr=1e-3, hard_negatives=2,
                                contrastive_weight=0.5, progress=False)
    assert len(hist) == 20 and {"match", "contrastive", "loss"} <= hist[0].keys()
    assert np.mean([h["match"] for h in hist[-5:]]) < np.mean([h["match"] for h in hist[:5]])
    assert not model.training


def test_load_clips_real_formats(shared_data):
    yc = R.load_clips("youcook2", shared_data / "youcook2/validation_youcook.sample.csv")
    assert len(yc) == 40 and yc[0].start is not None
    ms = R.load_clips("msrvtt", shared_data / "msrvtt/MSRVTT_JSFUSION_test.csv")
    assert len(ms) == 1000 and ms[0].start is None
    with pytest.raises(ValueError, match="unknown retrieval dataset"):
        R.load_clips("coin", "x.csv")
