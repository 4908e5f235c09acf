"""Initialise the text stream from a local Hugging Face BERT directory (config.json, weights, vocab.txt).

The text stream's layers are laid out like BERT's, so the mapping is one-to-one: BERT layer i becomes
the i-th text layer in stage order (TNT blocks are extra modules between text layers).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from actbert.errors import ConfigError, InputError, read_json, torch_load_weights
from actbert.model.config import ActBERTConfig, get_preset

_EMBEDDINGS = {
    "embeddings.word_embeddings.weight": "text_embeddings.word.weight",
    "embeddings.position_embeddings.weight": "text_embeddings.position.weight",
    "embeddings.token_type_embeddings.weight": "text_embeddings.token_type.weight",
    "embeddings.LayerNorm.weight": "text_embeddings.norm.weight",
    "embeddings.LayerNorm.bias": "text_embeddings.norm.bias",
}
_LAYER = {
    "attention.self.query": "query",
    "attention.self.key": "key",
    "attention.self.value": "value",
    "attention.output.dense": "attn_out",
    "attention.output.LayerNorm": "attn_norm",
    "intermediate.dense": "ffn.inp",
    "output.dense": "ffn.out",
    "output.LayerNorm": "ffn.norm",
}
_MLM = {  # only present in checkpoints saved with their pre-training heads (e.g. bert-base-uncased)
    "cls.predictions.transform.dense": "mlm_head.transform.dense",
    "cls.predictions.transform.LayerNorm": "mlm_head.transform.norm",
}


@dataclass
class BertLoadReport:
    source: Path
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # tensors of the checkpoint with no place in ActBERT

    def __str__(self) -> str:
        return f"{self.source}: loaded {len(self.loaded)} tensors, skipped {len(self.skipped)} ({', '.join(self.skipped[:4])})"


def read_bert_config(bert_dir: str | Path) -> dict[str, Any]:
    path = Path(bert_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no BERT config.json in {bert_dir}")
    data = read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object (a BERT config.json)")
    missing = [k for k in BERT_SIZE_KEYS if k not in data]
    if missing:
        raise ConfigError(f"{path}: not a BERT config, missing key(s) {missing}")
    for k in BERT_SIZE_KEYS:  # checked here, before ActBERTConfig sees them, so the message names this file
        v = data[k]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{path}: {k} must be a positive integer, got {v!r}")
    if data.get("position_embedding_type", "absolute") != "absolute":
        raise ConfigError(f"{path}: only absolute position embeddings are supported, got {data['position_embedding_type']!r}")
    return data


# the keys `config_from_bert` reads; every one is a positive integer in a BERT config.json
BERT_SIZE_KEYS = ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size", "num_hidden_layers",
                  "max_position_embeddings", "type_vocab_size")


def config_from_bert(bert_dir: str | Path, preset: str = "base", **overrides: Any) -> ActBERTConfig:
    """A preset whose text stream has the BERT checkpoint's sizes; TNT placement keeps the preset's upper stages."""
    bert = read_bert_config(bert_dir)
    base = get_preset(preset)
    upper = base.text_stage_layers[1:]
    first = bert["num_hidden_layers"] - sum(upper)
    if first < 0:
        raise ConfigError(f"{bert_dir}: {bert['num_hidden_layers']} layers cannot hold the preset's upper stages {upper}")
    text = dict(
        vocab_size=bert["vocab_size"], text_hidden=bert["hidden_size"], text_heads=bert["num_attention_heads"],
        text_intermediate=bert["intermediate_size"], max_position_embeddings=bert["max_position_embeddings"],
        type_vocab_size=bert["type_vocab_size"], layer_norm_eps=bert.get("layer_norm_eps", 1e-12),
        pad_token_id=bert.get("pad_token_id", 0), text_stage_layers=[first, *upper],
    )
    try:
        return get_preset(preset, **{**text, **overrides})
    except ConfigError as exc:  # e.g. 10^6 layers or heads that do not divide the width: name the file
        raise ConfigError(f"{Path(bert_dir) / 'config.json'}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{Path(bert_dir) / 'config.json'}: {exc}") from None


def read_bert_weights(bert_dir: str | Path) -> tuple[dict[str, torch.Tensor], Path]:
    bert_dir = Path(bert_dir)
    st, binary = bert_dir / "model.safetensors", bert_dir / "pytorch_model.bin"
    if st.is_file():
        from actbert.model.checkpoint import read_weights

        return read_weights(st), st
    if binary.is_file():
        # weights_only: never unpickle arbitrary objects from a user's file
        state = torch_load_weights(binary, "BERT checkpoint")
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise InputError(binary, "does not hold a state dict of tensors")
        return state, binary
    raise FileNotFoundError(f"no model.safetensors or pytorch_model.bin in {bert_dir}")


def load_bert_text_stream(model: torch.nn.Module, bert_dir: str | Path) -> BertLoadReport:
    """Copy BERT weights into `model` (an ActBERTForPretraining or ActBERTModel); shapes must match."""
    state, source = read_bert_weights(bert_dir)
    state = {k.removeprefix("bert."): v for k, v in state.items()}
    prefix = "actbert." if hasattr(model, "actbert") else ""
    config: ActBERTConfig = model.config
    mapping = {src: prefix + dst for src, dst in _EMBEDDINGS.items()}
    layer_names = [
        f"{prefix}text_stages.{stage}.{j}"
        for stage, count in enumerate(config.text_stage_layers)
        for j in range(count)
    ]
    for i, name in enumerate(layer_names):
        for src, dst in _LAYER.items():
            for kind in ("weight", "bias"):
                mapping[f"encoder.layer.{i}.{src}.{kind}"] = f"{name}.{dst}.{kind}"
    if prefix:
        for src, dst in _MLM.items():
            for kind in ("weight", "bias"):
                mapping[f"{src}.{kind}"] = f"{dst}.{kind}"
        mapping["cls.predictions.bias"] = "mlm_head.bias"

    n_layers = sum(1 for k in state if k.startswith("encoder.layer.") and k.endswith("attention.self.query.weight"))
    if n_layers != len(layer_names):
        raise ValueError(f"{source}: BERT has {n_layers} layers but the text stream has {len(layer_names)}")
    target = model.state_dict()
    report = BertLoadReport(source)
    with torch.no_grad():
        for src, tensor in state.items():
            dst = mapping.get(src)
            if dst is None:
                report.skipped.append(src)
                continue
            if target[dst].shape != tensor.shape:
                raise ValueError(f"{source}: {src} has shape {tuple(tensor.shape)} but {dst} has {tuple(target[dst].shape)}")
            target[dst].copy_(tensor)
            report.loaded.append(src)
    missing = [src for src in mapping if src not in state and not src.startswith("cls.")]
    if missing:
        raise ValueError(f"{source}: BERT checkpoint lacks {missing[:5]}")
    return report
