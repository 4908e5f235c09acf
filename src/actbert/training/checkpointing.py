"""Training checkpoints: everything needed to continue a run bit for bit, never pickled.

One folder per checkpoint, `<run>/checkpoints/step-00000042/`:

    config.json, model.safetensors   the model (loadable with ActBERTForPretraining.from_pretrained)
    trainer.safetensors              optimizer tensors and the torch / CUDA RNG states
    trainer.json                     step, optimizer param groups and scalars, scheduler, grad scaler,
                                     python / numpy RNG states, data position, and a manifest (bytes + CRC32
                                     of every file) so that a truncated or damaged file is detected before use
    vocab.txt                        the tokenizer, when one is given

The folder is written under a temporary name and renamed in one step, so a crash mid-save never leaves
a half checkpoint under a real name. Loading tries the newest checkpoint first and falls back to older
ones with a warning when a file is missing, truncated or fails its checksum.
"""
from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from actbert.model.checkpoint import CheckpointError, load_state_checked, read_weights
from actbert.model.config import ActBERTConfig

log = logging.getLogger(__name__)
STEP_RE = re.compile(r"^step-(\d{8})$")
FORMAT = 1
TRAINER_JSON, TRAINER_TENSORS = "trainer.json", "trainer.safetensors"


def checkpoint_dir(root: Path, step: int) -> Path:
    return Path(root) / f"step-{step:08d}"


def list_checkpoints(root: str | Path) -> list[Path]:
    """Checkpoint folders under `root`, newest (highest step) first; temporary folders are ignored."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := STEP_RE.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def resolve_checkpoint(path: str | Path, files: tuple[str, ...] = ("config.json", "model.safetensors"),
                       what: str = "model") -> Path:
    """The model folder of `path`, in the one convention every command and `Pipeline` accept: `path` itself
    (holding `files`), a run's final `model/`, or the run's newest complete `checkpoints/step-*` folder.

    `files` names what makes a folder complete: an ActBERT checkpoint by default; a fine-tuned head passes
    its own (`captioning.json` + `model.safetensors`)."""
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"{what} {p} does not exist (expected a checkpoint folder or a run folder)")

    def ok(d: Path) -> bool:
        return all((d / f).is_file() for f in files)

    for candidate in (p, p / "model", *list_checkpoints(p / "checkpoints")):
        if ok(candidate):
            return candidate
    raise FileNotFoundError(f"{p} holds no {what}: expected {' + '.join(files)} in it, in {p / 'model'}, "
                            f"or in a {p / 'checkpoints'}/step-* folder")


# --- RNG states -----------------------------------------------------------------------------------
def capture_rng() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(JSON-able python/numpy states, tensors of the torch CPU and CUDA states)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {"python": [version, list(internal), gauss],
            "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = state
    return meta, tensors


def restore_rng(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng/cuda/")), key=lambda k: int(k.rsplit("/", 1)[1]))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# --- optimizer state without pickle ---------------------------------------------------------------
def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, per_param in state["state"].items():
        scalars[str(idx)] = {}
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{idx}/{key}"] = value.detach().cpu().contiguous()
                scalars[str(idx)][key] = {"tensor": True}
            else:
                scalars[str(idx)][key] = {"value": value}
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
    return {"param_groups": groups, "state": scalars}, tensors


def _join_optimizer(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for idx, per_param in meta["state"].items():
        state[int(idx)] = {
            key: tensors[f"optim/{idx}/{key}"] if spec.get("tensor") else spec["value"] for key, spec in per_param.items()
        }
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def _jsonable(state: dict[str, Any]) -> dict[str, Any]:
    # LambdaLR puts its lambdas' __dict__ in the state; they are rebuilt from the TrainConfig instead
    return {k: v for k, v in state.items() if k != "lr_lambdas"}


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return crc


# --- save -----------------------------------------------------------------------------------------
def save_checkpoint(root: str | Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, scaler: Any, trainer_state: dict[str, Any], tokenizer: Any = None,
                    keep: int = 3) -> Path:
    """Write checkpoint `step` atomically, then delete all but the `keep` newest. `model` is unwrapped (no DDP)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir(root, step)
    remove_leftovers(root)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
    try:
        model.save_pretrained(tmp, tokenizer=tokenizer)
        optim_meta, tensors = _split_optimizer(optimizer.state_dict())
        rng_meta, rng_tensors = capture_rng()
        tensors.update(rng_tensors)
        save_file(tensors, str(tmp / TRAINER_TENSORS), metadata={"format": str(FORMAT)})
        manifest = {p.name: {"bytes": p.stat().st_size, "crc32": _crc32(p)} for p in sorted(tmp.iterdir()) if p.is_file()}
        meta = {"format": FORMAT, "step": step, "optimizer": optim_meta, "scheduler": _jsonable(scheduler.state_dict()),
                "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
                "rng": rng_meta, "trainer": trainer_state, "manifest": manifest}
        # trainer.json last: its presence means every other file was complete when the manifest was taken
        (tmp / TRAINER_JSON).write_text(json.dumps(meta, indent=1, default=_json_default))
        for p in tmp.iterdir():
            _fsync(p)
        if final.exists():  # re-saving a step (e.g. after resuming from it): swap, never delete first
            trash = Path(tempfile.mkdtemp(prefix=f".old-{final.name}-", dir=root))
            os.replace(final, trash / final.name)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(root)[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return final


LEFTOVER_RE = re.compile(r"^\.(tmp|old)-step-\d{8}-")


def remove_leftovers(root: str | Path) -> list[str]:
    """Delete the temporary folders of saves a killed run never finished (`.tmp-step-*`, `.old-step-*`).

    Only the run's one saving process (rank 0) writes under `root`, so any such folder met here is dead.
    Returns the names removed (for a log line).
    """
    root = Path(root)
    gone = []
    if root.is_dir():
        for p in root.iterdir():
            if p.is_dir() and LEFTOVER_RE.match(p.name):
                shutil.rmtree(p, ignore_errors=True)
                gone.append(p.name)
    if gone:
        log.warning("removed %d unfinished checkpoint folder(s) of an earlier run under %s: %s", len(gone), root,
                    ", ".join(sorted(gone)[:5]))
    return gone


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"checkpoint state holds a value JSON cannot store: {type(obj).__name__}")


