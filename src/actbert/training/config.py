"""TrainConfig: every setting of a pre-training run, saved as JSON beside the checkpoints.

`batch_size` is the **global** batch of one micro-step, summed over all ranks (each rank gets
`batch_size / world_size` samples); one optimizer step sees `batch_size * grad_accum` samples. Defining
it globally makes a run's result independent of how many processes run it (the DDP test relies on it).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TRAIN_CONFIG_NAME = "train_config.json"
PRECISIONS = ("fp32", "bf16", "fp16")
SCHEDULES = ("linear", "cosine", "constant")
LOSS_NAMES = ("mlm", "action", "region", "match", "contrastive")
# settings that may change when a run is resumed without breaking exactness (bookkeeping only)
RESUMABLE_CHANGES = {"eval_every", "save_every", "keep", "workers", "log_every", "steps"}


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 1e-4
    warmup: int = 100  # linear warm-up steps, from 0 to lr
    schedule: str = "linear"  # decay after warm-up: linear or cosine to 0, or constant
    weight_decay: float = 0.01  # not applied to biases, LayerNorm weights or scalars
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-6
    clip_grad: float = 1.0  # max global gradient norm; 0 disables clipping
    optimizer_in_backward: bool = False  # update each parameter during backward (less memory; training/optim.py)
    precision: str = "fp32"
    eval_every: int = 200  # 0: only at the end
    eval_batches: int = 8  # held-out batches per evaluation (masked accuracies, matching)
    eval_retrieval: int = 64  # held-out clips scored pairwise for zero-shot text->video R@1; 0 disables
    save_every: int = 500  # 0: only at the end
    keep: int = 3  # checkpoints kept (the newest ones)
    log_every: int = 10
    seed: int = 0
    workers: int = 0  # DataLoader worker processes per rank
    loss_weights: dict[str, float] = field(default_factory=dict)  # overrides of the model config's weights
    init_text: str | None = None  # local Hugging Face BERT directory for the text stream
    device: str = "auto"  # auto: cuda:<local rank> when available, else cpu

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # JSON gives a list back
        self.validate()

    def validate(self) -> None:
        positive = {"steps": self.steps, "batch_size": self.batch_size, "grad_accum": self.grad_accum, "keep": self.keep,
                    "log_every": self.log_every}
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        for name in ("warmup", "eval_every", "save_every", "eval_batches", "eval_retrieval", "workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"TrainConfig.{name} must be an integer >= 0, got {value!r}")
        for name in ("lr", "weight_decay", "clip_grad", "adam_eps"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"TrainConfig.{name} must be a finite number >= 0, got {value!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.optimizer_in_backward:
            clash = {"clip_grad": self.clip_grad > 0, "grad_accum": self.grad_accum > 1, "precision": self.precision == "fp16"}
            if any(clash.values()):
                raise ValueError(f"optimizer_in_backward updates each parameter as soon as its gradient exists, so it "
                                 f"cannot be combined with {', '.join(k for k, v in clash.items() if v)} "
                                 f"(needs clip_grad=0, grad_accum=1 and precision fp32 or bf16)")
        unknown = set(self.loss_weights) - set(LOSS_NAMES)
        if unknown:
            raise ValueError(f"unknown loss weight(s) {sorted(unknown)}; known: {', '.join(LOSS_NAMES)}")
        bad = {k: v for k, v in self.loss_weights.items() if not (math.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(f"loss weights must be finite and >= 0, got {bad}")

    # --- (de)serialisation ---
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, directory: str | Path) -> Path:
        from actbert.utils import atomic_write_json

        return atomic_write_json(Path(directory) / TRAIN_CONFIG_NAME, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        if path.is_dir():
            path = path / TRAIN_CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no training config at {path}")
        from actbert.errors import ConfigError, read_json

        data = read_json(path)
        try:
            return cls.from_dict(data)
        except (AttributeError, TypeError, ValueError) as exc:  # ConfigError included: name the file
            raise ConfigError(f"{path}: {exc}") from None

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def differences(self, other: "TrainConfig") -> dict[str, tuple[Any, Any]]:
        """{field: (self's value, other's value)} for every field that differs."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


def parse_loss_weights(text: str) -> dict[str, float]:
    """'mlm=1,action=1,contrastive=0.1' -> {'mlm': 1.0, ...}, with a message naming the bad item."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in LOSS_NAMES:
            raise ValueError(f"bad loss weight {item!r}: expected NAME=VALUE with NAME in {', '.join(LOSS_NAMES)}")
        try:
            out[name] = float(value)
        except ValueError:
            raise ValueError(f"bad loss weight {item!r}: {value.strip()!r} is not a number") from None
    return out


def lr_factor(step: int, config: TrainConfig) -> float:
    """Multiplier of the peak learning rate for optimizer step `step` (0-based): warm-up, then decay."""
    if config.warmup and step < config.warmup:
        return (step + 1) / config.warmup
    if config.schedule == "constant":
        return 1.0
    span = max(1, config.steps - config.warmup)
    progress = min(1.0, (step - config.warmup) / span)
    if config.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - progress
