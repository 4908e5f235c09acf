"""ActBERT configuration: one dataclass, saved as JSON beside every checkpoint, with named presets.

Stage layout: each stream runs `*_stage_layers[0]` single-modality layers, then TNT block 1, then
`*_stage_layers[1]` layers, then TNT block 2, and so on. So `len(*_stage_layers) == num_tnt_blocks + 1`
for all three streams. Everything in stage 0 sees one modality only, which is what makes per-caption /
per-video caching possible when scoring many pairs (see `ActBERTModel.encode_text` / `encode_video`).
"""
from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from actbert.errors import ConfigError, read_json

CONFIG_NAME = "config.json"
# 2: the Tangled Transformer follows the paper's Figure 3; version-1 configs' kv_mode "stack" was the
# co-attention wiring now called "coattention".
FORMAT_VERSION = 2
KV_MODES = ("stack", "add", "coattention")


@dataclass
class ActBERTConfig:
    # --- text stream (BERT) ---
    vocab_size: int = 30522
    text_hidden: int = 768
    text_heads: int = 12
    text_intermediate: int = 3072
    text_stage_layers: list[int] = field(default_factory=lambda: [10, 1, 1])
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    pad_token_id: int = 0
    hidden_act: str = "gelu"
    # --- region stream ---
    region_feat_dim: int = 2048
    region_hidden: int = 1024
    region_heads: int = 8
    region_intermediate: int = 1024
    region_stage_layers: list[int] = field(default_factory=lambda: [0, 1, 1])
    num_region_classes: int = 1601
    max_region_frames: int = 64  # frame-index embedding size (regions of different key frames)
    # --- action stream ---
    action_feat_dim: int = 2048
    action_hidden: int = 768
    action_heads: int = 12
    action_intermediate: int = 3072
    action_stage_layers: list[int] = field(default_factory=lambda: [1, 1, 1])
    num_action_classes: int = 700
    max_action_positions: int = 64
    # --- Tangled Transformer ---
    bi_hidden: int = 1024  # shared width of the cross-stream attention (ViLBERT's bi_hidden_size)
    bi_heads: int = 8
    # How the action-guided contexts enter the other streams (see model/tnt.py and docs/architecture.md):
    # "stack" = the paper's Figure 3, "add" = PaddleVideo's BertEntAttention, "coattention" = ViLBERT-style
    # ablation in which words attend to regions directly (this package's block before 2026-12).
    kv_mode: str = "stack"
    # "add" only: resize the contexts over the real action slots (default: padding never leaks) or over all
    # slots, padded ones included, as PaddleVideo's F.interpolate does.
    context_resize_over: str = "real"
    # --- sequence limits (what the data layer pads/truncates to) ---
    max_text_len: int = 36
    max_regions: int = 36
    max_actions: int = 5
    # --- regularisation / numerics ---
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    # --- heads and losses ---
    pooled_dim: int = 1024  # pooled streams are projected to this width before fusion
    pooler_activation: str = "tanh"  # BERT's pooler; PaddleVideo's ActBERT uses "relu"
    # Matching-head fusion of the pooled streams: "product_concat" = [t*a ; t*r] (ours, see heads.py),
    # "mul" = t*r + a and "sum" = t+r+a (PaddleVideo's fusion_method).
    match_fusion: str = "product_concat"
    contrastive_dim: int = 256  # joint space of the two-stage retrieval alignment; 0 = no contrastive head
    loss_weights: dict[str, float] = field(
        default_factory=lambda: {"mlm": 1.0, "action": 1.0, "region": 1.0, "match": 1.0, "contrastive": 0.0}
    )
    masked_loss_on_mismatched: bool = False  # ViLBERT computes masked losses on negatives too; we skip by default
    # --- ablation switches (the stream still exists, but receives no video input) ---
    use_action_input: bool = True
    use_region_input: bool = True
    # --- input-embedding conventions (PaddleVideo differs on each; the "paddlevideo" preset sets them) ---
    action_cls_token: bool = True  # a learned [ACT] pooling token before the clips (PaddleVideo pools clip 0)
    visual_position_type_embeddings: bool = True  # region type/frame and action position/type embeddings
    zero_pad_word_embedding: bool = False  # [PAD] ids embed to zero (Paddle's nn.Embedding(padding_idx=0))
    preset: str = "custom"
    # Bumped when a field's meaning changes; configs written before the field existed are version 1.
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self.validate()

    @property
    def num_tnt_blocks(self) -> int:
        return len(self.text_stage_layers) - 1

    @property
    def num_text_layers(self) -> int:
        return sum(self.text_stage_layers)

    def validate(self) -> None:
        check_types_and_sizes(self)  # before any arithmetic below: a string or a 10^9 size fails by name here
        stages = {
            "text_stage_layers": self.text_stage_layers,
            "region_stage_layers": self.region_stage_layers,
            "action_stage_layers": self.action_stage_layers,
        }
        lengths = {len(v) for v in stages.values()}
        if len(lengths) != 1:
            raise ValueError(f"stage layer lists must have equal length (num_tnt_blocks + 1), got {stages}")
        if any(n < 0 for v in stages.values() for n in v):
            raise ValueError(f"stage layer counts must be >= 0, got {stages}")
        choices = {
            "kv_mode": (self.kv_mode, KV_MODES),
            "context_resize_over": (self.context_resize_over, ("real", "all")),
            "pooler_activation": (self.pooler_activation, ("tanh", "relu")),
            "match_fusion": (self.match_fusion, ("product_concat", "mul", "sum")),
        }
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        if self.contrastive_dim < 0:
            raise ValueError(f"contrastive_dim must be >= 0 (0 = no contrastive head), got {self.contrastive_dim}")
        if self.contrastive_dim == 0 and self.loss_weights.get("contrastive", 0.0) > 0:
            raise ValueError("loss_weights['contrastive'] > 0 needs a contrastive head: set contrastive_dim > 0")
        if self.format_version > FORMAT_VERSION:
            raise ValueError(f"config format_version {self.format_version} is newer than this actbert ({FORMAT_VERSION})")
        for name, hidden, heads in (
            ("text", self.text_hidden, self.text_heads),
            ("region", self.region_hidden, self.region_heads),
            ("action", self.action_hidden, self.action_heads),
            ("bi", self.bi_hidden, self.bi_heads),
        ):
            if hidden % heads:
                raise ValueError(f"{name} hidden size {hidden} is not divisible by its {heads} heads")
        if self.max_text_len > self.max_position_embeddings:
            raise ValueError(
                f"max_text_len {self.max_text_len} exceeds max_position_embeddings {self.max_position_embeddings}"
            )
        unknown = set(self.loss_weights) - {"mlm", "action", "region", "match", "contrastive"}
        if unknown:
            raise ValueError(f"unknown loss_weights keys {sorted(unknown)}")

    # --- (de)serialisation ---
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, directory: str | Path) -> Path:
        from actbert.utils import atomic_write_text

        path = Path(directory) / CONFIG_NAME
        atomic_write_text(path, self.to_json())
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ActBERTConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ActBERTConfig fields {sorted(unknown)}")
        merged = _upgrade(dict(data))
        if "loss_weights" in merged:  # keep defaults for weights an older config did not name
            merged["loss_weights"] = {**cls().loss_weights, **merged["loss_weights"]}
        return cls(**merged)

    @classmethod
    def load(cls, path: str | Path) -> "ActBERTConfig":
        path = Path(path)
        if path.is_dir():
            path = path / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no ActBERT config at {path}")
        data = read_json(path)
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object of ActBERTConfig fields")
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:  # ConfigError included: say which file
            raise ConfigError(f"{path}: {exc}") from None

    def replace(self, **changes: Any) -> "ActBERTConfig":
        return dataclasses.replace(self, **changes)


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Read a config written by an older actbert: same model, today's names."""
    version = data.get("format_version", 1)
    if version < 2:
        mode = data.get("kv_mode", "stack")
        if mode == "add":
            raise ValueError(
                "this config (format 1, kv_mode 'add') describes the pre-2026-12 additive block in which words "
                "attended to region keys; no current block reproduces it: re-train, or convert PaddleVideo's "
                "weights with `actbert convert paddlevideo`"
            )
        warnings.warn(
            "config format 1: its kv_mode 'stack' was the co-attention wiring, loaded as kv_mode='coattention' "
            "(not the paper's Tangled Transformer); re-train for kv_mode='stack'",
            stacklevel=3,
        )
        data["kv_mode"] = "coattention"
        data["format_version"] = FORMAT_VERSION
    return data


