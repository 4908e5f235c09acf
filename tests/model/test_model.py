"""ActBERT encoder + pre-training heads: masking, robustness, gradients, learning, input validation."""
from __future__ import annotations

import pytest
import torch

from actbert.bench.synthetic import SPECIAL_IDS, random_batch
from actbert.data.masking import MaskingConfig, mask_batch
from actbert.model import ActBERTForPretraining, get_preset


@pytest.fixture(scope="module")
def cfg():
    return get_preset("tiny", vocab_size=1000, hidden_dropout=0.0, attention_dropout=0.0)


def masked(batch, cfg, seed=0, masking=None):
    g = torch.Generator().manual_seed(seed)
    return mask_batch(batch, masking or MaskingConfig(), SPECIAL_IDS, cfg.vocab_size, g)


def test_masking_rates_and_padding(cfg):
    g = torch.Generator().manual_seed(0)
    batch = random_batch(cfg, 512, text_len=36, num_regions=36, num_actions=5, generator=g)
    out = masked(batch, cfg)
    real_words = batch["text_mask"].bool() & ~torch.isin(batch["text_ids"], torch.tensor(list(SPECIAL_IDS.values())))
    chosen = out["mlm_labels"] != -100
    assert not (chosen & ~real_words).any(), "padding or special tokens were masked"
    rate = chosen.sum() / real_words.sum()
    assert 0.13 < rate < 0.17
    became_mask = (out["text_ids"] == SPECIAL_IDS["mask"]) & chosen
    kept = (out["text_ids"] == batch["text_ids"]) & chosen
    assert 0.76 < became_mask.sum() / chosen.sum() < 0.84
    assert 0.07 < kept.sum() / chosen.sum() < 0.13
    for stream, target in (("region", out["region_target_mask"]), ("action", out["action_target"] != -100)):
        mask = batch[f"{stream}_mask"].bool()
        assert not (target & ~mask).any(), f"padded {stream} tokens were masked"
        assert 0.12 < target.sum() / mask.sum() < 0.18
    zeroed = (out["region_feats"] == 0).all(-1) & out["region_target_mask"]
    assert 0.85 < zeroed.sum() / out["region_target_mask"].sum() < 0.95
    torch.testing.assert_close(out["region_loc"], batch["region_loc"])  # location is kept


def test_nothing_maskable_and_empty_streams_are_finite(cfg):
    torch.manual_seed(0)
    model = ActBERTForPretraining(cfg)
    batch = random_batch(cfg, 3, text_len=2, num_regions=0, num_actions=0)
    batch["text_ids"][:, 1] = SPECIAL_IDS["sep"]
    batch["text_mask"][:] = 1
    out = model(masked(batch, cfg))
    assert torch.isfinite(out.loss)
    assert all(torch.isfinite(v) for v in out.losses.values())
    assert float(out.losses["mlm"]) == 0.0 and float(out.losses["region"]) == 0.0
    # all-padded visual slots (slots exist, none real)
    batch = random_batch(cfg, 2, num_regions=4, num_actions=3)
    batch["region_mask"][:] = 0
    batch["action_mask"][:] = 0
    out = model(masked(batch, cfg))
    assert torch.isfinite(out.loss)
    assert torch.isfinite(out.encoder.region_hidden).all() and torch.isfinite(out.encoder.action_hidden).all()


def test_gradients_reach_every_parameter_group(cfg):
    torch.manual_seed(0)
    model = ActBERTForPretraining(cfg.replace(loss_weights={"contrastive": 1.0}))
    batch = random_batch(cfg, 8, num_regions=6, num_actions=4)
    batch["region_mask"][:, :3] = 1
    batch["action_mask"][:, :2] = 1
    batch["match_labels"] = torch.tensor([1, 1, 1, 1, 0, 0, 1, 0])
    out = model(masked(batch, cfg, masking=MaskingConfig(word_prob=0.5, action_prob=0.5, region_prob=0.5)))
    out.loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    # padding_idx row of the word embeddings has zero grad by design; everything else must learn
    assert no_grad == [], f"parameters without gradient: {no_grad}"
    groups = {"text_stages", "region_stages", "action_stages", "tnt_blocks", "text_embeddings", "region_embeddings", "action_embeddings"}
    seen = {n.split(".")[1] for n, p in model.named_parameters() if n.startswith("actbert.") and p.grad is not None}
    assert groups <= seen


def test_tiny_model_overfits_one_batch(cfg):
    torch.manual_seed(0)
    model = ActBERTForPretraining(cfg)
    batch = random_batch(cfg, 8, text_len=16, num_regions=8, num_actions=5, generator=torch.Generator().manual_seed(3))
    batch["region_mask"][:] = 1
    batch["action_mask"][:] = 1
    batch["match_labels"] = torch.tensor([1, 0, 1, 0, 1, 0, 1, 1])
    fixed = masked(batch, cfg, masking=MaskingConfig(word_prob=0.3, action_prob=0.4, region_prob=0.4))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(80):
        out = model(fixed)
        if first is None:
            first = {k: v.item() for k, v in out.losses.items()}
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    last = {k: v.item() for k, v in model(fixed).losses.items()}
    for name in ("mlm", "action", "region", "match"):
        assert last[name] < 0.25 * first[name], f"{name}: {first[name]:.3f} -> {last[name]:.3f}"


def test_bad_inputs_name_the_tensor(cfg):
    model = ActBERTForPretraining(cfg)
    good = random_batch(cfg, 2, num_regions=3, num_actions=2)
    cases = {
        "region_feats": dict(region_feats=torch.randn(2, 3, cfg.region_feat_dim + 1)),
        "action_feats": dict(action_feats=torch.randn(2, 2, 7)),
        "action_mask": dict(action_mask=torch.ones(2, 3)),
        "region_loc": dict(region_loc=torch.rand(2, 3, 4)),
        "text_mask": dict(text_mask=torch.ones(2, 5)),
        "text_ids": dict(text_ids=torch.ones(2, cfg.max_position_embeddings + 1, dtype=torch.long),
                         text_mask=torch.ones(2, cfg.max_position_embeddings + 1)),
    }
    for name, change in cases.items():
        with pytest.raises(ValueError, match=name):
            model({**good, **change})


def test_ablation_switches_hide_the_stream(cfg):
    torch.manual_seed(0)
    batch = random_batch(cfg, 2, num_regions=4, num_actions=3, with_targets=False)
    batch["action_mask"][:] = 1
    model = ActBERTForPretraining(cfg.replace(use_action_input=False)).eval()
    with torch.no_grad():
        a = model(batch).match_logits
        batch["action_feats"] = torch.randn_like(batch["action_feats"])
        b = model(batch).match_logits
    torch.testing.assert_close(a, b)  # action features cannot reach the output
