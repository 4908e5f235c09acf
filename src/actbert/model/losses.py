"""The four pre-training losses (+ the optional contrastive one). Each is finite when nothing is masked."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE = -100


def _safe_mean(total: Tensor, count: Tensor) -> Tensor:
    # 0 (with a gradient path) when nothing is selected, instead of 0/0 = NaN
    return total / count.clamp(min=1).to(total.dtype)


def token_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean CE over positions whose label is not IGNORE (masked words or masked actions)."""
    flat_logits, flat_labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    total = F.cross_entropy(flat_logits.float(), flat_labels, ignore_index=IGNORE, reduction="sum")
    return _safe_mean(total, (flat_labels != IGNORE).sum())


def region_kl(logits: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """KL(target || softmax(logits)) per masked region, averaged over masked regions."""
    log_pred = F.log_softmax(logits.float(), dim=-1)
    target = target.float()
    kl = (torch.xlogy(target, target) - target * log_pred).sum(-1)  # xlogy: 0 * log 0 = 0
    mask = mask.bool()
    return _safe_mean((kl * mask).sum(), mask.sum())


def matching_loss(logits: Tensor, labels: Tensor) -> Tensor:
    return F.cross_entropy(logits.float(), labels)


def contrastive_loss(text_emb: Tensor, video_emb: Tensor, logit_scale: Tensor, valid: Tensor) -> Tensor:
    """Symmetric InfoNCE over the matched pairs of the batch (CLIP-style)."""
    valid = valid.bool()
    if int(valid.sum()) < 2:  # no negatives to contrast with
        return text_emb.sum() * 0.0
    t, v = text_emb[valid].float(), video_emb[valid].float()
    logits = logit_scale.exp().clamp(max=100) * t @ v.t()
    target = torch.arange(t.shape[0], device=t.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
