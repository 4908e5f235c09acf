"""Masking for pre-training: turns a model batch into a corrupted batch plus targets.

Words: 15 % of real, non-special word pieces are chosen; of those 80 % become [MASK], 10 % a random
word piece, 10 % stay. Actions and regions: 15 % of real tokens are chosen; their features are zeroed
90 % of the time (the location of a region is kept). Padding and special tokens are never chosen.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import torch
from torch import Tensor

IGNORE = -100


@dataclass
class MaskingConfig:
    word_prob: float = 0.15
    word_mask_frac: float = 0.8
    word_random_frac: float = 0.1
    action_prob: float = 0.15
    region_prob: float = 0.15
    visual_zero_prob: float = 0.9

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"MaskingConfig.{name} must be in [0, 1], got {value}")
        if self.word_mask_frac + self.word_random_frac > 1.0:
            raise ValueError("word_mask_frac + word_random_frac must be <= 1")


def special_ids_of(tokenizer: Any) -> dict[str, int]:
    """The ids a tokenizer reserves ([PAD], [CLS], [SEP], [MASK], [UNK]) as the mapping `mask_batch` takes."""
    names = {"pad": "pad_id", "cls": "cls_id", "sep": "sep_id", "mask": "mask_id", "unk": "unk_id"}
    return {key: int(getattr(tokenizer, attr)) for key, attr in names.items() if getattr(tokenizer, attr, None) is not None}


def _bernoulli(shape: torch.Size, p: float, generator: torch.Generator | None, device) -> Tensor:
    return torch.rand(shape, generator=generator, device=device) < p


def mask_batch(
    batch: Mapping[str, Tensor],
    masking: MaskingConfig,
    special_ids: Mapping[str, int],
    vocab_size: int,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Return a new batch with corrupted inputs and `mlm_labels`, `action_target`, `region_target_mask`.

    `special_ids` must contain "mask"; every id in it is never chosen nor drawn as a random replacement.
    """
    if "mask" not in special_ids:
        raise ValueError(f"special_ids must name the [MASK] id, got keys {sorted(special_ids)}")
    out = dict(batch)
    ids = batch["text_ids"]
    device = ids.device
    special = torch.tensor(sorted(set(special_ids.values())), device=device)
    real = batch["text_mask"].bool() & ~torch.isin(ids, special)
    chosen = _bernoulli(ids.shape, masking.word_prob, generator, device) & real
    out["mlm_labels"] = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    roll = torch.rand(ids.shape, generator=generator, device=device)
    to_mask = chosen & (roll < masking.word_mask_frac)
    to_random = chosen & (roll >= masking.word_mask_frac) & (roll < masking.word_mask_frac + masking.word_random_frac)
    allowed = torch.ones(vocab_size, dtype=torch.bool, device=device)
    allowed[special[special < vocab_size]] = False
    allowed_ids = allowed.nonzero().squeeze(1)
    pick = torch.randint(len(allowed_ids), ids.shape, generator=generator, device=device)
    new_ids = torch.where(to_mask, torch.full_like(ids, special_ids["mask"]), ids)
    out["text_ids"] = torch.where(to_random, allowed_ids[pick], new_ids)

    a_mask = batch["action_mask"].bool()
    a_chosen = _bernoulli(a_mask.shape, masking.action_prob, generator, device) & a_mask
    labels = batch.get("action_labels")
    if labels is None:
        labels = torch.full(a_mask.shape, IGNORE, dtype=torch.long, device=device)
    out["action_target"] = torch.where(a_chosen, labels, torch.full_like(labels, IGNORE))
    a_zero = a_chosen & _bernoulli(a_mask.shape, masking.visual_zero_prob, generator, device)
    out["action_feats"] = batch["action_feats"].masked_fill(a_zero.unsqueeze(-1), 0.0)

    r_mask = batch["region_mask"].bool()
    r_chosen = _bernoulli(r_mask.shape, masking.region_prob, generator, device) & r_mask
    out["region_target_mask"] = r_chosen
    r_zero = r_chosen & _bernoulli(r_mask.shape, masking.visual_zero_prob, generator, device)
    out["region_feats"] = batch["region_feats"].masked_fill(r_zero.unsqueeze(-1), 0.0)
    return out
