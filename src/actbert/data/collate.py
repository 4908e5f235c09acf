"""Samples -> the model batch of docs/architecture.md: tokenise, pad, draw matching negatives, mask.

`PretrainCollator` is a DataLoader `collate_fn`; it runs inside the loader's worker processes, so
each worker draws its own random numbers (seeded from `seed` and the worker's torch seed: a seeded
DataLoader gives the same batches on every run, and two workers never repeat each other's draws).
`EvalCollator` is the same padding without negatives or masking (every `match_labels` is 1).
Counters of everything unusual (truncated streams, batches with one video and so no negatives,
captions with no token) are in `collator.stats` (per process).
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from .corpus import ClipSample, NarratedCorpus

__all__ = ["PretrainCollator", "EvalCollator", "pretrain_loader"]
log = logging.getLogger(__name__)
IGNORE = -100


class PretrainCollator:
    """`collator(samples) -> dict[str, Tensor]` with every pre-training key except the masking ones,
    which `actbert.data.masking.mask_batch` adds when `masking` (a MaskingConfig) is given."""

    def __init__(self, tokenizer: Any, model_config: Any, masking: Any = None, negative_prob: float = 0.5,
                 seed: int = 0):
        if not 0.0 <= negative_prob <= 1.0:
            raise ValueError(f"negative_prob must be in [0, 1], got {negative_prob}")
        for attr in ("max_text_len", "max_actions", "max_regions"):
            if not hasattr(model_config, attr):
                raise TypeError(f"model_config lacks {attr!r} (expected an ActBERTConfig)")
        self.tok, self.cfg, self.masking = tokenizer, model_config, masking
        self.negative_prob, self.seed = negative_prob, seed
        self.special_ids: dict[str, int] = {}
        self.vocab_size = int(tokenizer.vocab_size)  # read once: a tokenizers property costs ~25 ms a call
        if masking is not None:
            from .masking import special_ids_of  # the lead's module; only needed when masking

            self.special_ids = special_ids_of(tokenizer)
        self.stats: Counter = Counter()
        self._gen_key: tuple | None = None
        self._gen: torch.Generator | None = None

    def generator(self) -> torch.Generator:
        """This process's generator: seeded from `seed` and, in a DataLoader worker, the worker's seed."""
        info = torch.utils.data.get_worker_info()
        key = (os.getpid(), None if info is None else info.seed)
        if key != self._gen_key:
            s = self.seed if info is None else hash((self.seed, info.seed)) & 0x7FFF_FFFF_FFFF_FFFF
            self._gen, self._gen_key = torch.Generator().manual_seed(s), key
        return self._gen

    # -- negatives --------------------------------------------------------------------------------
    def _negatives(self, samples: Sequence[ClipSample], g: torch.Generator) -> tuple[list[str], Tensor]:
        texts = [s.text for s in samples]
        match = torch.ones(len(samples), dtype=torch.long)
        if self.negative_prob <= 0:
            return texts, match
        vids = [s.video_id for s in samples]
        if len(set(vids)) < 2:
            self.stats["batches_without_negatives_one_video"] += 1
            return texts, match
        draw = torch.rand(len(samples), generator=g) < self.negative_prob
        for i in torch.nonzero(draw).flatten().tolist():
            others = [j for j, v in enumerate(vids) if v != vids[i]]  # another VIDEO's caption, never a
            j = others[int(torch.randint(len(others), (1,), generator=g))]  # neighbour window of the same video
            texts[i] = samples[j].text
            match[i] = 0
        self.stats["negatives"] += int((match == 0).sum())
        return texts, match

    # -- padding ----------------------------------------------------------------------------------
    def _check_dims(self, s: ClipSample) -> None:
        for name, arr, attr in (("action", s.action, "action_feat_dim"), ("region", s.region, "region_feat_dim"),
                                ("region_cls", s.region_cls, "num_region_classes")):
            want = getattr(self.cfg, attr, None)
            if want is not None and arr.shape[-1] != want:
                raise ValueError(f"sample of video {s.video_id!r} ({s.start:.1f}-{s.end:.1f} s): {name} has "
                                 f"dim {arr.shape[-1]}, model_config.{attr} is {want}")

    def pad(self, samples: Sequence[ClipSample]) -> dict[str, Tensor]:
        """Visual streams padded to the longest sample (capped at max_actions / max_regions)."""
        for s in samples:
            self._check_dims(s)
        B, c = len(samples), self.cfg
        A = min(max(len(s.action) for s in samples), c.max_actions)
        N = min(max(len(s.region) for s in samples), c.max_regions)
        d_a, d_r, n_cls = samples[0].action.shape[-1], samples[0].region.shape[-1], samples[0].region_cls.shape[-1]
        act = np.zeros((B, A, d_a), np.float32)
        act_mask = np.zeros((B, A), np.int64)
        act_lab = np.full((B, A), IGNORE, np.int64)
        reg = np.zeros((B, N, d_r), np.float32)
        loc = np.zeros((B, N, 5), np.float32)
        cls = np.zeros((B, N, n_cls), np.float32)
        reg_mask = np.zeros((B, N), np.int64)
        frame = np.zeros((B, N), np.int64)
        max_frame = getattr(c, "max_region_frames", None)
        for i, s in enumerate(samples):
            a, n = min(len(s.action), A), min(len(s.region), N)
            self.stats["actions_truncated"] += len(s.action) - a
            self.stats["regions_truncated"] += len(s.region) - n
            act[i, :a], act_mask[i, :a], act_lab[i, :a] = s.action[:a], 1, s.action_labels[:a]
            reg[i, :n], loc[i, :n], cls[i, :n], reg_mask[i, :n] = s.region[:n], s.region_loc[:n], s.region_cls[:n], 1
            frame[i, :n] = s.region_frame[:n]
            self.stats["samples_without_actions"] += a == 0
            self.stats["samples_without_regions"] += n == 0
        if max_frame is not None and (frame >= max_frame).any():  # the frame embedding has max_frame rows
            self.stats["region_frames_clamped"] += int((frame >= max_frame).sum())
            np.minimum(frame, max_frame - 1, out=frame)
        t = torch.from_numpy
        return {"action_feats": t(act), "action_mask": t(act_mask), "action_labels": t(act_lab),
                "region_feats": t(reg), "region_loc": t(loc), "region_mask": t(reg_mask), "region_frame": t(frame),
                "region_cls": t(cls)}

    def __call__(self, samples: Sequence[ClipSample | None]) -> dict[str, Tensor]:
        kept = [s for s in samples if s is not None]  # None: a window the corpus skipped (counted there)
        if len(kept) < len(samples):
            self.stats["samples_dropped_none"] += len(samples) - len(kept)
        if not kept:
            raise ValueError(f"cannot collate a batch with no usable sample ({len(samples)} given, all None)")
        samples = kept
        g = self.generator()
        texts, match = self._negatives(samples, g)
        ids, mask = self.tok.encode_batch(texts, self.cfg.max_text_len)
        ids, mask = torch.as_tensor(ids, dtype=torch.long), torch.as_tensor(mask, dtype=torch.long)
        empty = int((mask.sum(1) <= 2).sum())  # only [CLS] [SEP]: the text had no word piece
        if empty:
            self.stats["captions_without_tokens"] += empty
        batch = {"text_ids": ids, "text_mask": mask, "text_segment": torch.zeros_like(ids), **self.pad(samples),
                 "match_labels": match}
        self.stats["batches"] += 1
        self.stats["samples"] += len(samples)
        if self.masking is not None:
            from .masking import mask_batch

            batch = mask_batch(batch, self.masking, self.special_ids, self.vocab_size, generator=g)
        return batch


class EvalCollator(PretrainCollator):
    """Padding and tokenisation only: no negatives (match_labels all 1), no masking."""

    def __init__(self, tokenizer: Any, model_config: Any):
        super().__init__(tokenizer, model_config, masking=None, negative_prob=0.0)


def pretrain_loader(corpus: NarratedCorpus, collator: PretrainCollator, batch_size: int, num_workers: int = 2,
                    streaming: bool = False, rank: int = 0, world_size: int = 1, seed: int = 0, epoch: int = 0,
                    **loader_kw: Any) -> torch.utils.data.DataLoader:
    """A DataLoader over the corpus: random windows (map-style, sharded by DistributedSampler when
    world_size > 1) or `streaming` (the store read shard by shard, split over ranks and workers)."""
    kw = {"persistent_workers": num_workers > 0, **loader_kw}
    kw.update(batch_size=batch_size, num_workers=num_workers, collate_fn=collator)
    if num_workers > 0:
        kw.setdefault("prefetch_factor", 4)
    gen = torch.Generator().manual_seed(seed + epoch)
    if streaming:
        return torch.utils.data.DataLoader(corpus.stream(rank, world_size, seed=seed, epoch=epoch), generator=gen, **kw)
    sampler = None
    if world_size > 1:
        sampler = torch.utils.data.DistributedSampler(corpus, world_size, rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
    return torch.utils.data.DataLoader(corpus, sampler=sampler, shuffle=sampler is None, generator=gen, **kw)
