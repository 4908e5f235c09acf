"""Prediction heads: masked words (tied to the word embeddings), masked actions, masked regions,
cross-modal matching, and the optional contrastive alignment used by two-stage retrieval."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from actbert.model.config import ActBERTConfig


class PredictionTransform(nn.Module):
    """BERT's `BertPredictionHeadTransform`: dense, GELU, LayerNorm."""

    def __init__(self, hidden: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(F.gelu(self.dense(x)))


class ClassifierHead(nn.Module):
    def __init__(self, hidden: int, classes: int, eps: float):
        super().__init__()
        self.transform = PredictionTransform(hidden, eps)
        self.decoder = nn.Linear(hidden, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.transform(x))


class MaskedLMHead(nn.Module):
    """Decoder weight is the word-embedding matrix (tied), plus an output bias, as in BERT."""

    def __init__(self, config: ActBERTConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = PredictionTransform(config.text_hidden, config.layer_norm_eps)
        self.word_embeddings = word_embeddings
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(self.transform(x), self.word_embeddings.weight, self.bias)


class MatchingHead(nn.Module):
    """Matched / not matched from the pooled streams; logit index 1 = matched.

    `match_fusion="product_concat"` (default): ViLBERT fuses two streams by the element-wise product of
    their pooled vectors; with two visual streams we keep one product per stream ([p_t * p_a ; p_t * p_r])
    so each stream's agreement with the text is visible to the classifier, and an ablated stream simply
    contributes a constant. PaddleVideo's "mul" is p_t * p_r + p_a (the action vector is added, not
    multiplied, so it cannot express agreement with the text) and "sum" is p_t + p_r + p_a.
    PaddleVideo's own head says index 0 = matched; `actbert convert` swaps its two rows.
    """

    def __init__(self, config: ActBERTConfig):
        super().__init__()
        self.fusion = config.match_fusion
        self.dropout = nn.Dropout(config.hidden_dropout)
        width = 2 * config.pooled_dim if self.fusion == "product_concat" else config.pooled_dim
        self.classifier = nn.Linear(width, 2)

    def forward(self, pooled_text: Tensor, pooled_region: Tensor, pooled_action: Tensor) -> Tensor:
        if self.fusion == "product_concat":
            fused = torch.cat([pooled_text * pooled_action, pooled_text * pooled_region], dim=-1)
        elif self.fusion == "mul":
            fused = pooled_text * pooled_region + pooled_action
        else:
            fused = pooled_text + pooled_region + pooled_action
        return self.classifier(self.dropout(fused))


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(1) / w.sum(1).clamp(min=1.0)


class ContrastiveHead(nn.Module):
    """Projects the stage-0 (single-modality) streams into one space for a fast first retrieval stage."""

    def __init__(self, config: ActBERTConfig):
        super().__init__()
        self.text_proj = nn.Linear(config.text_hidden, config.contrastive_dim)
        self.video_proj = nn.Linear(config.action_hidden + config.region_hidden, config.contrastive_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def embed_text(self, hidden: Tensor, mask: Tensor) -> Tensor:
        return F.normalize(self.text_proj(masked_mean(hidden, mask)), dim=-1)

    def embed_video(self, action_hidden: Tensor, action_mask: Tensor, region_hidden: Tensor, region_mask: Tensor) -> Tensor:
        pooled = torch.cat([masked_mean(action_hidden, action_mask), masked_mean(region_hidden, region_mask)], -1)
        return F.normalize(self.video_proj(pooled), dim=-1)