# --- type and size checks (run before a model is built, so a bad config.json never allocates) ---
_INT_FIELDS_MIN1 = ("vocab_size", "text_hidden", "text_heads", "text_intermediate", "max_position_embeddings",
                    "type_vocab_size", "region_feat_dim", "region_hidden", "region_heads", "region_intermediate",
                    "num_region_classes", "max_region_frames", "action_feat_dim", "action_hidden", "action_heads",
                    "action_intermediate", "num_action_classes", "max_action_positions", "bi_hidden", "bi_heads",
                    "max_text_len", "max_regions", "max_actions", "pooled_dim")
MAX_LAYERS = 1000  # per stream; `base` has 12, and past a few hundred no layer stack trains anyway


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def estimated_parameters(c: "ActBERTConfig") -> int:
    """Rough parameter count (within ~10 % of the built model): enough to refuse a config that cannot fit."""
    def layers(h: int, i: int, n: int) -> int:
        return n * (4 * h * h + 2 * h * i + 9 * h)

    n = (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * c.text_hidden
    n += c.region_feat_dim * c.region_hidden + c.action_feat_dim * c.action_hidden
    n += (c.num_region_classes + c.max_region_frames) * c.region_hidden
    n += (c.num_action_classes + c.max_action_positions) * c.action_hidden
    n += layers(c.text_hidden, c.text_intermediate, sum(c.text_stage_layers))
    n += layers(c.region_hidden, c.region_intermediate, sum(c.region_stage_layers))
    n += layers(c.action_hidden, c.action_intermediate, sum(c.action_stage_layers))
    streams = c.text_hidden + c.region_hidden + c.action_hidden
    n += c.num_tnt_blocks * 6 * c.bi_hidden * streams  # cross-stream q/k/v projections
    n += c.pooled_dim * streams + c.contrastive_dim * 2 * c.pooled_dim
    n += c.num_region_classes * c.region_hidden + c.num_action_classes * c.action_hidden
    return int(n)


def check_types_and_sizes(c: "ActBERTConfig") -> None:
    """ConfigError naming the field for a wrong type, a non-positive size, too many layers, or a model that
    would not fit in this machine's memory. Checked in `validate`, i.e. before any tensor is allocated."""
    from actbert.errors import ConfigError, check_fits_in_memory

    for name in _INT_FIELDS_MIN1:
        v = getattr(c, name)
        if not _is_int(v) or v < 1:
            raise ConfigError(f"ActBERTConfig.{name} must be a positive integer, got {v!r}")
    for name in ("text_stage_layers", "region_stage_layers", "action_stage_layers"):
        v = getattr(c, name)
        if not isinstance(v, list) or not v or not all(_is_int(x) and x >= 0 for x in v):
            raise ConfigError(f"ActBERTConfig.{name} must be a non-empty list of integers >= 0, got {v!r}")
        if sum(v) > MAX_LAYERS:
            raise ConfigError(f"ActBERTConfig.{name} asks for {sum(v)} layers (at most {MAX_LAYERS} accepted)")
    if not _is_int(c.contrastive_dim) or c.contrastive_dim < 0:
        raise ConfigError(f"ActBERTConfig.contrastive_dim must be an integer >= 0, got {c.contrastive_dim!r}")
    if not _is_int(c.pad_token_id) or not 0 <= c.pad_token_id < c.vocab_size:
        raise ConfigError(f"ActBERTConfig.pad_token_id must be an integer in [0, {c.vocab_size}), got {c.pad_token_id!r}")
    for name, lo, hi in (("hidden_dropout", 0.0, 1.0), ("attention_dropout", 0.0, 1.0),
                         ("layer_norm_eps", 0.0, 1.0), ("initializer_range", 0.0, 10.0)):
        v = getattr(c, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (lo <= v < hi):
            raise ConfigError(f"ActBERTConfig.{name} must be a number in [{lo}, {hi}), got {v!r}")
    for name in ("hidden_act", "kv_mode", "preset", "context_resize_over", "pooler_activation", "match_fusion"):
        if not isinstance(getattr(c, name), str):
            raise ConfigError(f"ActBERTConfig.{name} must be a string, got {getattr(c, name)!r}")
    if not isinstance(c.loss_weights, dict) or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) for w in c.loss_weights.values()):
        raise ConfigError(f"ActBERTConfig.loss_weights must map loss names to numbers, got {c.loss_weights!r}")
    check_fits_in_memory("this ActBERT config", estimated_parameters(c))


