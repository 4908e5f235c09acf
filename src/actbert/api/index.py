"""The clip index: fixed windows over every video of a feature store, with their first-stage embeddings on disk.

Layout of an index folder::

    index.json          what built it (model config hash, weights fingerprint, vocabulary hash, checkpoint),
                        the store it reads, clip length / stride, dims, and the chunk list; written LAST,
                        so a folder without it is an unfinished build
    videos.json         video ids in index order (clip metadata refers to them by position)
    emb-00000.npy       [rows, D] L2-normalised contrastive video embeddings (float32, or float16)
    clips-00000.npy     [rows] (video int32, start float32, end float32), row-aligned with emb-00000.npy
    store/              the feature store, when the index was built from raw videos

Chunks are plain ``.npy`` files so they can be memory-mapped: building holds one chunk of rows and one
batch of windows in memory, searching one block of rows, whatever the number of clips.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from actbert.errors import ActbertError, InputError, naming_file, read_json
from actbert.api.vector_search import BACKENDS, FaissSearcher, exact_topk, stream_chunks

__all__ = ["INDEX_FORMAT", "IndexMismatchError", "IndexCorruptError", "ModelFingerprint", "fingerprint", "ClipIndex", "IndexWriter",
           "clip_windows"]

INDEX_FORMAT = "actbert.clip_index"
INDEX_VERSION = 1
INDEX_JSON = "index.json"
CLIP_DTYPE = np.dtype([("video", "<i4"), ("start", "<f4"), ("end", "<f4")])


class IndexMismatchError(ActbertError, ValueError):
    """The index was built with another model or vocabulary than the one searching it."""


@dataclass(frozen=True)
class ModelFingerprint:
    """What the stored embeddings depend on: the model's config, its weights and the vocabulary."""

    config_hash: str
    weights_hash: str
    vocab_hash: str
    source: str  # checkpoint folder, or "<in-memory model>"

    def as_dict(self) -> dict:
        return {"model_config_hash": self.config_hash, "weights_hash": self.weights_hash,
                "vocab_hash": self.vocab_hash, "model_source": self.source}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprint(model, tokenizer, source: str | None = None) -> ModelFingerprint:
    """Hashes of `model.config`, of its weights and of the tokenizer's vocabulary (id order).

    The weights hash is over every parameter's float64 sum and sum of squares: not cryptographic, but it
    tells two checkpoints of one config apart (a later training step changes every sum) in milliseconds,
    where hashing the raw bytes of a `base` model would take seconds per `Pipeline`.
    """
    import torch

    cfg = model.config.to_dict()
    cfg.pop("preset", None)  # a name, not something the embeddings depend on
    sums = []
    with torch.no_grad():
        for name, p in sorted(model.state_dict().items()):
            if p.is_floating_point():
                d = p.detach().double()
                sums.append(f"{name}:{tuple(p.shape)}:{float(d.sum()):.10e}:{float((d * d).sum()):.10e}")
    tokens = tokenizer.convert_ids_to_tokens(list(range(tokenizer.vocab_size)))
    return ModelFingerprint(_sha(json.dumps(cfg, sort_keys=True)), _sha("\n".join(sums)),
                            _sha("\n".join(str(t) for t in tokens)), source or "<in-memory model>")


def clip_windows(duration: float, clip_seconds: float, stride: float) -> list[tuple[float, float]]:
    """Windows `[start, end)` of `clip_seconds` every `stride` s covering `[0, duration]`.

    The last window is moved back to end at the video's end (so the tail is covered by a full-length
    window); a video shorter than one window gets one window over all of it.
    """
    if clip_seconds <= 0 or stride <= 0:
        raise ValueError(f"clip_seconds and stride must be > 0, got {clip_seconds} and {stride}")
    duration = max(float(duration), 0.0)
    if duration <= clip_seconds:
        return [(0.0, duration if duration > 0 else clip_seconds)]
    starts = list(np.arange(0.0, duration - clip_seconds + 1e-6, stride))
    out = [(float(s), float(s) + clip_seconds) for s in starts]
    if out[-1][1] < duration - 1e-6:
        out.append((duration - clip_seconds, duration))
    return out


