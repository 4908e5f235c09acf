"""The text stream loads a real local BERT checkpoint and reproduces transformers.BertModel."""
from __future__ import annotations

import os

import pytest
import torch

from actbert.bench.synthetic import random_batch
from actbert.model import ActBERTForPretraining
from actbert.model.bert_init import config_from_bert, load_bert_text_stream


@pytest.fixture(scope="module")
def hf_bert(minilm_dir):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import BertModel

    return BertModel.from_pretrained(str(minilm_dir)).eval()


def _text_only_batch():
    ids = torch.tensor([[101, 2085, 6366, 1996, 5855, 102, 0, 0], [101, 2292, 1005, 1055, 4062, 2009, 2039, 102]])
    return ids, (ids != 0).long()


def test_text_stream_equals_bert(minilm_dir, hf_bert):
    cfg = config_from_bert(minilm_dir, "tiny", text_stage_layers=[6, 0, 0])
    model = ActBERTForPretraining(cfg).eval()
    report = load_bert_text_stream(model, minilm_dir)
    assert len(report.loaded) == 5 + 6 * 16 and "pooler.dense.weight" in report.skipped
    ids, mask = _text_only_batch()
    with torch.no_grad():
        ours = model.actbert.encode_text(ids, mask).hidden
        ref = hf_bert(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()
    assert (ours - ref)[real].abs().max() < 1e-4


def test_tnt_placement_keeps_lower_layers_exact(minilm_dir, hf_bert):
    """With TNT blocks after layer 4 and 5, stage 0 (layers 0-3) sees text only and equals BERT's layer 4 output."""
    cfg = config_from_bert(minilm_dir, "tiny")
    assert cfg.text_stage_layers == [4, 1, 1]
    model = ActBERTForPretraining(cfg).eval()
    load_bert_text_stream(model, minilm_dir)
    ids, mask = _text_only_batch()
    with torch.no_grad():
        ours = model.actbert.encode_text(ids, mask).hidden
        ref = hf_bert(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[4]
        assert (ours - ref)[mask.bool()].abs().max() < 1e-4
        batch = random_batch(cfg, 2, text_len=8, num_regions=3, num_actions=2, with_targets=False)
        batch.update(text_ids=ids, text_mask=mask)
        assert torch.isfinite(model(batch).match_logits).all()


def test_layer_count_mismatch_is_refused(minilm_dir):
    cfg = config_from_bert(minilm_dir, "tiny", text_stage_layers=[3, 1, 1])
    with pytest.raises(ValueError, match="6 layers but the text stream has 5"):
        load_bert_text_stream(ActBERTForPretraining(cfg), minilm_dir)
