"""Action-network architectures, weight loading, and save / load.

The action network is a 3D CNN classifying verbs; ActBERT uses its pooled penultimate activations as the
global action feature of each clip. Architectures (``ARCHS``):

* ``r3d_18`` (default for real data), ``r2plus1d_18`` and ``s3d``: torchvision's video models, so
  torchvision's Kinetics-400 weights load into them unchanged;
* ``tiny3d``: a four-layer 3D CNN (about 1 M parameters). It exists because ``r3d_18`` costs about 0.4 s
  per 16x112x112 clip on a 2-core CPU, which makes the CPU demo and the tests crawl; on 8-frame 32-112 px
  clips of the synthetic world ``tiny3d`` trains in seconds and is still a real spatio-temporal model.

Weights never come from the network: ``weights`` is a local file (safetensors, or a torchvision ``.pth``
state dict read with ``torch.load(weights_only=True)``), or ``"kinetics"``, meaning torchvision's published
file *if it is already in the local torch hub cache*; otherwise a clear error says where to put it.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from actbert.errors import ConfigError, InputError, read_json, read_safetensors, torch_load_weights

log = logging.getLogger(__name__)

__all__ = ["ARCHS", "ArchInfo", "ActionNetConfig", "ActionNet", "Tiny3D", "build_action_net",
           "load_weights", "kinetics_weights_path", "save_action_net", "load_action_net"]

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


class Tiny3D(nn.Module):
    """Small 3D CNN: four strided conv-BN-ReLU blocks, global average pool, linear classifier."""

    def __init__(self, num_classes: int = 400, width: int = 32):
        super().__init__()

        def block(cin: int, cout: int, stride) -> nn.Sequential:
            return nn.Sequential(nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False),
                                 nn.BatchNorm3d(cout), nn.ReLU(inplace=True))

        w = width
        # Time is downsampled only twice, so an 8-frame clip still has 2 temporal positions at the end.
        self.features = nn.Sequential(block(3, w, (1, 2, 2)), block(w, 2 * w, (2, 2, 2)),
                                      block(2 * w, 4 * w, (2, 2, 2)), block(4 * w, 8 * w, (1, 2, 2)))
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(8 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.avgpool(self.features(x)).flatten(1))


@dataclass(frozen=True)
class ArchInfo:
    """What an architecture needs: builder, feature size, head parameter names, default input."""

    build: Callable[[int], nn.Module]
    feature_dim: int
    head_keys: tuple[str, ...]
    clip_frames: int
    fps: float
    resize: int
    crop: int
    kinetics: str | None  # name of the torchvision weights enum, None when there are no published weights


def _tv(name: str) -> Callable[[int], nn.Module]:
    def build(num_classes: int) -> nn.Module:
        from torchvision.models import video

        return getattr(video, name)(weights=None, num_classes=num_classes)

    return build


ARCHS: dict[str, ArchInfo] = {
    "r3d_18": ArchInfo(_tv("r3d_18"), 512, ("fc.weight", "fc.bias"), 16, 16.0, 128, 112, "R3D_18_Weights"),
    "r2plus1d_18": ArchInfo(_tv("r2plus1d_18"), 512, ("fc.weight", "fc.bias"), 16, 16.0, 128, 112,
                            "R2Plus1D_18_Weights"),
    # S3D's published weights were trained on 224 px crops; we pool adaptively, so smaller input also runs.
    "s3d": ArchInfo(_tv("s3d"), 1024, ("classifier.1.weight", "classifier.1.bias"), 16, 16.0, 256, 224,
                    "S3D_Weights"),
    "tiny3d": ArchInfo(lambda n: Tiny3D(n), 256, ("fc.weight", "fc.bias"), 8, 8.0, 72, 64, None),
}


@dataclass
class ActionNetConfig:
    """Everything needed to rebuild the network and to feed it the clips it was trained on."""

    arch: str
    num_classes: int
    feature_dim: int
    clip_frames: int
    fps: float
    resize: int
    crop: int
    mean: tuple[float, ...] = KINETICS_MEAN
    std: tuple[float, ...] = KINETICS_STD
    verbs: list[str] = field(default_factory=list)
    training: dict = field(default_factory=dict)  # summary of how it was trained (accuracies, data counts)


class ActionNet(nn.Module):
    """A video classifier whose pooled penultimate activations are ActBERT's action features.

    ``forward(x)`` -> logits ``[B, num_classes]``; ``features(x)`` -> ``[B, feature_dim]``, with ``x``
    normalised float ``[B, 3, T, H, W]``. ``embed(clips)`` takes raw uint8 ``[B, T, H, W, 3]`` clips (what
    :func:`actbert.video.decode.stream_video` yields) and returns float32 numpy features.
    """

    def __init__(self, config: ActionNetConfig):
        super().__init__()
        self.config = config
        self.body = ARCHS[config.arch].build(config.num_classes)
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, 3, 1, 1, 1), persistent=False)

    @property
    def arch(self) -> str:
        return self.config.arch

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        b = self.body
        if self.arch in ("r3d_18", "r2plus1d_18"):
            x = b.layer4(b.layer3(b.layer2(b.layer1(b.stem(x)))))
        else:  # s3d and tiny3d both keep their trunk in `.features`
            x = b.features(x)
        return torch.nn.functional.adaptive_avg_pool3d(x, 1).flatten(1)

    def head(self, feats: torch.Tensor) -> torch.Tensor:
        if self.arch == "s3d":  # its classifier is Dropout + 1x1x1 conv
            return self.body.classifier(feats[:, :, None, None, None]).flatten(1)
        return self.body.fc(feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def preprocess(self, clips) -> torch.Tensor:
        """uint8 ``[B, T, H, W, 3]`` (numpy or tensor) -> normalised float ``[B, 3, T, H, W]`` on the net's device."""
        x = torch.as_tensor(np.asarray(clips) if not isinstance(clips, torch.Tensor) else clips)
        x = x.to(self.mean.device).permute(0, 4, 1, 2, 3).float().div_(255.0)
        return (x - self.mean) / self.std

    @torch.inference_mode()
    def embed(self, clips, bf16: bool = False) -> np.ndarray:
        """Action features of raw uint8 clips, ``[B, feature_dim]`` float32 (eval mode, no gradients).

        ``bf16`` runs the convolutions under bfloat16 autocast: about 2x faster on CPUs with AVX-512 BF16
        (measured on r3d_18, features within ~0.3 % of float32); slower on CPUs without it.
        """
        was_training = self.training
        self.eval()
        try:
            x = self.preprocess(clips)
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
                return self.features(x).float().cpu().numpy()
        finally:
            self.train(was_training)


