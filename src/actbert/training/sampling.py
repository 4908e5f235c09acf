"""Deterministic, resumable data order for pre-training, split across ranks without overlap.

Every epoch is a permutation of the dataset drawn from (seed, epoch). Global batch `b` of an epoch is
`perm[b*G:(b+1)*G]` (G = global batch size, the incomplete tail is dropped); rank `r` takes the r-th
contiguous slice of it. So the union over ranks of one micro-step is exactly the batch a single process
would see, and the data position is one pair (epoch, batch index) shared by all ranks.

Randomness inside collation (masking, drawn negatives) is seeded per batch from (seed, epoch, batch,
rank), so it does not depend on DataLoader workers, on what ran before, or on where a run was resumed.
"""
from __future__ import annotations

import inspect
import random
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset


@dataclass(frozen=True)
class DataPosition:
    epoch: int = 0
    batch: int = 0  # next global batch of the epoch to consume

    def advance(self, batches_per_epoch: int, n: int = 1) -> "DataPosition":
        total = self.epoch * batches_per_epoch + self.batch + n
        return DataPosition(total // batches_per_epoch, total % batches_per_epoch)


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (numpy's SeedSequence hashing: nearby inputs give unrelated seeds)."""
    hi, lo = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, dtype=np.uint32)
    return (int(hi) << 31) ^ int(lo)


class RankBatchSampler:
    """Yields this rank's share of each global batch from `start` on, as `(index, batch_seed)` keys."""

    def __init__(self, num_samples: int, global_batch: int, rank: int, world_size: int, seed: int,
                 start: DataPosition = DataPosition(), shuffle: bool = True, epochs: int | None = None):
        if global_batch % world_size:
            raise ValueError(f"batch size {global_batch} is not divisible by the {world_size} processes")
        if num_samples < global_batch:
            raise ValueError(f"the dataset has {num_samples} samples, fewer than one batch of {global_batch}")
        self.n, self.global_batch, self.rank, self.world = num_samples, global_batch, rank, world_size
        self.local = global_batch // world_size
        self.seed, self.start, self.shuffle, self.epochs = seed, start, shuffle, epochs

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.global_batch

    def order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, b = self.start.epoch, self.start.batch
        while self.epochs is None or epoch < self.epochs:
            perm = self.order(epoch)
            for batch in range(b, self.batches_per_epoch):
                lo = batch * self.global_batch + self.rank * self.local
                seed = mix_seed(self.seed, epoch, batch, self.rank)
                yield [(int(i), seed) for i in perm[lo:lo + self.local]]
            epoch, b = epoch + 1, 0

    def __len__(self) -> int:  # finite only with `epochs`; DataLoader asks for it
        if self.epochs is None:
            raise TypeError("an endless sampler has no length")
        return (self.epochs - self.start.epoch) * self.batches_per_epoch - self.start.batch


class KeyedDataset(Dataset):
    """Wraps a map-style dataset so that `(index, batch_seed)` keys reach the collate function."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> tuple[int, Any]:
        index, seed = key
        return seed, self.dataset[index]


class SeededCollate:
    """Calls `collate_fn(samples)` with its randomness fixed by the batch seed.

    A collate function that takes a `generator` keyword gets a seeded torch.Generator; any other runs
    with python / numpy / torch global RNGs seeded, and those RNGs are restored afterwards so the
    training loop's own random stream is not disturbed.
    """

    def __init__(self, collate_fn: Callable[[list[Any]], dict[str, torch.Tensor]]):
        self.collate_fn = collate_fn
        try:
            self.takes_generator = "generator" in inspect.signature(collate_fn).parameters
        except (TypeError, ValueError):
            self.takes_generator = False

    def __call__(self, keyed: Sequence[tuple[int, Any]]) -> dict[str, torch.Tensor]:
        seed = keyed[0][0]
        samples = [s for _, s in keyed]
        return seeded_call(self.collate_fn, samples, seed, self.takes_generator)


def seeded_call(fn: Callable, samples: list[Any], seed: int, takes_generator: bool) -> dict[str, torch.Tensor]:
    if takes_generator:
        return fn(samples, generator=torch.Generator().manual_seed(seed))
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            random.seed(seed)
            np.random.seed(seed % (1 << 32))
            torch.manual_seed(seed)
            return fn(samples)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
