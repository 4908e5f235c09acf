"""The Tangled Transformer (TNT) block: the global action stream guides the exchange between streams.

    c_w = MultiHead(Q = Wq_a h_a, K = Wk_w h_w, V = Wv_w h_w)       action looks at words
    c_r = MultiHead(Q = Wq_a h_a, K = Wk_r h_r, V = Wv_r h_r)       action looks at regions
    kv_mode="stack" (default, our reading of the paper's "stacked with the original key-value pairs"):
        text   attends to K/V = [Wk_r h_r ; c_r]
        region attends to K/V = [Wk_w h_w ; c_w]
        action attends to K/V = [Wk_a h_a ; c_w ; c_r]
      appended positions are masked with the action mask.
    kv_mode="add" (PaddleVideo): the contexts, resized to the other stream's length by nearest-neighbour
      repetition, are added onto that stream's keys and values; the action stream does self-attention.

Each stream then gets its own output projection (bi_hidden -> stream width; PaddleVideo sized the action
one with the text width, a bug), residual + LayerNorm and its own feed-forward.
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


def nearest_resize(x: Tensor, length: int) -> Tensor:
    """Resize [B, H, A, d] along A to `length` by nearest-neighbour repetition (index floor(j * A / L))."""
    source = x.shape[2]
    index = torch.div(torch.arange(length, device=x.device) * source, length, rounding_mode="floor")
    return x.index_select(2, index)


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
        self.attn_dropout = config.attention_dropout
        args = (config.bi_hidden, config.hidden_dropout, config.layer_norm_eps)
        self.text = _StreamProjections(config.text_hidden, *args, config.text_intermediate)
        self.region = _StreamProjections(config.region_hidden, *args, config.region_intermediate)
        self.action = _StreamProjections(config.action_hidden, *args, config.action_intermediate)

    def _qkv(self, stream: _StreamProjections, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return tuple(split_heads(p(x), self.heads) for p in (stream.query, stream.key, stream.value))

    def forward(
        self, h_t: Tensor, m_t: Tensor, h_r: Tensor, m_r: Tensor, h_a: Tensor, m_a: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Tensor, Tensor, TangledAttentions | None]:
        p = self.attn_dropout if self.training else 0.0
        q_t, k_t, v_t = self._qkv(self.text, h_t)
        q_r, k_r, v_r = self._qkv(self.region, h_r)
        q_a, k_a, v_a = self._qkv(self.action, h_a)

        c_w, w_aw = attend(q_a, k_t, v_t, m_t, p, need_weights)  # action-guided word context   [B,H,A,d]
        c_r, w_ar = attend(q_a, k_r, v_r, m_r, p, need_weights)  # action-guided region context [B,H,A,d]

        if self.kv_mode == "stack":
            cat = lambda *xs: torch.cat(xs, dim=2)  # noqa: E731 - sequence axis of [B,H,L,d]
            text_ctx, _ = attend(q_t, cat(k_r, c_r), cat(v_r, c_r), torch.cat([m_r, m_a], 1), p)
            region_ctx, _ = attend(q_r, cat(k_t, c_w), cat(v_t, c_w), torch.cat([m_t, m_a], 1), p)
            action_ctx, _ = attend(q_a, cat(k_a, c_w, c_r), cat(v_a, c_w, c_r), torch.cat([m_a, m_a, m_a], 1), p)
        else:
            c_r_sized, c_w_sized = nearest_resize(c_r, k_r.shape[2]), nearest_resize(c_w, k_t.shape[2])
            text_ctx, _ = attend(q_t, k_r + c_r_sized, v_r + c_r_sized, m_r, p)
            region_ctx, _ = attend(q_r, k_t + c_w_sized, v_t + c_w_sized, m_t, p)
            action_ctx, _ = attend(q_a, k_a, v_a, m_a, p)

        attentions = TangledAttentions(w_aw, w_ar) if need_weights else None
        return (
            self.text.finish(h_t, text_ctx),
            self.region.finish(h_r, region_ctx),
            self.action.finish(h_a, action_ctx),
            attentions,
        )
