"""Config presets, the PaddleVideo conventions as fields, and reading configs written by older versions."""
from __future__ import annotations

import json

import pytest
import torch

from actbert.bench.synthetic import SPECIAL_IDS, random_batch
from actbert.data.masking import MaskingConfig, mask_batch
from actbert.model import ActBERTConfig, ActBERTForPretraining, get_preset
from actbert.model.config import FORMAT_VERSION

# "paddlevideo" at tiny widths: every PaddleVideo convention, small enough for a unit test
TINY_PADDLE = dict(text_hidden=32, text_heads=4, text_intermediate=64, text_stage_layers=[1, 1, 1],
                   region_feat_dim=24, region_hidden=48, region_heads=4, region_intermediate=48,
                   action_feat_dim=16, action_hidden=32, action_heads=4, action_intermediate=64,
                   bi_hidden=40, bi_heads=4, pooled_dim=40, vocab_size=200, num_region_classes=11,
                   num_action_classes=7, hidden_dropout=0.0, attention_dropout=0.0)


def test_paddlevideo_preset_is_paddles_module_layout():
    c = get_preset("paddlevideo")
    assert (c.text_stage_layers, c.region_stage_layers, c.action_stage_layers) == ([10, 1, 1], [0, 1, 1], [0, 1, 2])
    assert (c.kv_mode, c.pooler_activation, c.match_fusion, c.pooled_dim) == ("add", "relu", "mul", c.bi_hidden)
    assert (c.region_feat_dim, c.action_feat_dim, c.num_region_classes, c.num_action_classes) == (2048, 2048, 1601, 700)
    assert not c.action_cls_token and not c.visual_position_type_embeddings and c.contrastive_dim == 0
    with torch.device("meta"):
        names = {n for n, _ in ActBERTForPretraining(c).named_parameters()}
    visual = [n for n in names if n.startswith(("actbert.region_embeddings.", "actbert.action_embeddings."))]
    assert sorted(visual) == sorted(f"actbert.{s}_embeddings.{m}.{w}" for s in ("region", "action")
                                    for m in (("feature", "location", "norm") if s == "region" else ("feature", "norm"))
                                    for w in ("weight", "bias"))  # no [ACT], frame, position or type embeddings
    assert not any(n.startswith("contrastive_head") for n in names)


def test_paddle_conventions_train_every_parameter():
    torch.manual_seed(0)
    cfg = get_preset("paddlevideo", **TINY_PADDLE)
    model = ActBERTForPretraining(cfg)
    batch = random_batch(cfg, 4, num_regions=5, num_actions=3)
    batch["region_mask"][:, :3] = 1
    batch["action_mask"][:, :2] = 1
    batch["match_labels"] = torch.tensor([1, 0, 1, 0])
    batch = mask_batch(batch, MaskingConfig(word_prob=0.5, action_prob=0.5, region_prob=0.5), SPECIAL_IDS,
                       cfg.vocab_size, torch.Generator().manual_seed(0))
    out = model(batch)
    assert out.action_logits.shape[1] == 3  # no [ACT] to skip: one logit row per clip
    out.loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert no_grad == [], no_grad


def test_paddle_model_needs_a_first_action_clip():
    cfg = get_preset("paddlevideo", **TINY_PADDLE)
    batch = random_batch(cfg, 2, num_regions=2, num_actions=3)
    batch["action_mask"][:] = 0
    with pytest.raises(ValueError, match=r"action_mask\[:, 0\] must be 1"):
        ActBERTForPretraining(cfg).eval()(batch)


@pytest.mark.parametrize("field,value", [("kv_mode", "tangled"), ("match_fusion", "max"),
                                         ("pooler_activation", "gelu"), ("context_resize_over", "some")])
def test_unknown_choices_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        get_preset("tiny", **{field: value})


def test_contrastive_loss_needs_a_head():
    with pytest.raises(ValueError, match="contrastive_dim"):
        get_preset("tiny", contrastive_dim=0, loss_weights={"contrastive": 1.0})


def test_format_1_stack_config_loads_as_coattention(tmp_path):
    """Before format 2, kv_mode "stack" named the co-attention wiring: old checkpoints keep their model."""
    old = get_preset("tiny").to_dict()
    del old["format_version"], old["context_resize_over"], old["pooler_activation"], old["match_fusion"]
    del old["action_cls_token"], old["visual_position_type_embeddings"], old["zero_pad_word_embedding"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    with pytest.warns(UserWarning, match="coattention"):
        cfg = ActBERTConfig.load(tmp_path)
    assert cfg.kv_mode == "coattention" and cfg.format_version == FORMAT_VERSION
    with torch.device("meta"):
        names = {n for n, _ in ActBERTForPretraining(cfg).named_parameters()}
    assert not any("context" in n for n in names)  # the old tensor set, so old weights load
    (tmp_path / "config.json").write_text(json.dumps({**old, "kv_mode": "add"}))
    with pytest.raises(ValueError, match="pre-2026-12 additive block"):
        ActBERTConfig.load(tmp_path)