def _atomic_json(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with naming_file(path):
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    """np.save, then check the file holds the whole array: numpy's `tofile` can drop a failed write (full
    disk, file size limit) without an error (measured: a 3 KB chunk left at 2048 bytes, no exception)."""
    with naming_file(path):  # a full disk names the file
        np.save(path, arr)
        try:
            complete = np.load(path, mmap_mode="r").shape == arr.shape
        except ValueError:  # "mmap length is greater than file size"
            complete = False
        if not complete:
            raise OSError(errno.EIO, f"short write: only {path.stat().st_size} bytes reached the disk (disk full or "
                                     "file size limit?)", str(path))


class IndexWriter:
    """Appends (video, start, end, embedding) rows; writes a chunk file every `chunk_rows` rows."""

    def __init__(self, out: str | Path, dim: int, chunk_rows: int = 32768, dtype: str = "float16",
                 overwrite: bool = False):
        self.out = Path(out)
        if dtype not in ("float16", "float32"):
            raise ValueError(f"dtype must be float16 or float32, got {dtype!r}")
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        if (self.out / INDEX_JSON).exists() and not overwrite:
            raise FileExistsError(f"{self.out} already holds an index; pass overwrite=True (--overwrite) to rebuild "
                                  "it (an extracted store/ inside it is kept)")
        self.out.mkdir(parents=True, exist_ok=True)
        for old in [*self.out.glob("emb-*.npy"), *self.out.glob("clips-*.npy"), self.out / INDEX_JSON]:
            old.unlink(missing_ok=True)  # index.json first would be safer, but all are removed before any write
        self.dim, self.chunk_rows, self.dtype = dim, chunk_rows, np.dtype(dtype)
        self.videos: list[str] = []
        self._vpos: dict[str, int] = {}
        self._emb: list[np.ndarray] = []
        self._meta: list[np.ndarray] = []
        self._buffered = 0
        self.chunks: list[dict] = []
        self.n_clips = 0

    def add(self, video: str, windows: Sequence[tuple[float, float]], embeddings: np.ndarray) -> None:
        emb = np.asarray(embeddings)
        if emb.shape != (len(windows), self.dim):
            raise ValueError(f"embeddings of {video!r} have shape {emb.shape}, expected ({len(windows)}, {self.dim})")
        if video not in self._vpos:
            self._vpos[video] = len(self.videos)
            self.videos.append(video)
        meta = np.zeros(len(windows), CLIP_DTYPE)
        meta["video"] = self._vpos[video]
        meta["start"], meta["end"] = [w[0] for w in windows], [w[1] for w in windows]
        self._emb.append(emb.astype(self.dtype))
        self._meta.append(meta)
        self._buffered += len(windows)
        while self._buffered >= self.chunk_rows:
            self._flush(self.chunk_rows)

    def _flush(self, rows: int) -> None:
        emb, meta = np.concatenate(self._emb), np.concatenate(self._meta)
        n = len(self.chunks)
        _save_npy(self.out / f"emb-{n:05d}.npy", emb[:rows])
        _save_npy(self.out / f"clips-{n:05d}.npy", meta[:rows])
        self.chunks.append({"emb": f"emb-{n:05d}.npy", "clips": f"clips-{n:05d}.npy", "rows": int(rows)})
        self.n_clips += rows
        self._emb, self._meta = ([emb[rows:]], [meta[rows:]]) if rows < len(emb) else ([], [])
        self._buffered = len(emb) - rows

    def close(self, info: dict) -> "ClipIndex":
        """Write the last chunk, `videos.json`, then `index.json` (the commit point); returns the index."""
        if self._buffered:
            self._flush(self._buffered)
        if self.n_clips == 0:
            raise ValueError(f"no clip to index in {self.out}: the feature store holds no video")
        _atomic_json(self.out / "videos.json", self.videos)
        _atomic_json(self.out / INDEX_JSON, {
            "format": INDEX_FORMAT, "version": INDEX_VERSION, **info, "embedding_dim": self.dim,
            "dtype": self.dtype.name, "n_clips": self.n_clips, "n_videos": len(self.videos), "chunks": self.chunks})
        return ClipIndex(self.out)


class IndexCorruptError(InputError):
    """An index folder whose files disagree with its index.json (or with each other): rebuild it."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(path, f"{problem}; the index is damaged: rebuild it (actbert index ... --overwrite)")


def _is_count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _check_layout(root: Path, info: dict) -> tuple[list[dict], list[str]]:
    """(chunks, videos) of an index, after checking every file against index.json.

    Cheap checks only (`.npy` headers, the 12-byte-per-row clip tables): rows per chunk, embedding width,
    the number of videos, and that every clip points at a listed video. Embedding values are checked for
    NaN / inf as the search streams them (`vector_search.stream_chunks`), so opening stays fast.
    """
    meta_path = root / INDEX_JSON
    for key, ok in (("chunks", lambda v: isinstance(v, list) and v), ("n_clips", _is_count),
                    ("n_videos", _is_count), ("embedding_dim", lambda v: _is_count(v) and v > 0),
                    ("store", lambda v: isinstance(v, str))):
        if key not in info or not ok(info[key]):
            raise IndexCorruptError(meta_path, f"missing or invalid {key!r} ({info.get(key)!r})")
    chunks = info["chunks"]
    for i, c in enumerate(chunks):
        if not (isinstance(c, dict) and isinstance(c.get("emb"), str) and isinstance(c.get("clips"), str)
                and _is_count(c.get("rows"))):
            raise IndexCorruptError(meta_path, f"chunks[{i}] must be {{emb, clips, rows}}, got {c!r}")
        for k in ("emb", "clips"):
            if Path(c[k]).name != c[k]:  # a name, never a path that leads out of the folder
                raise IndexCorruptError(meta_path, f"chunks[{i}].{k} {c[k]!r} is not a file name")
    missing = [c[k] for c in chunks for k in ("emb", "clips") if not (root / c[k]).is_file()]
    if missing:
        raise IndexCorruptError(root, f"incomplete index: missing {missing[:5]}")
    if sum(c["rows"] for c in chunks) != info["n_clips"]:
        raise IndexCorruptError(meta_path, f"n_clips is {info['n_clips']} but the chunks list "
                                           f"{sum(c['rows'] for c in chunks)} rows")
    videos = read_json(root / "videos.json")
    if not isinstance(videos, list) or not all(isinstance(v, str) for v in videos):
        raise IndexCorruptError(root / "videos.json", "expected a JSON list of video ids")
    if len(videos) != info["n_videos"]:
        raise IndexCorruptError(root / "videos.json", f"lists {len(videos)} videos, index.json says {info['n_videos']}")
    for c in chunks:
        emb, clips = _open_npy(root / c["emb"]), _open_npy(root / c["clips"])
        if emb.shape != (c["rows"], info["embedding_dim"]):
            raise IndexCorruptError(root / c["emb"], f"holds {emb.shape} embeddings, index.json says "
                                                     f"({c['rows']}, {info['embedding_dim']})")
        if clips.dtype != CLIP_DTYPE or clips.shape != (c["rows"],):
            raise IndexCorruptError(root / c["clips"], f"holds {clips.shape} {clips.dtype} clip rows, index.json "
                                                       f"says ({c['rows']},) {CLIP_DTYPE}")
        vid = np.asarray(clips["video"])
        if len(vid) and (vid.min() < 0 or vid.max() >= len(videos)):
            raise IndexCorruptError(root / c["clips"], f"a clip points at video {int(vid.max())}, but videos.json "
                                                       f"lists {len(videos)}")
    return chunks, videos


def _open_npy(path: Path) -> np.ndarray:
    """A memory map of a .npy chunk (reads the header only); a damaged header is an IndexCorruptError."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # numpy parses the header with ast.literal_eval: SyntaxError, TokenError, ... too
        msg = (str(exc).strip().splitlines() or [""])[0][:200]
        raise IndexCorruptError(path, f"unreadable .npy chunk ({type(exc).__name__}: {msg})") from None


class ClipIndex:
    """Read side of an index folder: metadata, model check, and first-stage search."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta_path = self.path / INDEX_JSON
        if not meta_path.is_file():
            raise FileNotFoundError(f"{self.path} is not a clip index (no {INDEX_JSON}; build one with `actbert index` "
                                    "or Pipeline.index, or the build did not finish)")
        self.info = read_json(meta_path)
        if not isinstance(self.info, dict) or self.info.get("format") != INDEX_FORMAT:
            got = self.info.get("format") if isinstance(self.info, dict) else type(self.info).__name__
            raise IndexCorruptError(meta_path, f"not an actbert clip index (format={got!r})")
        self.chunks, self.videos = _check_layout(self.path, self.info)
        self._offsets = np.cumsum([0] + [c["rows"] for c in self.chunks])
        self._faiss: FaissSearcher | None = None
        self._store = None

    # -- facts -----------------------------------------------------------------------------------------
    @property
    def n_clips(self) -> int:
        return int(self.info["n_clips"])

    @property
    def dim(self) -> int:
        return int(self.info["embedding_dim"])

    def emb_paths(self) -> list[Path]:
        return [self.path / c["emb"] for c in self.chunks]

    @property
    def store_path(self) -> Path:
        p = Path(self.info["store"])
        return p if p.is_absolute() else self.path / p

    def store(self):
        """The feature store the clips come from (opened once); a clear error when it has gone."""
        if self._store is None:
            from actbert.data.store import FeatureStore

            if not (self.store_path / "shards").is_dir():
                raise FileNotFoundError(f"the feature store {self.store_path} that index {self.path} was built from "
                                        "no longer exists (moved or deleted?): rebuild the index")
            self._store = FeatureStore(self.store_path)
        return self._store

    def clips(self, rows: Sequence[int]) -> list[tuple[str, float, float]]:
        """`(video, start, end)` of global rows, read from the memory-mapped metadata chunks."""
        out = []
        for r in rows:
            c = int(np.searchsorted(self._offsets, r, side="right")) - 1
            if not 0 <= c < len(self.chunks):
                raise IndexError(f"clip row {r} outside the index ({self.n_clips} clips)")
            m = np.load(self.path / self.chunks[c]["clips"], mmap_mode="r")[r - self._offsets[c]]
            out.append((self.videos[int(m["video"])], float(m["start"]), float(m["end"])))
        return out

    def iter_clips(self) -> Iterator[tuple[str, float, float]]:
        for c in self.chunks:
            for m in np.load(self.path / c["clips"], mmap_mode="r"):
                yield self.videos[int(m["video"])], float(m["start"]), float(m["end"])

    # -- checks ----------------------------------------------------------------------------------------
    def check(self, fp: ModelFingerprint) -> None:
        """Raise IndexMismatchError naming both sides when `fp` is not the model/vocabulary that built it."""
        i = self.info
        problems = []
        if i.get("model_config_hash") != fp.config_hash:
            problems.append(f"model config {i.get('model_config_hash')} vs {fp.config_hash}")
        elif i.get("weights_hash") != fp.weights_hash:
            problems.append(f"model weights {i.get('weights_hash')} vs {fp.weights_hash}")
        if i.get("vocab_hash") != fp.vocab_hash:
            problems.append(f"vocabulary {i.get('vocab_hash')} vs {fp.vocab_hash}")
        if problems:
            raise IndexMismatchError(
                f"index {self.path} was built with model {i.get('model_source')!r}, but it is being searched with "
                f"model {fp.source!r}: " + "; ".join(problems) + " (index vs this model). Search it with the model "
                "that built it, or rebuild the index with this one.")

    # -- first stage -----------------------------------------------------------------------------------
    def search(self, query_emb: np.ndarray, k: int, backend: str = "exact", block_rows: int = 8192
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` `(scores [Q, k], rows [Q, k])` by inner product; see `actbert.api.vector_search`."""
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        q = np.atleast_2d(np.asarray(query_emb, dtype=np.float32))
        if q.shape[1] != self.dim:
            raise IndexMismatchError(f"query embedding dim {q.shape[1]} != index {self.path} dim {self.dim}")
        if backend == "faiss":
            if self._faiss is None:
                self._faiss = FaissSearcher(self.emb_paths(), self.dim, block_rows)
            return self._faiss.search(q, k)
        return exact_topk(q, stream_chunks(self.emb_paths(), block_rows), k)

    def __len__(self) -> int:
        return self.n_clips

    def __repr__(self) -> str:
        return f"ClipIndex({str(self.path)!r}, clips={self.n_clips}, videos={len(self.videos)})"
