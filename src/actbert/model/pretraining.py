"""ActBERTForPretraining: the encoder, its heads, and the weighted sum of the pre-training losses."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from actbert.errors import ActbertError
from actbert.model import losses as L
from actbert.model.config import ActBERTConfig
from actbert.model.encoder import ActBERTModel, EncoderOutput, TextState, VideoState
from actbert.model.heads import ClassifierHead, ContrastiveHead, MaskedLMHead, MatchingHead


class MissingContrastiveHeadError(ActbertError, ValueError):
    pass


@dataclass
class PretrainOutput:
    loss: Tensor | None
    losses: dict[str, Tensor] = field(default_factory=dict)
    match_logits: Tensor | None = None
    mlm_logits: Tensor | None = None  # [n, vocab] at the n positions of `mlm_positions` only
    mlm_positions: Tensor | None = None  # [B, L] bool: the masked words that carry a loss
    action_logits: Tensor | None = None
    region_logits: Tensor | None = None
    encoder: EncoderOutput | None = None


class ActBERTForPretraining(nn.Module):
    def __init__(self, config: ActBERTConfig):
        super().__init__()
        self.config = config
        self.actbert = ActBERTModel(config)
        eps = config.layer_norm_eps
        self.mlm_head = MaskedLMHead(config, self.actbert.text_embeddings.word)
        self.action_head = ClassifierHead(config.action_hidden, config.num_action_classes, eps)
        self.region_head = ClassifierHead(config.region_hidden, config.num_region_classes, eps)
        self.match_head = MatchingHead(config)
        # PaddleVideo has no contrastive head (contrastive_dim=0): two-stage retrieval and search need one
        self.contrastive_head = ContrastiveHead(config) if config.contrastive_dim > 0 else None
        for head in (self.mlm_head.transform, self.action_head, self.region_head, self.match_head, self.contrastive_head):
            if head is not None:
                head.apply(self.actbert._init_weights)

    # --- scoring used by the downstream tasks ---
    def match_logits(self, out: EncoderOutput) -> Tensor:
        return self.match_head(out.pooled_text, out.pooled_region, out.pooled_action)

    def match_score(self, out: EncoderOutput) -> Tensor:
        """log P(matched) per pair: the retrieval / QA / localisation score."""
        return F.log_softmax(self.match_logits(out).float(), dim=-1)[:, 1]

    def score_pairs(self, text: TextState, video: VideoState) -> Tensor:
        return self.match_score(self.actbert.fuse(text, video))

    def require_contrastive_head(self) -> ContrastiveHead:
        if self.contrastive_head is None:
            raise MissingContrastiveHeadError(
                "this model has no contrastive head (contrastive_dim 0, e.g. converted from PaddleVideo), which "
                "index, search and two-stage retrieval need; score with the matching head instead "
                "(actbert evaluate retrieval --mode exhaustive)"
            )
        return self.contrastive_head

    def embed_text(self, text: TextState) -> Tensor:
        return self.require_contrastive_head().embed_text(text.hidden, text.mask)

    def embed_video(self, video: VideoState) -> Tensor:
        return self.require_contrastive_head().embed_video(video.action_hidden, video.action_mask, video.region_hidden, video.region_mask)

    # --- pre-training ---
    def forward(self, batch: dict[str, Tensor], output_attentions: bool = False) -> PretrainOutput:
        enc = self.actbert
        text = enc.encode_text(batch["text_ids"], batch["text_mask"], batch.get("text_segment"))
        video = enc.encode_video(
            batch["action_feats"], batch["action_mask"], batch["region_feats"], batch["region_loc"],
            batch["region_mask"], batch.get("region_frame"), batch.get("region_global"),
        )
        out = enc.fuse(text, video, output_attentions)
        result = PretrainOutput(loss=None, match_logits=self.match_logits(out), encoder=out)
        if "match_labels" not in batch and "mlm_labels" not in batch:
            return result  # inference: no targets given

        weights = self.config.loss_weights
        keep = torch.ones(out.text_hidden.shape[0], dtype=torch.bool, device=out.text_hidden.device)
        if "match_labels" in batch and not self.config.masked_loss_on_mismatched:
            keep = batch["match_labels"].bool()  # masked objectives only on matched pairs (switchable)
        losses: dict[str, Tensor] = {}
        if "mlm_labels" in batch:
            # Decode only the masked positions: the tied vocabulary projection is the largest matmul of
            # the model (~5 of ~35 GFLOP per base sample if applied to every word) and 85 % of it is wasted.
            labels = batch["mlm_labels"].masked_fill(~keep[:, None], L.IGNORE)
            result.mlm_positions = labels != L.IGNORE
            result.mlm_logits = self.mlm_head(out.text_hidden[result.mlm_positions])
            losses["mlm"] = L.token_cross_entropy(result.mlm_logits, labels[result.mlm_positions])
        if "action_target" in batch:
            result.action_logits = self.action_head(enc.action_clips(out.action_hidden))
            target = batch["action_target"].masked_fill(~keep[:, None], L.IGNORE)
            losses["action"] = L.token_cross_entropy(result.action_logits, target)
        if "region_target_mask" in batch:
            result.region_logits = self.region_head(out.region_hidden[:, 1:])  # skip the global token
            mask = batch["region_target_mask"].bool() & keep[:, None] & batch["region_mask"].bool()
            losses["region"] = L.region_kl(result.region_logits, batch["region_cls"], mask)
        if "match_labels" in batch:
            losses["match"] = L.matching_loss(result.match_logits, batch["match_labels"])
            if weights.get("contrastive", 0.0) > 0 and self.contrastive_head is not None:
                losses["contrastive"] = L.contrastive_loss(
                    self.embed_text(text), self.embed_video(video), self.contrastive_head.logit_scale, keep
                )
        result.losses = losses
        result.loss = sum(weights.get(name, 1.0) * value for name, value in losses.items())
        return result

    # --- checkpoints ---
    def save_pretrained(self, directory: str | Path, tokenizer=None) -> Path:
        from actbert.model.checkpoint import save_pretrained

        return save_pretrained(self, directory, tokenizer=tokenizer)

    @classmethod
    def from_pretrained(cls, directory: str | Path, **config_overrides) -> "ActBERTForPretraining":
        from actbert.model.checkpoint import load_pretrained

        return load_pretrained(cls, directory, **config_overrides)