# --- named presets (timm-style registry) ---
_PRESETS: dict[str, dict[str, Any]] = {
    # The paper's / PaddleVideo's sizes.
    "base": dict(),
    # Fast tests and the CPU demo: every mechanism of `base`, at a width a 2-core machine trains in minutes.
    "tiny": dict(
        vocab_size=30522,
        text_hidden=64,
        text_heads=4,
        text_intermediate=128,
        text_stage_layers=[1, 1, 1],
        region_feat_dim=1024,
        region_hidden=64,
        region_heads=4,
        region_intermediate=128,
        region_stage_layers=[1, 1, 0],
        num_region_classes=91,
        action_feat_dim=512,
        action_hidden=64,
        action_heads=4,
        action_intermediate=128,
        action_stage_layers=[1, 1, 0],
        num_action_classes=20,
        bi_hidden=64,
        bi_heads=4,
        pooled_dim=64,
        contrastive_dim=64,
        max_position_embeddings=64,
    ),
    # PaddleVideo's BertForMultiModalPreTraining with its default arguments, module for module, so that the
    # released ActBERT.pdparams converts onto it (`actbert convert paddlevideo`). Every field below that
    # differs from "base" is a PaddleVideo convention; docs/architecture.md lists each one.
    "paddlevideo": dict(
        action_stage_layers=[0, 1, 2],  # a_ent_attention_id [0, 1] with 3 action layers
        kv_mode="add",
        context_resize_over="all",
        pooled_dim=1024,  # = bi_hidden: BertPooler(hidden, bi_hidden)
        pooler_activation="relu",
        match_fusion="mul",
        contrastive_dim=0,
        action_cls_token=False,
        visual_position_type_embeddings=False,
        zero_pad_word_embedding=True,
        max_regions=35,  # MSRVTTDataset: the global token and at most 35 boxes make 36
    ),
}


def list_presets() -> list[str]:
    return sorted(_PRESETS)


def get_preset(name: str, **overrides: Any) -> ActBERTConfig:
    """A preset by name, with any field overridden (e.g. feature sizes of your extractor)."""
    if name not in _PRESETS:
        raise KeyError(f"unknown preset {name!r}; available: {', '.join(list_presets())}")
    return ActBERTConfig(**{**_PRESETS[name], "preset": name, **overrides})