# --- load -----------------------------------------------------------------------------------------
def verify_checkpoint(path: Path) -> dict[str, Any]:
    """Read trainer.json and check every file of the manifest (size, CRC32); raise CheckpointError naming the problem."""
    meta_path = path / TRAINER_JSON
    if not meta_path.is_file():
        raise CheckpointError(f"{path}: no {TRAINER_JSON} (the save did not finish)")
    from actbert.errors import InputError, read_json

    try:
        meta = read_json(meta_path)
    except InputError as exc:
        raise CheckpointError(str(exc)) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        meta = meta if isinstance(meta, dict) else {}
        raise CheckpointError(f"{meta_path}: checkpoint format {meta.get('format')!r}, this code reads {FORMAT}")
    for name, want in meta.get("manifest", {}).items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{f}: missing")
        size = f.stat().st_size
        if size != want["bytes"]:
            raise CheckpointError(f"{f}: {size} bytes but {want['bytes']} were written (truncated or overwritten)")
        if _crc32(f) != want["crc32"]:
            raise CheckpointError(f"{f}: checksum mismatch (the file is damaged)")
    return meta


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    scaler: Any) -> dict[str, Any]:
    """Restore one checkpoint into the given objects; returns its trainer.json. Checks everything before
    changing anything, so a failure leaves the objects untouched."""
    meta = verify_checkpoint(path)
    saved = ActBERTConfig.load(path)
    if saved.vocab_size != model.config.vocab_size:
        raise CheckpointError(f"{path}: the checkpoint has a vocabulary of {saved.vocab_size} word pieces but the "
                              f"tokenizer / model config has {model.config.vocab_size}: use the run's own vocab.txt")
    weights = read_weights(path / "model.safetensors")  # copied into the parameters by load_state_dict
    # safetensors hands out tensors backed by a memory map of the file, and the optimizer keeps the state
    # tensors it is given: without a copy, pruning this checkpoint later (keep=1) would free no disk space
    # until the process exits (the deleted file stays mapped).
    trainer_tensors = {k: v.clone() for k, v in read_weights(path / TRAINER_TENSORS).items()}
    optim_state = _join_optimizer(meta["optimizer"], trainer_tensors)
    load_state_checked(model, weights, path / "model.safetensors")
    optimizer.load_state_dict(optim_state)
    scheduler.load_state_dict({**scheduler.state_dict(), **meta["scheduler"]})
    if scaler is not None and scaler.is_enabled() and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    restore_rng(meta["rng"], trainer_tensors)
    return meta


def load_latest(root: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                scaler: Any) -> tuple[Path, dict[str, Any]] | None:
    """Restore the newest loadable checkpoint under `root`, warning about each newer one that is damaged.

    Returns None when there is no checkpoint at all; raises CheckpointError when every one is damaged.
    A vocabulary mismatch is not "damage": it is raised at once (an older checkpoint would not fix it).
    """
    problems = []
    remove_leftovers(root)
    for path in list_checkpoints(root):
        try:
            meta = load_checkpoint(path, model, optimizer, scheduler, scaler)
        except CheckpointError as exc:
            if "vocabulary" in str(exc):
                raise
            problems.append(str(exc))
            msg = f"checkpoint {path} is unusable ({exc}); falling back to the previous one"
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            log.warning(msg)
            continue
        return path, meta
    if problems:
        raise CheckpointError(f"no usable checkpoint under {root}: " + " | ".join(problems))
    return None
