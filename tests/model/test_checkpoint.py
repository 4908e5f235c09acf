"""save_pretrained / from_pretrained round trips and refuses broken files with a clear message."""
from __future__ import annotations

import json

import pytest
import torch

from actbert.bench.synthetic import random_batch
from actbert.model import ActBERTForPretraining, get_preset
from actbert.model.checkpoint import CheckpointError


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    cfg = get_preset("tiny", vocab_size=500)
    model = ActBERTForPretraining(cfg).eval()
    model.save_pretrained(tmp_path / "ckpt")
    return model, tmp_path / "ckpt"


def test_round_trip_is_bit_identical(saved):
    model, path = saved
    loaded = ActBERTForPretraining.from_pretrained(path)
    batch = random_batch(model.config, 3, num_regions=4, num_actions=2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(batch).match_logits, loaded(batch).match_logits)
        assert torch.equal(loaded.mlm_head.word_embeddings.weight, loaded.actbert.text_embeddings.word.weight)
    assert loaded.mlm_head.word_embeddings.weight is loaded.actbert.text_embeddings.word.weight  # still tied
    assert json.loads((path / "config.json").read_text())["preset"] == "tiny"


def test_truncated_weights_name_the_file(saved):
    _, path = saved
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        ActBERTForPretraining.from_pretrained(path)


def test_mismatched_config_names_tensor_and_shapes(saved):
    _, path = saved
    cfg = json.loads((path / "config.json").read_text())
    cfg["num_action_classes"] = 33
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"action_head\.decoder\.weight: file \(20, 64\) vs model \(33, 64\)"):
        ActBERTForPretraining.from_pretrained(path)


def test_missing_files(saved, tmp_path):
    _, path = saved
    (path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        ActBERTForPretraining.from_pretrained(path)
    with pytest.raises(FileNotFoundError, match="config"):
        ActBERTForPretraining.from_pretrained(tmp_path)


def test_unknown_config_field_is_refused(saved):
    _, path = saved
    cfg = json.loads((path / "config.json").read_text())
    cfg["hidden_sizee"] = 3
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="hidden_sizee"):
        ActBERTForPretraining.from_pretrained(path)
