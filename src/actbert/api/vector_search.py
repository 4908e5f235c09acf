"""First-stage vector search: top-k inner products of query embeddings against chunked on-disk embeddings.

Two backends, same answer (up to float rounding):

* ``exact`` (default) streams the embedding chunks (``.npy`` memory maps, float16 or float32) and multiplies
  them block by block, keeping a running top-k per query. Memory is two blocks of ``block_rows`` rows in
  float32 (the one being scored and the next) plus the top-k lists, whatever the number of indexed clips.
  Float32 chunks are multiplied straight from the memory map; float16 chunks are converted block by block,
  which costs more than the product itself (numpy's float16 conversion is scalar code).
* ``faiss`` loads every chunk into a ``faiss.IndexFlatIP`` once (float32, N x D x 4 bytes in RAM) and
  searches it with faiss' BLAS kernels. It is exact too (flat index); it pays off when many queries hit
  the same index in one process. It needs ``faiss-cpu``.

Ties are broken by the lower global row id, so the result never depends on how rows were chunked.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

__all__ = ["BACKENDS", "stream_chunks", "exact_topk", "FaissSearcher", "faiss_available", "merge_topk"]

BACKENDS = ("exact", "faiss")


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def stream_chunks(paths: Sequence[str | Path], block_rows: int = 8192) -> Iterator[tuple[int, np.ndarray]]:
    """`(first global row, float32 block)` over the chunk files in order, at most `block_rows` rows a block.

    The chunks are opened as memory maps, so only the rows of the current block are read into memory
    (a float32 chunk's block is a view of the map: no copy). 8192 rows keep a float32 block (8 MiB at
    D = 256) in cache, which measured faster than larger blocks for the float16 conversion.
    """
    offset = 0
    for p in paths:
        arr = np.load(p, mmap_mode="r")
        if arr.ndim != 2:
            raise ValueError(f"{p}: embedding chunk must be 2-D [rows, dim], got shape {arr.shape}")
        for lo in range(0, arr.shape[0], block_rows):
            block = np.asarray(arr[lo:lo + block_rows], dtype=np.float32)
            finite = np.isfinite(block).all(axis=1)  # one pass over rows the product reads anyway
            if not finite.all():
                from actbert.errors import InputError

                bad = int(np.flatnonzero(~finite)[0]) + lo
                raise InputError(p, f"row {bad}: non-finite embedding (NaN or inf) in the index; rebuild it "
                                    "(actbert index ... --overwrite)")
            yield offset + lo, block
        offset += arr.shape[0]
        del arr  # drop the map before opening the next file


def merge_topk(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` best of one query's candidates, best first, ties to the lower id (deterministic)."""
    order = np.lexsort((ids, -scores))[:k]
    return scores[order], ids[order]


def _block_candidates(row: np.ndarray, k: int) -> np.ndarray:
    """Positions of every entry that can be in the top `k` of `row` (ties at the k-th value included)."""
    if row.shape[0] <= k:
        return np.arange(row.shape[0])
    kth = np.partition(row, row.shape[0] - k)[row.shape[0] - k]
    return np.flatnonzero(row >= kth)


def exact_topk(queries: np.ndarray, blocks: Iterable[tuple[int, np.ndarray]], k: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Top-`k` `(scores [Q, k'], ids [Q, k'])` of `queries @ rows.T` over streamed `(offset, rows)` blocks.

    `k'` = min(k, number of rows). Rows and queries are used as given (the index stores L2-normalised
    embeddings, so the inner product is the cosine similarity).
    """
    q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    best_s = [np.zeros(0, np.float32) for _ in range(len(q))]
    best_i = [np.zeros(0, np.int64) for _ in range(len(q))]
    for offset, rows in blocks:
        if rows.shape[1] != q.shape[1]:
            raise ValueError(f"query dim {q.shape[1]} != indexed embedding dim {rows.shape[1]}")
        sims = q @ rows.T  # [Q, block]
        for j in range(len(q)):
            cand = _block_candidates(sims[j], k)
            s = np.concatenate([best_s[j], sims[j, cand]])
            i = np.concatenate([best_i[j], cand.astype(np.int64) + offset])
            best_s[j], best_i[j] = merge_topk(s, i, k)
    n = min(len(s) for s in best_s) if best_s else 0
    return np.stack([s[:n] for s in best_s]), np.stack([i[:n] for i in best_i])


class FaissSearcher:
    """An exact `faiss.IndexFlatIP` over every chunk (built once, kept for repeated queries)."""

    def __init__(self, paths: Sequence[str | Path], dim: int, block_rows: int = 8192):
        try:
            import faiss
        except ImportError:
            raise RuntimeError("the faiss backend needs faiss-cpu: pip install faiss-cpu "
                               "(or search with the default exact backend)") from None
        self._faiss = faiss
        self.index = faiss.IndexFlatIP(dim)
        for _, rows in stream_chunks(paths, block_rows):  # added block by block: no second full copy
            self.index.add(np.ascontiguousarray(rows))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(int(k), len(self))
        if k < 1:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        # ask for a few more than k so that ties at the boundary can be re-ordered by id like `exact_topk`
        s, i = self.index.search(q, min(len(self), k + 8))
        out_s, out_i = [], []
        for row_s, row_i in zip(s, i):
            keep = row_i >= 0
            ms, mi = merge_topk(row_s[keep], row_i[keep].astype(np.int64), k)
            out_s.append(ms)
            out_i.append(mi)
        return np.stack(out_s), np.stack(out_i)
