"""The Tangled Transformer (TNT) block of the paper's Figure 3: the action stream guides what words and
regions learn from each other.

    c_w = MultiHead(Q = Wq_a h_a, K = Wk_w h_w, V = Wv_w h_w)       action looks at words   (blue line)
    c_r = MultiHead(Q = Wq_a h_a, K = Wk_r h_r, V = Wv_r h_r)       action looks at regions (red line)

    w-transformer: Q = Wq_w h_w, K/V = the words' own keys/values merged with c_r
    r-transformer: Q = Wq_r h_r, K/V = the regions' own keys/values merged with c_w
    a-transformer: plain self-attention (both lines pass it by)

Words and regions exchange information only through the action stream. How a context is merged:

* kv_mode="stack" (default, the figure): the context, through its own learned key / value projections, is
  appended to the stream's keys and values; the appended positions carry the action mask.
* kv_mode="add" (PaddleVideo's `BertEntAttention`): the projected context is resized to the stream's
  length by nearest-neighbour repetition and added onto its keys and values. As in PaddleVideo one value
  projection serves both contexts (its `value_av` is never used). `context_resize_over="real"` resizes
  over each sample's real action slots so padding cannot leak; "all" is PaddleVideo's resize over every
  slot, padded ones included.
* kv_mode="coattention" (ablation, ViLBERT-style): words attend to [region keys ; c_r], regions to
  [word keys ; c_w], actions to [own ; c_w ; c_r]. Not ActBERT: this package's block before 2026-12.

Each stream then gets its own output projection (bi_hidden -> stream width), residual + LayerNorm and its
own feed-forward, as PaddleVideo's `BertEntOutput` + `BertConnectionLayer`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from actbert.model.attention import FeedForward, attend, merge_heads, split_heads
from actbert.model.config import ActBERTConfig


@dataclass
class TangledAttentions:
    """Attention probabilities of one TNT block, [B, H, Lq, Lk], for inspection and plots."""

    action_to_text: Tensor
    action_to_region: Tensor


def nearest_resize(x: Tensor, length: int, mask: Tensor | None = None) -> Tensor:
    """Resize [B, H, A, d] along A to `length` by nearest-neighbour repetition.

    Target j takes source floor(j * A / length), as `F.interpolate(mode="nearest")` in Paddle and PyTorch.
    With `mask` [B, A] (True = real), each sample resizes over its own real slots only, in order.
    """
    b, _, source, _ = x.shape
    steps = torch.arange(length, device=x.device)
    if mask is None:
        index = torch.div(steps * source, length, rounding_mode="floor")
        return x.index_select(2, index)
    real = mask.sum(1, keepdim=True)  # [B, 1]; callers guarantee >= 1
    nth = torch.div(steps[None] * real, length, rounding_mode="floor")  # which real slot, [B, L]
    # positions of the real slots first, in their original order (stable sort of "is padding")
    order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices
    index = order.gather(1, nth)  # [B, L]
    return x.gather(2, index[:, None, :, None].expand(b, x.shape[1], length, x.shape[3]))


class _StreamProjections(nn.Module):
    def __init__(self, hidden: int, bi_hidden: int, dropout: float, eps: float, intermediate: int):
        super().__init__()
        self.query = nn.Linear(hidden, bi_hidden)
        self.key = nn.Linear(hidden, bi_hidden)
        self.value = nn.Linear(hidden, bi_hidden)
        self.out = nn.Linear(bi_hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.ffn = FeedForward(hidden, intermediate, dropout, eps)

    def finish(self, residual: Tensor, context: Tensor) -> Tensor:
        x = self.norm(residual + self.dropout(self.out(merge_heads(context))))
        return self.ffn(x)


class TangledBlock(nn.Module):
    def __init__(self, config: ActBERTConfig):
        super().__init__()
        self.heads = config.bi_heads
        self.kv_mode = config.kv_mode
        self.resize_over_real = config.context_resize_over == "real"
        self.attn_dropout = config.attention_dropout
        args = (config.bi_hidden, config.hidden_dropout, config.layer_norm_eps)
        self.text = _StreamProjections(config.text_hidden, *args, config.text_intermediate)
        self.region = _StreamProjections(config.region_hidden, *args, config.region_intermediate)
        self.action = _StreamProjections(config.action_hidden, *args, config.action_intermediate)
        bi = config.bi_hidden
        if self.kv_mode == "stack":
            self.region_context_key = nn.Linear(bi, bi)  # c_r -> keys of the word stream
            self.region_context_value = nn.Linear(bi, bi)
            self.word_context_key = nn.Linear(bi, bi)  # c_w -> keys of the region stream
            self.word_context_value = nn.Linear(bi, bi)
        elif self.kv_mode == "add":  # PaddleVideo: key_av, key_at, and value_at for both contexts
            self.region_context_key = nn.Linear(bi, bi)
            self.word_context_key = nn.Linear(bi, bi)
            self.context_value = nn.Linear(bi, bi)

    def _qkv(self, stream: _StreamProjections, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return tuple(split_heads(p(x), self.heads) for p in (stream.query, stream.key, stream.value))

    def _project(self, linear: nn.Linear, context: Tensor) -> Tensor:
        return split_heads(linear(merge_heads(context)), self.heads)

    def forward(
        self, h_t: Tensor, m_t: Tensor, h_r: Tensor, m_r: Tensor, h_a: Tensor, m_a: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Tensor, Tensor, TangledAttentions | None]:
        p = self.attn_dropout if self.training else 0.0
        q_t, k_t, v_t = self._qkv(self.text, h_t)
        q_r, k_r, v_r = self._qkv(self.region, h_r)
        q_a, k_a, v_a = self._qkv(self.action, h_a)

        c_w, w_aw = attend(q_a, k_t, v_t, m_t, p, need_weights)  # action-guided word context   [B,H,A,d]
        c_r, w_ar = attend(q_a, k_r, v_r, m_r, p, need_weights)  # action-guided region context [B,H,A,d]
        cat = lambda *xs: torch.cat(xs, dim=2)  # noqa: E731 - sequence axis of [B,H,L,d]

        if self.kv_mode == "stack":
            kr, vr = self._project(self.region_context_key, c_r), self._project(self.region_context_value, c_r)
            kw, vw = self._project(self.word_context_key, c_w), self._project(self.word_context_value, c_w)
            text_ctx, _ = attend(q_t, cat(k_t, kr), cat(v_t, vr), torch.cat([m_t, m_a], 1), p)
            region_ctx, _ = attend(q_r, cat(k_r, kw), cat(v_r, vw), torch.cat([m_r, m_a], 1), p)
            action_ctx, _ = attend(q_a, k_a, v_a, m_a, p)
        elif self.kv_mode == "add":
            resize_mask = m_a if self.resize_over_real else None
            to_text = lambda lin, c: nearest_resize(self._project(lin, c), k_t.shape[2], resize_mask)  # noqa: E731
            to_region = lambda lin, c: nearest_resize(self._project(lin, c), k_r.shape[2], resize_mask)  # noqa: E731
            text_ctx, _ = attend(
                q_t, k_t + to_text(self.region_context_key, c_r), v_t + to_text(self.context_value, c_r), m_t, p
            )
            region_ctx, _ = attend(
                q_r, k_r + to_region(self.word_context_key, c_w), v_r + to_region(self.context_value, c_w), m_r, p
            )
            action_ctx, _ = attend(q_a, k_a, v_a, m_a, p)
        else:  # "coattention" ablation
            text_ctx, _ = attend(q_t, cat(k_r, c_r), cat(v_r, c_r), torch.cat([m_r, m_a], 1), p)
            region_ctx, _ = attend(q_r, cat(k_t, c_w), cat(v_t, c_w), torch.cat([m_t, m_a], 1), p)
            action_ctx, _ = attend(q_a, cat(k_a, c_w, c_r), cat(v_a, c_w, c_r), torch.cat([m_a, m_a, m_a], 1), p)

        attentions = TangledAttentions(w_aw, w_ar) if need_weights else None
        return (
            self.text.finish(h_t, text_ctx),
            self.region.finish(h_r, region_ctx),
            self.action.finish(h_a, action_ctx),
            attentions,
        )
