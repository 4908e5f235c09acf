"""Feature store: sharded safetensors files + per-part JSON indexes (format and reasons: docs/data.md).

Layout of a store root::

    store.json                          store-level meta: dims, class counts, extractor configs
    shards/<part>-<n:05d>.safetensors   many videos each; written to a temp name, then os.replace'd
    index/<part>.json                   shard -> (size, mtime, video ids); a cache, rebuilt from headers
    failures-<part>.jsonl               videos a writer could not extract (appended, one JSON per line)

Every writer owns one `part` (a machine, a rank, an `--shard-index`) and touches only that part's
files, so writers never coordinate. A killed writer leaves every finished shard readable; its
temp file is removed when the part is resumed.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any, Container, Iterator

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save as st_save

from .store_format import (ARRAY_FIELDS, FORMAT, PART_RE, SHARD_RE, STORE_DIMS, ShardCorruptError, StoreError,
                           VideoFeatures, atomic_write_bytes, atomic_write_json, crc_of, from_disk,
                           merge_meta, read_failures, read_store_meta, reindex, scan_shards, to_disk, validate)

__all__ = ["FeatureStore", "StoreWriter", "VideoFeatures", "StoreError", "ShardCorruptError", "StaleIndexError",
           "reindex"]
log = logging.getLogger(__name__)
_DIM_FIELD = {"action_feat_dim": "action", "region_feat_dim": "region", "num_region_classes": "region_cls"}


class StoreWriter:
    """Appends videos to one part of a store; resumable; one writer per part (enforced by a file lock).

    Use `done_ids()` to skip finished videos on resume, `add()` for each extracted video,
    `record_failure()` for each video that could not be extracted, and `close()` (or `with`).
    """

    def __init__(self, root: str | Path, part: str = "part000", shard_videos: int = 64, meta: dict | None = None,
                 shard_bytes: int = 1 << 30):
        if not PART_RE.match(part):
            raise ValueError(f"part name {part!r} must match {PART_RE.pattern} (no '-')")
        if shard_videos < 1:
            raise ValueError("shard_videos must be >= 1")
        self.root, self.part = Path(root), part
        self.shard_videos, self.shard_bytes = shard_videos, shard_bytes
        (self.root / "shards").mkdir(parents=True, exist_ok=True)
        (self.root / "index").mkdir(exist_ok=True)
        self._lock = open(self.root / f".lock-{part}", "w")
        try:  # flock dies with the process, so a killed writer never leaves a stale lock behind
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StoreError(f"part {part!r} of store {self.root} is being written by another process") from None
        self.repairs: list[str] = []
        for tmp in (self.root / "shards").glob(f".{part}-*.tmp"):  # a shard a killed writer never finished
            tmp.unlink()
            self.repairs.append(f"removed unfinished shard {tmp.name}")
        shards, problems = scan_shards(self.root, on_corrupt="skip")
        for pr in problems:  # our own corrupt shards are moved aside so their videos are extracted again
            p = Path(pr["file"])
            if p.exists() and p.name.startswith(f"{part}-"):
                p.rename(p.with_name(p.name + ".corrupt"))
                self.repairs.append(f"moved aside corrupt shard {p.name} ({pr['error']})")
            else:
                log.warning("store %s: %s (%s), not this writer's part; left alone", self.root, pr["file"], pr["error"])
        for r in self.repairs:
            log.warning("store %s: %s", self.root, r)
        self._own = {n: {k: v for k, v in e.items() if k != "stale_index"}
                     for n, e in shards.items() if SHARD_RE.match(n).group(1) == part}
        self._done = {v for e in shards.values() for v in e["videos"]}
        nums = [int(SHARD_RE.match(n).group(2)) for n in self._own]
        nums += [int(m.group(2)) for p in (self.root / "shards").glob(f"{part}-*.corrupt")
                 if (m := SHARD_RE.match(p.name[: -len(".corrupt")]))]
        self._next = max(nums, default=-1) + 1
        self.meta = merge_meta(self.root, meta)
        self._buf: list[VideoFeatures] = []
        self._buf_ids: set[str] = set()
        self._buf_bytes = 0
        self.stats = {"added": 0, "duplicates_skipped": 0, "failures_recorded": 0, "shards_written": 0}
        self._write_index()
        self._closed = False

    # -- resume ---------------------------------------------------------------------------------------
    def done_ids(self) -> set[str]:
        """Video ids stored by ANY part (and those buffered here). Recorded failures are not in it: retried."""
        return self._done | self._buf_ids

    def failed_ids(self) -> set[str]:
        """Ids this part recorded as failures that are still not stored (they will be retried)."""
        return {f["video_id"] for f in read_failures(self.root / f"failures-{self.part}.jsonl")} - self.done_ids()

    # -- writing --------------------------------------------------------------------------------------
    def add(self, video: VideoFeatures) -> bool:
        """Validate and buffer one video (ValueError names the video and field). False if already stored."""
        if self._closed:
            raise StoreError("add() on a closed StoreWriter")
        v = validate(video)
        if v.video_id in self._done or v.video_id in self._buf_ids:  # not done_ids(): that copies the set
            self.stats["duplicates_skipped"] += 1
            log.warning("store %s: video %r is already stored; skipped", self.root, v.video_id)
            return False
        dims = v.dims()
        new = {k: d for k, d in dims.items() if k not in self.meta}
        for k in STORE_DIMS:
            if k in self.meta and self.meta[k] != dims[k]:
                raise ValueError(f"video {v.video_id!r}, field {_DIM_FIELD[k]!r}: {k} is {dims[k]} but store "
                                 f"{self.root} holds {self.meta[k]} (store.json)")
        if new:
            self.meta = merge_meta(self.root, new)
        self._buf.append(v)
        self._buf_ids.add(v.video_id)
        self._buf_bytes += v.nbytes() // 2
        self.stats["added"] += 1
        if len(self._buf) >= self.shard_videos or self._buf_bytes >= self.shard_bytes:
            self.flush()
        return True

    def record_failure(self, video_id: str, path: str | os.PathLike | None, reason: str) -> None:
        """Append a failure record (fsync'd, so a crash right after keeps it)."""
        rec = {"video_id": video_id, "path": None if path is None else str(path), "reason": str(reason),
               "part": self.part}
        with open(self.root / f"failures-{self.part}.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.stats["failures_recorded"] += 1

    def flush(self) -> None:
        """Write the buffered videos as one shard (atomic) and update this part's index."""
        if not self._buf:
            return
        tensors, entries = {}, []
        for v in self._buf:
            t, e = to_disk(v)
            tensors.update(t)
            entries.append(e)
        name = f"{self.part}-{self._next:05d}.safetensors"
        meta = {"format": FORMAT, "part": self.part, "videos": json.dumps(entries),
                "dims": json.dumps({k: self.meta.get(k) for k in STORE_DIMS})}
        path = self.root / "shards" / name
        atomic_write_bytes(path, st_save(tensors, metadata=meta))
        st = path.stat()
        self._own[name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "videos": [e["id"] for e in entries]}
        self._done.update(e["id"] for e in entries)
        self._next += 1
        self._buf, self._buf_ids, self._buf_bytes = [], set(), 0
        self.stats["shards_written"] += 1
        self._write_index()

    def _write_index(self) -> None:
        atomic_write_json(self.root / "index" / f"{self.part}.json",
                          {"format": FORMAT, "part": self.part, "shards": self._own})

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()  # videos already added were validated: keep them even if the caller failed

    def __del__(self):
        if not getattr(self, "_closed", True):
            log.warning("StoreWriter(%s, %s) was not closed; %d buffered videos lost", self.root, self.part,
                        len(self._buf))


class StaleIndexError(StoreError, KeyError):
    """A video the part index (a cache) lists is not in its shard: named, and still a KeyError for lookups."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class FeatureStore:
    """Read side: random access by video id and streaming by shard, safe in many processes.

    on_corrupt="raise" (default) makes opening a store with a truncated/corrupt shard raise
    ShardCorruptError (file + video); "skip" leaves such shards out and lists them in `problems`.
    """

    def __init__(self, root: str | Path, on_corrupt: str = "raise", max_open_shards: int = 32):
        self.root = Path(root)
        if not (self.root / "shards").is_dir():
            raise StoreError(f"{self.root} is not a feature store (no shards/ folder)")
        if on_corrupt not in ("raise", "skip"):
            raise ValueError("on_corrupt must be 'raise' or 'skip'")
        self.meta: dict = read_store_meta(self.root)
        shards, self.problems = scan_shards(self.root, on_corrupt)
        self.stale_shards = sorted(n for n, e in shards.items() if e.get("stale_index"))
        self._shards = sorted(shards)
        self._where: dict[str, int] = {}
        self.duplicates: list[tuple[str, str]] = []  # (video, shard ignored): first shard in name order wins
        for i, name in enumerate(self._shards):
            for vid in shards[name]["videos"]:
                if vid in self._where:
                    self.duplicates.append((vid, name))
                else:
                    self._where[vid] = i
        self._shard_videos = {i: shards[n]["videos"] for i, n in enumerate(self._shards)}
        self._max_open = max_open_shards
        self._handles: OrderedDict[int, tuple[Any, dict]] = OrderedDict()
        self._pid = os.getpid()

    # -- lookup ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, vid: object) -> bool:
        return vid in self._where

    def video_ids(self) -> list[str]:
        """All ids, in shard order then insertion order."""
        return [v for i in range(len(self._shards)) for v in self._shard_videos[i] if self._where.get(v) == i]

    def shards(self) -> list[str]:
        return list(self._shards)

    def shard_of(self, vid: str) -> Path:
        return self.root / "shards" / self._shards[self._locate(vid)]

    def failures(self) -> list[dict]:
        """Failure records (all parts) of videos that are still not in the store, latest record per id."""
        latest: dict[str, dict] = {}
        for p in sorted(self.root.glob("failures-*.jsonl")):
            for rec in read_failures(p):
                latest[rec.get("video_id")] = rec
        return [r for v, r in latest.items() if v not in self._where]

    def _locate(self, vid: str) -> int:
        try:
            return self._where[vid]
        except KeyError:
            raise KeyError(f"video {vid!r} is not in the feature store {self.root}") from None

    def _handle(self, i: int) -> tuple[Any, dict]:
        if self._pid != os.getpid():  # forked into a DataLoader worker: never share mmap handles
            self._handles, self._pid = OrderedDict(), os.getpid()
        if i in self._handles:
            self._handles.move_to_end(i)
            return self._handles[i]
        path = self.root / "shards" / self._shards[i]
        try:
            h = safe_open(str(path), framework="numpy")
            entries = {e["id"]: e for e in json.loads(h.metadata()["videos"])}
        except Exception as e:  # safetensors raises its own error type for a damaged file
            raise ShardCorruptError(path, self._shard_videos[i][0] if self._shard_videos[i] else None,
                                    f"cannot open ({e})") from None
        if set(entries) != set(self._shard_videos[i]):
            self._trust_header(i, list(entries))
        self._handles[i] = (h, entries)
        while len(self._handles) > self._max_open:
            self._handles.popitem(last=False)
        return h, entries

    def _trust_header(self, i: int, videos: list[str]) -> None:
        """The part index (a cache) listed other videos for shard `i` than its header: use the header's list."""
        log.warning("store %s: the index lists %d video(s) for %s but its header holds %d; the index is stale "
                    "(rebuild it with actbert.data.store.reindex), using the header", self.root,
                    len(self._shard_videos[i]), self._shards[i], len(videos))
        for v in self._shard_videos[i]:
            if self._where.get(v) == i and v not in videos:
                del self._where[v]
        for v in videos:
            self._where.setdefault(v, i)
        self._shard_videos[i] = videos

    def read(self, vid: str, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Some fields of one video as a dict (disk dtypes; float16 stays float16), plus its metadata entry."""
        i = self._locate(vid)
        h, entries = self._handle(i)
        if vid not in entries:
            raise StaleIndexError(f"video {vid!r} is listed by the index of store {self.root} but shard "
                                  f"{self._shards[i]} does not hold it: the index is stale; rebuild it with "
                                  "actbert.data.store.reindex")
        out: dict[str, Any] = {"_entry": entries[vid]}
        for f in fields or ARRAY_FIELDS:
            if f not in ARRAY_FIELDS:
                raise KeyError(f"unknown feature field {f!r}; fields: {list(ARRAY_FIELDS)}")
            try:
                out[f] = h.get_tensor(f"{vid}/{f}")
            except Exception as e:
                raise ShardCorruptError(self.root / "shards" / self._shards[i], vid, f"field {f!r}: {e}") from None
        return out

    def read_rows(self, vid: str, field: str, lo: int, hi: int) -> np.ndarray:
        """Rows lo:hi (first axis) of one field, disk dtype, reading only those bytes."""
        i = self._locate(vid)
        h, _ = self._handle(i)
        try:
            sl = h.get_slice(f"{vid}/{field}")
            if hi <= lo:  # safetensors refuses an empty slice of an empty axis
                return np.zeros((0, *sl.get_shape()[1:]), dtype=ARRAY_FIELDS[field][1])
            return sl[lo:hi]
        except Exception as e:
            raise ShardCorruptError(self.root / "shards" / self._shards[i], vid, f"field {field!r}: {e}") from None

    def __getitem__(self, vid: str) -> VideoFeatures:
        arrays = self.read(vid)
        return from_disk(arrays.pop("_entry"), arrays)

    def get(self, vid: str, default: Any = None) -> VideoFeatures | Any:
        return self[vid] if vid in self._where else default

    # -- streaming ------------------------------------------------------------------------------------
    def shard_assignment(self, rank: int = 0, world_size: int = 1, worker: int = 0, num_workers: int = 1,
                         seed: int | None = None, epoch: int = 0) -> list[str]:
        """Shards read by one (rank, worker): round-robin over rank*num_workers+worker, no overlap.

        With `seed`, the shard order is permuted by (seed, epoch), identically on every rank, so the
        split stays disjoint. Fewer shards than ranks*workers leaves some readers with nothing.
        """
        if not (0 <= rank < world_size and 0 <= worker < num_workers):
            raise ValueError(f"bad split rank={rank}/{world_size} worker={worker}/{num_workers}")
        order = list(range(len(self._shards)))
        if seed is not None:
            order = list(np.random.default_rng([seed, epoch]).permutation(order))
        g, n = rank * num_workers + worker, world_size * num_workers
        return [self._shards[i] for i in order[g::n]]

    def iter_videos(self, rank: int = 0, world_size: int = 1, worker: int | None = None,
                    num_workers: int | None = None, seed: int | None = None, epoch: int = 0,
                    fields: tuple[str, ...] | None = None, only: Container[str] | None = None
                    ) -> Iterator[VideoFeatures]:
        """Stream this reader's share of the store, shard by shard (see `shard_assignment`).

        Inside a torch DataLoader worker, `worker`/`num_workers` default to the worker's own.
        With `seed`, videos within a shard are shuffled too. With `fields`, only those are read and
        the others are empty arrays (cheap scans of times). With `only`, other ids are not read at all.
        """
        if worker is None or num_workers is None:
            info = _worker_info()
            worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        idx = {n: i for i, n in enumerate(self._shards)}
        for name in self.shard_assignment(rank, world_size, worker, num_workers, seed, epoch):
            i = idx[name]
            vids = [v for v in self._shard_videos[i] if self._where.get(v) == i and (only is None or v in only)]
            if seed is not None:
                vids = [vids[j] for j in np.random.default_rng([seed, epoch, i]).permutation(len(vids))]
            for vid in vids:
                if fields is None:
                    yield self[vid]
                else:
                    arrays = self.read(vid, fields)
                    entry = arrays.pop("_entry")
                    full = {f: arrays.get(f, np.zeros((0,) * ARRAY_FIELDS[f][0], np.float32)) for f in ARRAY_FIELDS}
                    yield from_disk(entry, full)

    # -- integrity ------------------------------------------------------------------------------------
    def verify(self, raise_on_error: bool = False) -> dict:
        """Full read of every video: checks the CRC32 recorded at write time and that values are finite.

        Returns {"videos", "bytes", "errors": [{file, video, error}], "problems", "duplicates"}.
        """
        errors, nbytes = [], 0
        for vid in self.video_ids():
            i = self._where[vid]
            path = str(self.root / "shards" / self._shards[i])
            try:
                arrays = self.read(vid)
            except ShardCorruptError as e:
                errors.append({"file": path, "video": vid, "error": e.reason})
                continue
            entry = arrays.pop("_entry")
            nbytes += sum(a.nbytes for a in arrays.values())
            if crc_of(arrays) != entry.get("crc32"):
                errors.append({"file": path, "video": vid, "error": "CRC32 mismatch: bytes changed since written"})
            elif not all(np.isfinite(a).all() for k, a in arrays.items() if a.dtype != np.bool_):
                errors.append({"file": path, "video": vid, "error": "non-finite values"})
        report = {"videos": len(self), "bytes": nbytes, "errors": errors, "problems": list(self.problems),
                  "duplicates": len(self.duplicates)}
        if raise_on_error and (errors or self.problems):
            first = (errors or self.problems)[0]
            raise ShardCorruptError(first["file"], first["video"], first["error"])
        return report

    def __getstate__(self) -> dict:  # open safetensors handles cannot be pickled (spawned workers)
        state = dict(self.__dict__)
        state["_handles"] = OrderedDict()
        return state

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.root)!r}, videos={len(self)}, shards={len(self._shards)})"


def _worker_info():
    """The torch DataLoader worker we run in, if any; never imports torch (2-3 s) just to find out."""
    if "torch" not in sys.modules:  # a DataLoader worker has torch imported already
        return None
    from torch.utils.data import get_worker_info

    return get_worker_info()
