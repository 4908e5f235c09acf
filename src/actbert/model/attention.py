"""Attention primitives shared by the single-stream layers and the Tangled Transformer.

All attention goes through `attend`, which uses `torch.nn.functional.scaled_dot_product_attention`
(fused kernels on CPU and GPU) unless the caller asks for the attention probabilities, which SDPA does
not return; then it computes the same thing explicitly.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from actbert.model.linear import Linear


def split_heads(x: Tensor, heads: int) -> Tensor:
    """[B, L, H*d] -> [B, H, L, d]"""
    b, length, width = x.shape
    return x.view(b, length, heads, width // heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """[B, H, L, d] -> [B, L, H*d]"""
    b, heads, length, dim = x.shape
    return x.transpose(1, 2).reshape(b, length, heads * dim)


def attend(
    q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor, dropout_p: float = 0.0, need_weights: bool = False
) -> tuple[Tensor, Tensor | None]:
    """Masked multi-head attention. q [B,H,Lq,d], k/v [B,H,Lk,d], key_mask [B,Lk] bool (True = attend).

    Every caller guarantees at least one True per row (each stream carries an always-valid special
    token), so no softmax row is empty and no NaN can appear.
    """
    mask = key_mask[:, None, None, :]
    if not need_weights:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p), None
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~mask, float("-inf"))
    probs = scores.softmax(dim=-1)
    out = F.dropout(probs, p=dropout_p) @ v if dropout_p > 0 else probs @ v
    return out, probs


class FeedForward(nn.Module):
    """BERT's intermediate + output: Linear, GELU, Linear, dropout, residual, LayerNorm (post-LN)."""

    def __init__(self, hidden: int, intermediate: int, dropout: float, eps: float):
        super().__init__()
        self.inp = Linear(hidden, intermediate)
        self.out = Linear(intermediate, hidden)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.dropout(self.out(F.gelu(self.inp(x)))))


class TransformerLayer(nn.Module):
    """One post-LN transformer layer, laid out like a BERT layer so BERT weights map onto it 1:1."""

    def __init__(self, hidden: int, heads: int, intermediate: int, dropout: float, attn_dropout: float, eps: float):
        super().__init__()
        self.heads = heads
        self.attn_dropout = attn_dropout
        self.query = Linear(hidden, hidden)
        self.key = Linear(hidden, hidden)
        self.value = Linear(hidden, hidden)
        self.attn_out = Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.ffn = FeedForward(hidden, intermediate, dropout, eps)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        q, k, v = (split_heads(proj(x), self.heads) for proj in (self.query, self.key, self.value))
        ctx, _ = attend(q, k, v, mask, self.attn_dropout if self.training else 0.0)
        x = self.attn_norm(x + self.dropout(self.attn_out(merge_heads(ctx))))
        return self.ffn(x)
