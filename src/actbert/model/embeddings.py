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
        self.zero_pad = config.zero_pad_word_embedding

    def forward(self, ids: Tensor, segment: Tensor | None = None) -> Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)[None]
        segment = torch.zeros_like(ids) if segment is None else segment
        words = self.word(ids)
        if self.zero_pad:  # Paddle's Embedding(padding_idx) outputs zeros there whatever the row holds
            words = words.masked_fill((ids == self.word.padding_idx).unsqueeze(-1), 0.0)
        return self.dropout(self.norm(words + self.position(positions) + self.token_type(segment)))


class RegionEmbeddings(nn.Module):
    """RoI feature + 5-D location (+ key-frame index + token type); prepends the global region token.

    The global token's feature is the mean of the sample's real regions (zero when it has none) unless the
    caller supplies it (PaddleVideo's data computes it over all boxes before keeping 35), and its location
    is the whole image, as in ViLBERT. PaddleVideo has no frame or type embedding
    (`visual_position_type_embeddings=False`).
    """

    def __init__(self, config: ActBERTConfig):
        super().__init__()
        h = config.region_hidden
        self.feature = nn.Linear(config.region_feat_dim, h)
        self.location = nn.Linear(5, h)
        if config.visual_position_type_embeddings:
            self.frame = nn.Embedding(config.max_region_frames, h)
            self.token_type = nn.Embedding(2, h)  # 0 = global token, 1 = region
        self.norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.register_buffer("global_location", torch.tensor(GLOBAL_REGION_LOCATION), persistent=False)

    def forward(
        self, feats: Tensor, loc: Tensor, mask: Tensor, frame: Tensor | None = None, global_feat: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        b = feats.shape[0]
        if global_feat is None:
            weights = mask.to(feats.dtype).unsqueeze(-1)
            global_feat = (feats * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        feats = torch.cat([global_feat.unsqueeze(1), feats], dim=1)
        loc = torch.cat([self.global_location.to(loc.dtype).expand(b, 1, 5), loc], dim=1)
        x = self.feature(feats) + self.location(loc)
        if hasattr(self, "token_type"):
            types = torch.ones(feats.shape[:2], dtype=torch.long, device=feats.device)
            types[:, 0] = 0
            x = x + self.token_type(types)
            if frame is not None:
                frame = torch.cat([frame.new_zeros(b, 1), frame.clamp(0, self.frame.num_embeddings - 1)], 1)
                x = x + self.frame(frame)
        full_mask = torch.cat([mask.new_ones(mask.shape[0], 1), mask], dim=1)
        return self.dropout(self.norm(x)), full_mask


class ActionEmbeddings(nn.Module):
    """Action feature (+ temporal position + token type); prepends the learned [ACT] pooling token.

    PaddleVideo (`action_cls_token=False`, `visual_position_type_embeddings=False`) embeds the clips alone,
    feature + LayerNorm, and pools the first clip.
    """

    def __init__(self, config: ActBERTConfig):
        super().__init__()
        h = config.action_hidden
        self.feature = nn.Linear(config.action_feat_dim, h)
        if config.action_cls_token:
            self.act_token = nn.Parameter(torch.zeros(1, 1, h))
        if config.visual_position_type_embeddings:
            self.position = nn.Embedding(config.max_action_positions, h)
            self.token_type = nn.Embedding(2, h)  # 0 = [ACT], 1 = clip
        self.norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, feats: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        b = feats.shape[0]
        x = self.feature(feats)
        if hasattr(self, "act_token"):
            x = torch.cat([self.act_token.expand(b, 1, -1), x], dim=1)
            mask = torch.cat([mask.new_ones(b, 1), mask], dim=1)
        if hasattr(self, "position"):
            n = x.shape[1]
            positions = torch.arange(n, device=feats.device).clamp(max=self.position.num_embeddings - 1)
            types = torch.ones(n, dtype=torch.long, device=feats.device)
            if hasattr(self, "act_token"):
                types[0] = 0
            x = x + self.position(positions)[None] + self.token_type(types)[None]
        return self.dropout(self.norm(x)), mask
