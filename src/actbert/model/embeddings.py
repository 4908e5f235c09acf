"""Input embeddings of the three streams, each with its always-valid leading token for pooling."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from actbert.model.config import ActBERTConfig

GLOBAL_REGION_LOCATION = (0.0, 0.0, 1.0, 1.0, 1.0)  # ViLBERT's whole-image box


class TextEmbeddings(nn.Module):
    """BERT embeddings: word + position + token type, LayerNorm, dropout (names match BERT's roles)."""

    def __init__(self, config: ActBERTConfig):
        super().__init__()
        h = config.text_hidden
        self.word = nn.Embedding(config.vocab_size, h, padding_idx=config.pad_token_id)
        self.position = nn.Embedding(config.max_position_embeddings, h)
        self.token_type = nn.Embedding(config.type_vocab_size, h)
        self.norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, ids: Tensor, segment: Tensor | None = None) -> Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)[None]
        segment = torch.zeros_like(ids) if segment is None else segment
        return self.dropout(self.norm(self.word(ids) + self.position(positions) + self.token_type(segment)))


class RegionEmbeddings(nn.Module):
    """RoI feature + 5-D location (+ key-frame index) + token type; prepends the global region token.

    The global token's feature is the mean of the sample's real regions (zero when it has none) and its
    location is the whole image, as in ViLBERT.
    """

    def __init__(self, config: ActBERTConfig):
        super().__init__()
        h = config.region_hidden
        self.feature = nn.Linear(config.region_feat_dim, h)
        self.location = nn.Linear(5, h)
        self.frame = nn.Embedding(config.max_region_frames, h)
        self.token_type = nn.Embedding(2, h)  # 0 = global token, 1 = region
        self.norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.register_buffer("global_location", torch.tensor(GLOBAL_REGION_LOCATION), persistent=False)

    def forward(self, feats: Tensor, loc: Tensor, mask: Tensor, frame: Tensor | None = None) -> tuple[Tensor, Tensor]:
        b = feats.shape[0]
        weights = mask.to(feats.dtype).unsqueeze(-1)
        mean = (feats * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp(min=1.0)
        feats = torch.cat([mean, feats], dim=1)
        loc = torch.cat([self.global_location.to(loc.dtype).expand(b, 1, 5), loc], dim=1)
        types = torch.ones(feats.shape[:2], dtype=torch.long, device=feats.device)
        types[:, 0] = 0
        x = self.feature(feats) + self.location(loc) + self.token_type(types)
        if frame is not None:
            frame = torch.cat([frame.new_zeros(frame.shape[0], 1), frame.clamp(0, self.frame.num_embeddings - 1)], 1)
            x = x + self.frame(frame)
        full_mask = torch.cat([mask.new_ones(mask.shape[0], 1), mask], dim=1)
        return self.dropout(self.norm(x)), full_mask


class ActionEmbeddings(nn.Module):
    """Action feature + temporal position + token type; prepends the learned [ACT] pooling token."""

    def __init__(self, config: ActBERTConfig):
        super().__init__()
        h = config.action_hidden
        self.feature = nn.Linear(config.action_feat_dim, h)
        self.act_token = nn.Parameter(torch.zeros(1, 1, h))
        self.position = nn.Embedding(config.max_action_positions, h)
        self.token_type = nn.Embedding(2, h)  # 0 = [ACT], 1 = clip
        self.norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, feats: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        b, a = feats.shape[:2]
        x = torch.cat([self.act_token.expand(b, 1, -1), self.feature(feats)], dim=1)
        positions = torch.arange(a + 1, device=feats.device).clamp(max=self.position.num_embeddings - 1)
        types = torch.ones(a + 1, dtype=torch.long, device=feats.device)
        types[0] = 0
        x = x + self.position(positions)[None] + self.token_type(types)[None]
        full_mask = torch.cat([mask.new_ones(mask.shape[0], 1), mask], dim=1)
        return self.dropout(self.norm(x)), full_mask
