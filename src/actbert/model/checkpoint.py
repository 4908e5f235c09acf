"""Checkpoints: `config.json` + `model.safetensors` (+ `vocab.txt`), never pickle.

Loading checks every tensor's name and shape against the model built from the saved config, so a
truncated, mismatched or missing file fails with a message naming the file and the problem.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from actbert.errors import ActbertError
from actbert.model.config import CONFIG_NAME, ActBERTConfig

WEIGHTS_NAME = "model.safetensors"
# The MLM decoder shares the word-embedding matrix; it is stored once, under the embedding's name.
TIED_PREFIXES = ("mlm_head.word_embeddings.",)


class CheckpointError(ActbertError, ValueError):
    """A checkpoint folder or weights file that cannot be loaded as it is."""


def _untied_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().contiguous()
        for k, v in model.state_dict().items()
        if not k.startswith(TIED_PREFIXES)
    }


def save_pretrained(model: nn.Module, directory: str | Path, tokenizer: Any = None) -> Path:
    from actbert import __version__
    from actbert.utils import atomic_path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(_untied_state(model), str(tmp), metadata={"format": "pt", "actbert_version": __version__})
    model.config.save(directory)
    if tokenizer is not None:
        tokenizer.save(directory)
    return directory


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"missing weights file {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: cannot read safetensors weights ({exc}); the file may be truncated or not a safetensors file"
        ) from exc


def load_state_checked(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load `state` into `model`, naming every missing, unexpected or mis-shaped tensor."""
    expected = _untied_state(model)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing tensors {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    if shapes:
        problems.append("shape mismatch " + "; ".join(shapes[:5]))
    if problems:
        raise CheckpointError(f"{source} does not match its config: " + " | ".join(problems))
    model.load_state_dict(state, strict=False)


def load_pretrained(cls, directory: str | Path, **config_overrides: Any):
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint directory {directory} does not exist")
    config = ActBERTConfig.load(directory / CONFIG_NAME)
    if config_overrides:
        config = config.replace(**config_overrides)
    model = cls(config)
    load_state_checked(model, read_weights(directory / WEIGHTS_NAME), directory / WEIGHTS_NAME)
    model.eval()
    model.source_dir = str(directory)  # so a Pipeline built from the object finds vocab.txt beside it
    return model
