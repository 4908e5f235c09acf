"""What the fine-tuned tasks (captioning, segmentation) share: the training loop and the task checkpoints.

* `fit`: AdamW over parameter groups (a new head at a higher learning rate than the encoder), linear
  warm-up and decay, clipping, a progress bar; it returns the per-step history.
* Task checkpoints: `<task>.json` (the head's config + the ActBERT config) written last, beside
  `model.safetensors`, so a folder with the JSON is complete; loading checks the task name and the format.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["fit", "save_task_checkpoint", "read_task_checkpoint", "load_task_weights", "TASK_WEIGHTS"]

def fit(module: nn.Module, groups: list[dict], n_items: int, cfg, loss_fn, desc: str,
        frozen: nn.Module | None = None) -> list[dict]:
    """AdamW over parameter `groups`, linear warm-up then linear decay, gradient clipping; returns the history.

    `cfg` supplies epochs, max_steps (replaces epochs when set; the data is cycled), batch_size,
    weight_decay, warmup_frac, grad_clip, seed and progress. `loss_fn(rows)` is the loss of the items
    `rows` (a shuffled batch of indices). `frozen` (a sub-module) stays in eval mode: no dropout in a
    frozen feature extractor.
    """
    from tqdm.auto import tqdm

    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    per_epoch = -(-n_items // cfg.batch_size)
    total = int(cfg.max_steps) if cfg.max_steps is not None else cfg.epochs * per_epoch
    warm = max(1, int(cfg.warmup_frac * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    params = [p for g in groups for p in g["params"]]
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[dict] = []
    module.train()
    if frozen is not None:
        frozen.eval()
    bar = tqdm(total=total, desc=desc, disable=not cfg.progress)
    while len(history) < total:
        order = torch.randperm(n_items, generator=gen).tolist()
        for b in range(per_epoch):
            if len(history) >= total:
                break
            loss = loss_fn(order[b * cfg.batch_size:(b + 1) * cfg.batch_size])
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: non-finite loss at step {len(history)}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            history.append({"step": len(history), "loss": loss.item(), "lr": sched.get_last_lr()[0]})
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    module.eval()
    return history

TASK_WEIGHTS = "model.safetensors"


def save_task_checkpoint(directory: str | Path, task: str, module: nn.Module, meta: dict[str, Any],
                         tokenizer=None) -> Path:
    """`<task>.json` (``task``, ``format_version`` + `meta`), `model.safetensors`, and the tokenizer's
    `vocab.txt` when given; every file is replaced atomically (a crash leaves the old file, never half)."""
    from safetensors.torch import save_file

    from actbert.utils import atomic_path, atomic_write_json

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    with atomic_path(directory / TASK_WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "task": task})
    if tokenizer is not None:
        tmp_dir = Path(tempfile.mkdtemp(prefix=".tokenizer.", dir=directory))  # tokenizer.save is not atomic
        try:
            tokenizer.save(tmp_dir)
            for name in ("vocab.txt", "tokenizer_config.json"):
                os.replace(tmp_dir / name, directory / name)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    atomic_write_json(directory / f"{task}.json", {"task": task, "format_version": 1, **meta})  # last: marks done
    return directory


def task_checkpoint_dir(directory: str | Path, task: str) -> Path:
    """The head's folder: `directory` itself, or the `model/` (or newest checkpoint) of the run folder that
    `actbert finetune TASK --out` writes (the one model-folder convention, `resolve_checkpoint`)."""
    from actbert.training.checkpointing import resolve_checkpoint

    return resolve_checkpoint(directory, (f"{task}.json", TASK_WEIGHTS), what=f"{task} model")


def read_task_checkpoint(directory: str | Path, task: str) -> tuple[dict[str, Any], Any]:
    """(meta, ActBERTConfig) of a task checkpoint; errors name the folder / file and what is wrong."""
    from actbert.model import ActBERTConfig

    path = Path(directory) / f"{task}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a {task} checkpoint: no {path.name}")
    from actbert.errors import ConfigError, read_json

    meta = read_json(path)
    try:
        enc = ActBERTConfig.from_dict(meta["actbert"])
    except (KeyError, TypeError, ValueError) as exc:  # ConfigError included: name the file
        raise ConfigError(f"{path}: not a valid {task} config ({exc})") from None
    if meta.get("task") != task:
        raise ConfigError(f"{path}: task is {meta.get('task')!r}, not {task!r}")
    return meta, enc


def load_task_weights(module: nn.Module, directory: str | Path) -> None:
    """Load `model.safetensors` into `module`, naming every missing, unexpected or mis-shaped tensor."""
    from actbert.model.checkpoint import load_state_checked, read_weights

    path = Path(directory) / TASK_WEIGHTS
    load_state_checked(module, read_weights(path), path)