def kinetics_weights_path(arch: str) -> tuple[Path, str]:
    """(expected local path, download url) of torchvision's Kinetics-400 weights for ``arch``."""
    info = ARCHS[arch]
    if info.kinetics is None:
        raise ValueError(f"no Kinetics weights exist for arch {arch!r}; train it from scratch or pass a file")
    from torchvision.models import video

    url = getattr(video, info.kinetics).KINETICS400_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name, url


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors or torch (weights_only) file; every failure is an InputError naming it."""
    if path.suffix == ".safetensors":
        state = read_safetensors(path, "action-net weights")
    else:
        state = torch_load_weights(path, "action-net weights")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # a training checkpoint that wraps the weights
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(path, "does not hold a state dict of tensors")
    return state


def load_weights(net: ActionNet, weights: str | Path) -> None:
    """Load a local weights file (or ``"kinetics"``) into ``net``.

    Keys may be torchvision's (``layer1.0...``) or ours (``body.layer1.0...``). A classifier whose class
    count differs (Kinetics' 400 vs the verb vocabulary) is left freshly initialised; any other missing or
    unexpected parameter is an error, so a file for the wrong architecture cannot half-load silently.
    """
    if str(weights) == "kinetics":
        path, url = kinetics_weights_path(net.arch)
        if not path.is_file():
            raise FileNotFoundError(
                f"Kinetics weights for {net.arch} are not in the local torch hub cache: download {url} "
                f"yourself and put it at {path} (or pass the file with --weights PATH); actbert never downloads")
    else:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
    state = {k[5:] if k.startswith("body.") else k: v for k, v in _read_state_dict(path).items()}
    own = net.body.state_dict()
    head = set(ARCHS[net.arch].head_keys)
    dropped = [k for k in head if k in state and state[k].shape != own[k].shape]
    for k in dropped:
        del state[k]
    missing = sorted(set(own) - set(state) - set(dropped))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(f"{path} does not fit arch {net.arch}: missing {missing[:3]}, unexpected "
                         f"{unexpected[:3]}, wrong shape {wrong[:3]}")
    net.body.load_state_dict(state, strict=False)
    if dropped:
        log.info("%s: classifier has a different class count; it starts from random init", path)


def build_action_net(arch: str = "r3d_18", num_classes: int = 400, weights: str | Path | None = None,
                     **input_overrides) -> ActionNet:
    """Build ``arch`` with a ``num_classes`` classifier, optionally loading ``weights`` (see module doc).

    ``input_overrides`` (``clip_frames``, ``fps``, ``resize``, ``crop``, ``mean``, ``std``, ``verbs``) replace
    the architecture's default input settings stored in the config.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown action-net arch {arch!r}; choose one of {sorted(ARCHS)}")
    info = ARCHS[arch]
    cfg = ActionNetConfig(arch=arch, num_classes=num_classes, feature_dim=info.feature_dim,
                          clip_frames=info.clip_frames, fps=info.fps, resize=info.resize, crop=info.crop)
    for k, v in input_overrides.items():
        if v is None:
            continue
        if not hasattr(cfg, k):
            raise TypeError(f"build_action_net: unknown setting {k!r}")
        setattr(cfg, k, tuple(v) if k in ("mean", "std") else v)
    net = ActionNet(cfg)
    if weights is not None:
        load_weights(net, weights)
    return net


WEIGHTS_FILE = "action_net.safetensors"
CONFIG_FILE = "config.json"


def save_action_net(net: ActionNet, directory: str | Path) -> Path:
    """Write ``action_net.safetensors`` + ``config.json`` into ``directory`` (each file replaced atomically)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    tmp = directory / (WEIGHTS_FILE + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt", "arch": net.arch})
    tmp.replace(directory / WEIGHTS_FILE)
    cfg = asdict(net.config)
    cfg["mean"], cfg["std"] = list(cfg["mean"]), list(cfg["std"])
    tmp = directory / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(cfg, indent=2) + "\n")
    tmp.replace(directory / CONFIG_FILE)
    return directory


def load_action_net(directory: str | Path, device: str | torch.device = "cpu") -> ActionNet:
    """Rebuild a network written by :func:`save_action_net`, in eval mode on ``device``."""

    directory = Path(directory)
    cfg_path = directory / CONFIG_FILE
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{directory} is not an action-net directory (no {CONFIG_FILE})")
    net = ActionNet(_read_config(cfg_path))
    weights = directory / WEIGHTS_FILE
    try:
        net.load_state_dict(read_safetensors(weights, "action-net weights"))
    except RuntimeError as exc:  # missing / unexpected / mis-shaped tensors
        raise InputError(weights, f"does not match {cfg_path.name}: {str(exc).splitlines()[0][:300]}") from None
    return net.to(device).eval()


def _read_config(cfg_path: Path) -> ActionNetConfig:
    """ActionNetConfig of a saved network, checked field by field before the network is built."""
    raw = read_json(cfg_path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{cfg_path}: expected a JSON object")
    fields = {f.name for f in dataclasses.fields(ActionNetConfig)}
    required = {"arch", "num_classes", "feature_dim", "clip_frames", "fps", "resize", "crop"}
    if missing := sorted(required - set(raw)):
        raise ConfigError(f"{cfg_path}: missing key(s) {missing}")
    if unknown := sorted(set(raw) - fields):
        raise ConfigError(f"{cfg_path}: unknown key(s) {unknown}")
    if raw["arch"] not in ARCHS:
        raise ConfigError(f"{cfg_path}: unknown arch {raw['arch']!r}; known: {sorted(ARCHS)}")
    for k in ("num_classes", "feature_dim", "clip_frames", "resize", "crop"):
        v = raw[k]
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 1 << 20:
            raise ConfigError(f"{cfg_path}: {k} must be an integer in [1, {1 << 20}], got {v!r}")
    if isinstance(raw["fps"], bool) or not isinstance(raw["fps"], (int, float)) or not 0 < raw["fps"] <= 1000:
        raise ConfigError(f"{cfg_path}: fps must be a number in (0, 1000], got {raw['fps']!r}")
    for k in ("mean", "std"):
        v = raw.get(k, KINETICS_MEAN if k == "mean" else KINETICS_STD)
        if not isinstance(v, (list, tuple)) or len(v) != 3 or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) or (k == "std" and min(v) <= 0):
            raise ConfigError(f"{cfg_path}: {k} must be 3 numbers{' > 0' if k == 'std' else ''}, got {v!r}")
        raw[k] = tuple(float(x) for x in v)
    if not isinstance(raw.get("verbs", []), list) or not isinstance(raw.get("training", {}), dict):
        raise ConfigError(f"{cfg_path}: verbs must be a list and training an object")
    return ActionNetConfig(**raw)
