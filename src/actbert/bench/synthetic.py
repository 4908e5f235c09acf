"""Synthetic model batches at any size: for benchmarks and tests that need shapes, not meaning."""
from __future__ import annotations

import torch

from actbert.model.config import ActBERTConfig


def random_batch(
    config: ActBERTConfig,
    batch_size: int,
    text_len: int | None = None,
    num_regions: int | None = None,
    num_actions: int | None = None,
    generator: torch.Generator | None = None,
    with_targets: bool = True,
) -> dict[str, torch.Tensor]:
    """A full (unmasked) pre-training batch; real tokens first, then padding, like the collator makes."""
    g = generator
    L = text_len or config.max_text_len
    N = config.max_regions if num_regions is None else num_regions
    A = config.max_actions if num_actions is None else num_actions
    B = batch_size
    low = 1000 if config.vocab_size > 2000 else 104  # above bert-base-uncased's special ids
    ids = torch.randint(low, config.vocab_size, (B, L), generator=g)
    lengths = torch.randint(max(2, L // 2), L + 1, (B,), generator=g)
    text_mask = (torch.arange(L)[None] < lengths[:, None]).long()
    ids[:, 0] = 101 if config.vocab_size > 103 else 1  # [CLS]
    ids = ids.masked_fill(text_mask == 0, config.pad_token_id)
    region_mask = (torch.arange(N)[None] < torch.randint(0, N + 1, (B,), generator=g)[:, None]).long()
    action_mask = (torch.arange(A)[None] < torch.randint(0, A + 1, (B,), generator=g)[:, None]).long()
    x1y1 = torch.rand(B, N, 2, generator=g) * 0.5
    x2y2 = x1y1 + torch.rand(B, N, 2, generator=g) * 0.5
    area = (x2y2 - x1y1).prod(-1, keepdim=True)
    batch = {
        "text_ids": ids,
        "text_mask": text_mask,
        "action_feats": torch.randn(B, A, config.action_feat_dim, generator=g),
        "action_mask": action_mask,
        "region_feats": torch.randn(B, N, config.region_feat_dim, generator=g).relu(),
        "region_loc": torch.cat([x1y1, x2y2, area], -1),
        "region_mask": region_mask,
        "region_frame": torch.randint(0, 5, (B, N), generator=g),
    }
    if with_targets:
        batch["region_cls"] = torch.softmax(2 * torch.randn(B, N, config.num_region_classes, generator=g), -1)
        batch["action_labels"] = torch.randint(0, config.num_action_classes, (B, A), generator=g)
        batch["match_labels"] = torch.randint(0, 2, (B,), generator=g)
    return batch


SPECIAL_IDS = {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103}  # bert-base-uncased's
