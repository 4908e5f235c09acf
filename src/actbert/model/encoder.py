"""ActBERTModel: three streams, single-stream layers, Tangled Transformer blocks, poolers.

The forward pass is split in three so that retrieval can cache work: `encode_text` and `encode_video`
run everything below the first TNT block (one modality each), `fuse` runs the TNT blocks and the
layers after them on a (text, video) pair.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor, nn

from actbert.model.attention import TransformerLayer
from actbert.model.config import ActBERTConfig
from actbert.model.embeddings import ActionEmbeddings, RegionEmbeddings, TextEmbeddings
from actbert.model.tnt import TangledAttentions, TangledBlock


class _BatchState:
    """Tensors that share the batch axis; `index` selects / repeats samples for pair scoring."""

    def index(self, idx: Tensor | list[int]):
        idx = torch.as_tensor(idx, dtype=torch.long)
        return replace(self, **{f.name: getattr(self, f.name)[idx.to(getattr(self, f.name).device)] for f in fields(self)})

    def __len__(self) -> int:
        return getattr(self, fields(self)[0].name).shape[0]


@dataclass
class TextState(_BatchState):
    hidden: Tensor  # [B, L, text_hidden], after stage-0 text layers
    mask: Tensor  # [B, L] bool


@dataclass
class VideoState(_BatchState):
    region_hidden: Tensor  # [B, 1+N, region_hidden] (global token first)
    region_mask: Tensor  # [B, 1+N] bool
    action_hidden: Tensor  # [B, 1+A, action_hidden] ([ACT] first; [B, A] without `action_cls_token`)
    action_mask: Tensor  # [B, 1+A] bool


@dataclass
class EncoderOutput:
    text_hidden: Tensor
    text_mask: Tensor
    region_hidden: Tensor
    region_mask: Tensor
    action_hidden: Tensor
    action_mask: Tensor
    pooled_text: Tensor
    pooled_region: Tensor
    pooled_action: Tensor
    attentions: list[TangledAttentions] | None = None


def _check(name: str, tensor: Tensor, dims: int, last: int | None = None) -> None:
    if tensor.dim() != dims or (last is not None and tensor.shape[-1] != last):
        want = f"{dims}-D" + (f" with last dimension {last}" if last is not None else "")
        raise ValueError(f"{name} must be {want}, got shape {tuple(tensor.shape)}")


def _check_mask(name: str, mask: Tensor, like_name: str, like: Tensor) -> None:
    if mask.shape != like.shape[:2]:
        raise ValueError(f"{name} shape {tuple(mask.shape)} does not match {like_name} shape {tuple(like.shape)}")


class ActBERTModel(nn.Module):
    def __init__(self, config: ActBERTConfig):
        super().__init__()
        self.config = config
        c = config
        self.text_embeddings = TextEmbeddings(c)
        self.region_embeddings = RegionEmbeddings(c)
        self.action_embeddings = ActionEmbeddings(c)

        def stages(counts, hidden, heads, inter):
            layer = lambda: TransformerLayer(hidden, heads, inter, c.hidden_dropout, c.attention_dropout, c.layer_norm_eps)  # noqa: E731
            return nn.ModuleList(nn.ModuleList(layer() for _ in range(n)) for n in counts)

        self.text_stages = stages(c.text_stage_layers, c.text_hidden, c.text_heads, c.text_intermediate)
        self.region_stages = stages(c.region_stage_layers, c.region_hidden, c.region_heads, c.region_intermediate)
        self.action_stages = stages(c.action_stage_layers, c.action_hidden, c.action_heads, c.action_intermediate)
        self.tnt_blocks = nn.ModuleList(TangledBlock(c) for _ in range(c.num_tnt_blocks))
        self.text_pooler = nn.Linear(c.text_hidden, c.pooled_dim)
        self.region_pooler = nn.Linear(c.region_hidden, c.pooled_dim)
        self.action_pooler = nn.Linear(c.action_hidden, c.pooled_dim)
        self.pooler_activation = torch.tanh if c.pooler_activation == "tanh" else torch.relu
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:  # BERT's initialisation
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(0.0, self.config.initializer_range)
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.data.zero_()
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()

    def action_clips(self, action_hidden: Tensor) -> Tensor:
        """The clip positions of the action stream ([ACT], when the model has one, is position 0)."""
        return action_hidden[:, 1:] if self.config.action_cls_token else action_hidden

    @staticmethod
    def _run(layers: nn.ModuleList, x: Tensor, mask: Tensor) -> Tensor:
        for layer in layers:
            x = layer(x, mask)
        return x

    # --- stage 0: one modality at a time ---
    def encode_text(self, text_ids: Tensor, text_mask: Tensor, text_segment: Tensor | None = None) -> TextState:
        _check("text_ids", text_ids, 2)
        _check_mask("text_mask", text_mask, "text_ids", text_ids)
        if text_ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(
                f"text_ids has length {text_ids.shape[1]} but the model has only "
                f"{self.config.max_position_embeddings} positions (shape {tuple(text_ids.shape)})"
            )
        if text_segment is not None and text_segment.shape != text_ids.shape:
            raise ValueError(f"text_segment shape {tuple(text_segment.shape)} != text_ids shape {tuple(text_ids.shape)}")
        mask = text_mask.bool()
        if mask.shape[1] == 0 or not bool(mask[:, 0].all()):
            raise ValueError("text_mask[:, 0] must be 1: every caption starts with [CLS] (an empty caption is [CLS] [SEP])")
        x = self.text_embeddings(text_ids, text_segment)
        return TextState(self._run(self.text_stages[0], x, mask), mask)

    def encode_video(
        self,
        action_feats: Tensor,
        action_mask: Tensor,
        region_feats: Tensor,
        region_loc: Tensor,
        region_mask: Tensor,
        region_frame: Tensor | None = None,
        region_global: Tensor | None = None,
    ) -> VideoState:
        """`region_global` [B, region_feat_dim], optional: the global region token's feature (default: the
        mean of the real regions)."""
        c = self.config
        _check("action_feats", action_feats, 3, c.action_feat_dim)
        _check_mask("action_mask", action_mask, "action_feats", action_feats)
        _check("region_feats", region_feats, 3, c.region_feat_dim)
        _check("region_loc", region_loc, 3, 5)
        _check_mask("region_mask", region_mask, "region_feats", region_feats)
        if region_loc.shape[:2] != region_feats.shape[:2]:
            raise ValueError(f"region_loc shape {tuple(region_loc.shape)} does not match region_feats {tuple(region_feats.shape)}")
        if action_feats.shape[0] != region_feats.shape[0]:
            raise ValueError(f"batch sizes differ: action_feats {tuple(action_feats.shape)}, region_feats {tuple(region_feats.shape)}")
        if region_frame is not None:
            _check_mask("region_frame", region_frame, "region_feats", region_feats)
        if region_global is not None:
            _check("region_global", region_global, 2, c.region_feat_dim)
            if region_global.shape[0] != region_feats.shape[0]:
                raise ValueError(f"region_global batch {region_global.shape[0]} != region_feats {tuple(region_feats.shape)}")
        action_mask, region_mask = action_mask.bool(), region_mask.bool()
        if not c.use_action_input:  # ablation: the stream keeps its [ACT] token but sees no clip
            action_mask, action_feats = torch.zeros_like(action_mask), torch.zeros_like(action_feats)
        if not c.use_region_input:
            region_mask, region_feats = torch.zeros_like(region_mask), torch.zeros_like(region_feats)
            region_global = None if region_global is None else torch.zeros_like(region_global)
        if not c.action_cls_token and (action_mask.shape[1] == 0 or not bool(action_mask[:, 0].all())):
            raise ValueError(
                "action_mask[:, 0] must be 1 for a model without an [ACT] token (it pools the first clip): "
                "every video needs at least one action clip"
            )
        r, r_mask = self.region_embeddings(region_feats, region_loc, region_mask, region_frame, region_global)
        a, a_mask = self.action_embeddings(action_feats, action_mask)
        return VideoState(
            self._run(self.region_stages[0], r, r_mask), r_mask, self._run(self.action_stages[0], a, a_mask), a_mask
        )

    # --- TNT blocks and the layers above them ---
    def fuse(self, text: TextState, video: VideoState, output_attentions: bool = False) -> EncoderOutput:
        if len(text) != len(video):
            raise ValueError(f"text batch {len(text)} and video batch {len(video)} differ")
        t, r, a = text.hidden, video.region_hidden, video.action_hidden
        tm, rm, am = text.mask, video.region_mask, video.action_mask
        attentions = [] if output_attentions else None
        for i, block in enumerate(self.tnt_blocks):
            t, r, a, attn = block(t, tm, r, rm, a, am, need_weights=output_attentions)
            if attentions is not None:
                attentions.append(attn)
            t = self._run(self.text_stages[i + 1], t, tm)
            r = self._run(self.region_stages[i + 1], r, rm)
            a = self._run(self.action_stages[i + 1], a, am)
        return EncoderOutput(
            text_hidden=t, text_mask=tm, region_hidden=r, region_mask=rm, action_hidden=a, action_mask=am,
            pooled_text=self.pooler_activation(self.text_pooler(t[:, 0])),
            pooled_region=self.pooler_activation(self.region_pooler(r[:, 0])),
            pooled_action=self.pooler_activation(self.action_pooler(a[:, 0])),
            attentions=attentions,
        )

    def forward(self, batch: dict[str, Tensor], output_attentions: bool = False) -> EncoderOutput:
        text = self.encode_text(batch["text_ids"], batch["text_mask"], batch.get("text_segment"))
        video = self.encode_video(
            batch["action_feats"], batch["action_mask"], batch["region_feats"], batch["region_loc"],
            batch["region_mask"], batch.get("region_frame"), batch.get("region_global"),
        )
        return self.fuse(text, video, output_attentions)
