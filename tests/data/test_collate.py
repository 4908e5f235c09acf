"""Collator: the exact model batch, padding caps, negatives from other videos, masking, workers."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from actbert.data.collate import EvalCollator, PretrainCollator, pretrain_loader
from actbert.data.corpus import ClipSample, CorpusConfig, NarratedCorpus

D_A, D_R, C = 8, 6, 5
CFG = SimpleNamespace(max_text_len=12, max_actions=3, max_regions=4, action_feat_dim=D_A, region_feat_dim=D_R,
                      num_action_classes=4, num_region_classes=C, max_region_frames=2)
TEXTS = ["cut the onion into small pieces", "add salt", "mix the flour and the eggs well", "pour the batter"]


@pytest.fixture(scope="module")
def tok():
    from actbert.data.tokenizer import WordPieceTokenizer

    return WordPieceTokenizer.train(TEXTS * 5, vocab_size=200, min_frequency=1)


def sample(vid, text, a, n, seed=0):
    rng = np.random.default_rng(seed)
    cls = rng.random((n, C)).astype(np.float32)
    return ClipSample(vid, 0.0, 5.0, text, rng.random((a, D_A), dtype=np.float32), np.arange(a) % 3 - (a > 1),
                      rng.random((n, D_R), dtype=np.float32), rng.random((n, 5), dtype=np.float32),
                      cls / cls.sum(1, keepdims=True), np.arange(n))


BATCH = [sample("a", TEXTS[0], 2, 5), sample("b", TEXTS[1], 0, 0), sample("c", TEXTS[2], 4, 1), sample("a", "", 1, 2)]


def test_exact_batch(tok):
    col = EvalCollator(tok, CFG)
    b = col(BATCH)
    assert set(b) == {"text_ids", "text_mask", "text_segment", "action_feats", "action_mask", "action_labels",
                      "region_feats", "region_loc", "region_mask", "region_frame", "region_cls", "match_labels"}
    L = b["text_ids"].shape[1]
    assert L <= CFG.max_text_len and b["text_mask"][:, 0].eq(1).all() and b["text_ids"][:, 0].eq(tok.cls_id).all()
    assert b["text_ids"][b["text_mask"] == 0].eq(0).all()  # [PAD] is 0
    assert b["action_feats"].shape == (4, 3, D_A) and b["region_feats"].shape == (4, 4, D_R)  # capped at 3 / 4
    assert b["region_loc"].shape == (4, 4, 5) and b["region_cls"].shape == (4, 4, C)
    assert b["action_mask"].tolist() == [[1, 1, 0], [0, 0, 0], [1, 1, 1], [1, 0, 0]]
    assert b["region_mask"].sum(1).tolist() == [4, 0, 1, 2]
    assert b["action_labels"][0].tolist() == [-1 + 1 - 1, 1 - 1, -100] and b["action_labels"][1].eq(-100).all()
    assert b["region_frame"].max() == 1  # clamped to max_region_frames - 1, counted
    np.testing.assert_array_equal(b["action_feats"][2].numpy(), BATCH[2].action[:3])
    assert b["action_feats"][1].abs().sum() == 0 and b["match_labels"].eq(1).all()
    for k, dt in (("text_ids", torch.long), ("action_labels", torch.long), ("region_frame", torch.long),
                  ("match_labels", torch.long), ("action_feats", torch.float32), ("region_cls", torch.float32)):
        assert b[k].dtype == dt, k
    assert col.stats["actions_truncated"] == 1 and col.stats["regions_truncated"] == 1
    assert col.stats["region_frames_clamped"] == 2 and col.stats["captions_without_tokens"] == 1
    assert col.stats["samples_without_regions"] == 1


def test_negatives_come_from_other_videos(tok):
    col = PretrainCollator(tok, CFG, negative_prob=1.0, seed=3)
    b = col(BATCH)
    assert b["match_labels"].eq(0).all()
    own = EvalCollator(tok, CFG)(BATCH)["text_ids"]
    for i in range(4):  # never the caption of the same video: sample 0 and 3 are both video "a"
        assert not torch.equal(b["text_ids"][i], own[i])
    assert not torch.equal(b["text_ids"][0], own[3]) and not torch.equal(b["text_ids"][3], own[0])
    one = col([sample("a", TEXTS[0], 1, 1), sample("a", TEXTS[1], 1, 1)])
    assert one["match_labels"].eq(1).all() and col.stats["batches_without_negatives_one_video"] == 1
    half = PretrainCollator(tok, CFG, seed=0)
    rate = torch.cat([half(BATCH)["match_labels"] for _ in range(100)]).float().mean()
    assert 0.4 < rate < 0.6


def test_seeded_and_masked(tok):
    from actbert.data.masking import MaskingConfig

    m = MaskingConfig(word_prob=0.5, action_prob=0.5, region_prob=0.5)
    b1 = PretrainCollator(tok, CFG, masking=m, seed=7)(BATCH)
    b2 = PretrainCollator(tok, CFG, masking=m, seed=7)(BATCH)
    for k in b1:
        assert torch.equal(b1[k], b2[k]), k
    assert {"mlm_labels", "action_target", "region_target_mask"} <= set(b1)
    assert b1["mlm_labels"][b1["text_mask"] == 0].eq(-100).all()
    assert not b1["region_target_mask"][b1["region_mask"] == 0].any()
    assert b1["action_target"][b1["action_mask"] == 0].eq(-100).all()


def test_dimension_mismatch_names_sample(tok):
    bad = sample("zz", "x", 1, 1)
    bad.action = np.zeros((1, D_A + 1), np.float32)
    with pytest.raises(ValueError, match=r"'zz'.*action.*action_feat_dim"):
        EvalCollator(tok, CFG)([bad])


def test_loader_with_workers_feeds_the_model(tok, tmp_path):
    from actbert.bench.store import make_synthetic_video
    from actbert.data.store import FeatureStore, StoreWriter

    rng = np.random.default_rng(0)
    with StoreWriter(tmp_path, shard_videos=3) as w:
        for i in range(6):
            w.add(make_synthetic_video(f"v{i}", rng, num_clips=10, num_frames=5, boxes=3, action_dim=D_A,
                                       region_dim=D_R, num_classes=C))
    caps = {f"v{i}": [(2.0 * k, 2.0 * k + 2, TEXTS[k % 4]) for k in range(10)] for i in range(6)}
    vocab = SimpleNamespace(label=lambda t: 0 if t.startswith("cut") else None)
    corpus = NarratedCorpus(FeatureStore(tmp_path), caps, vocab, CorpusConfig(max_actions=3, max_regions=4))
    col = PretrainCollator(tok, CFG, seed=1)
    runs = []
    for _ in range(2):  # the same seed gives the same batches, whatever the worker scheduling
        loader = pretrain_loader(corpus, col, batch_size=4, num_workers=2, seed=5, persistent_workers=False)
        runs.append([b["match_labels"].tolist() + b["text_ids"][:, 1].tolist() for b in loader])
    assert runs[0] == runs[1] and sum(len(r) for r in runs[0]) == 2 * len(corpus)
    stream = list(pretrain_loader(corpus, col, batch_size=4, num_workers=2, streaming=True, seed=5))
    assert sum(len(b["match_labels"]) for b in stream) == len(corpus)
    try:
        from actbert.model import ActBERTForPretraining, get_preset
    except ImportError as e:
        pytest.skip(f"model not importable yet: {e}")
    cfg = get_preset("tiny", action_feat_dim=D_A, region_feat_dim=D_R, num_region_classes=C, num_action_classes=4,
                     vocab_size=tok.vocab_size, max_text_len=12, max_actions=3, max_regions=4)
    from actbert.data.masking import MaskingConfig

    batch = PretrainCollator(tok, cfg, masking=MaskingConfig(), seed=0)([corpus[i] for i in range(8)])
    out = ActBERTForPretraining(cfg)(batch)
    assert torch.isfinite(out.loss)
