"""On-disk format of the feature store: the per-video record, its validation, shard headers, atomic writes.

`actbert.data.store` builds the writer and the reader on top of these pieces; the format itself is
described (with the reasons for it) in `docs/data.md`.

A shard is one safetensors file holding many videos. Tensor names are `<video_id>/<field>`; the
per-video scalars (image size, duration, a CRC32 of the video's bytes) and the insertion order live in
the safetensors metadata under the key `videos` (a JSON list), so a shard is self-describing and the
index can always be rebuilt from shard headers alone.
"""
from __future__ import annotations

import json
import logging
import os
import re
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actbert.errors import ActbertError, InputError, naming_file, read_json
from actbert.utils import new_file_mode

FORMAT = "actbert-store/1"
log = logging.getLogger("actbert.data.store")
PART_RE = re.compile(r"^[A-Za-z0-9_.]+$")
SHARD_RE = re.compile(r"^([A-Za-z0-9_.]+)-(\d{5,})\.safetensors$")
FP16_MAX = 65504.0

# field -> (number of dims, dtype on disk). Features and scores are float16 on disk (half the bytes,
# enough precision for activations); times and pixel boxes stay float32 because float16 cannot hold
# a time of 3,000 s to better than 2 s, nor a pixel coordinate of 1,920 exactly.
ARRAY_FIELDS: dict[str, tuple[int, Any]] = {
    "action": (2, np.float16),
    "action_times": (2, np.float32),
    "region": (3, np.float16),
    "region_boxes": (3, np.float32),
    "region_cls": (3, np.float16),
    "region_score": (2, np.float16),
    "region_valid": (2, np.bool_),
    "frame_times": (1, np.float32),
}
FLOAT16_FIELDS = tuple(k for k, (_, dt) in ARRAY_FIELDS.items() if dt is np.float16)
# dims that must agree across all videos of a store (store.json records them)
STORE_DIMS = ("action_feat_dim", "region_feat_dim", "num_region_classes")


class StoreError(ActbertError, RuntimeError):
    """A problem with the store as a whole (mismatched dimensions, a locked part, a bad root)."""


class ShardCorruptError(StoreError):
    """A shard file that cannot be read as written: names the file and the video(s) it holds."""

    def __init__(self, path: str | Path, video: str | None = None, reason: str | None = None):
        if reason is None:  # re-raised from a DataLoader worker, which passes the message only
            self.path, self.video, self.reason = "", None, str(path)
            super().__init__(str(path))
            return
        self.path, self.video, self.reason = str(path), video, reason
        who = f"video {video!r}" if video else "its videos (unknown: header unreadable)"
        super().__init__(f"corrupt shard {self.path} ({who}): {reason}")


@dataclass
class VideoFeatures:
    """Everything extracted from one video; numpy arrays, float32 in memory (see docs/architecture.md)."""

    video_id: str
    action: np.ndarray          # [T, D_a]
    action_times: np.ndarray    # [T, 2] clip start, end (s)
    region: np.ndarray          # [F, K, D_r]
    region_boxes: np.ndarray    # [F, K, 4] x1, y1, x2, y2 in pixels
    region_cls: np.ndarray      # [F, K, C] detector class distribution
    region_score: np.ndarray    # [F, K]
    region_valid: np.ndarray    # [F, K] bool
    frame_times: np.ndarray     # [F]
    image_size: tuple[int, int]  # (H, W)
    duration: float
    extra: dict = field(default_factory=dict)  # free-form JSON-able per-video metadata (source path, fps...)

    @property
    def num_clips(self) -> int:
        return int(self.action.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.region.shape[0])

    def dims(self) -> dict[str, int]:
        return {"action_feat_dim": int(self.action.shape[1]), "region_feat_dim": int(self.region.shape[2]),
                "num_region_classes": int(self.region_cls.shape[2])}

    def nbytes(self) -> int:
        return int(sum(getattr(self, k).nbytes for k in ARRAY_FIELDS))


def validate(v: VideoFeatures) -> VideoFeatures:
    """Coerce `v`'s arrays to their in-memory dtypes and check shapes and values.

    Raises ValueError naming the video and the field; returns a new, normalised VideoFeatures.
    """
    vid = v.video_id
    if not isinstance(vid, str) or not vid or any(c in vid for c in "\n\r\0") or vid != vid.strip():
        raise ValueError(f"invalid video id {vid!r}: must be a non-empty single-line string without edge spaces")

    def bad(name: str, why: str) -> ValueError:
        return ValueError(f"video {vid!r}, field {name!r}: {why}")

    arrays: dict[str, np.ndarray] = {}
    for name, (ndim, dt) in ARRAY_FIELDS.items():
        try:
            a = np.asarray(getattr(v, name), dtype=np.bool_ if dt is np.bool_ else np.float32)
        except (TypeError, ValueError) as e:
            raise bad(name, f"not a numeric array ({e})") from None
        if a.ndim != ndim:
            raise bad(name, f"expected {ndim} dims, got shape {a.shape}")
        if dt is not np.bool_:
            if not np.isfinite(a).all():
                n = int((~np.isfinite(a)).sum())
                raise bad(name, f"{n} non-finite value(s) (NaN or inf)")
            if dt is np.float16 and a.size and float(np.abs(a).max()) > FP16_MAX:
                raise bad(name, f"value {float(np.abs(a).max()):.4g} overflows float16 storage (max {FP16_MAX})")
        arrays[name] = np.ascontiguousarray(a)
    T, F, K = arrays["action"].shape[0], arrays["region"].shape[0], arrays["region"].shape[1]
    expect = {"action_times": (T, 2), "region_boxes": (F, K, 4), "region_score": (F, K),
              "region_valid": (F, K), "frame_times": (F,)}
    for name, shape in expect.items():
        if arrays[name].shape != shape:
            raise bad(name, f"shape {arrays[name].shape} does not match {shape} implied by action/region")
    if arrays["region_cls"].shape[:2] != (F, K):
        raise bad("region_cls", f"shape {arrays['region_cls'].shape} does not start with {(F, K)}")
    if (arrays["action_times"][:, 1] < arrays["action_times"][:, 0]).any():
        raise bad("action_times", "a clip ends before it starts")
    if (np.diff(arrays["frame_times"]) < 0).any():
        raise bad("frame_times", "key frame times are not increasing")
    valid = arrays["region_valid"]
    if valid.any():
        sums = arrays["region_cls"][valid].sum(-1)
        if np.abs(sums - 1.0).max() > 0.02:
            raise bad("region_cls", f"a valid box's class distribution sums to {float(sums[np.argmax(np.abs(sums - 1))]):.4f}, not 1")
    try:
        h, w = (int(x) for x in v.image_size)
    except (TypeError, ValueError):
        raise bad("image_size", f"expected (H, W), got {v.image_size!r}") from None
    if h <= 0 or w <= 0:
        raise bad("image_size", f"must be positive, got {(h, w)}")
    duration = float(v.duration)
    if not np.isfinite(duration) or duration < 0:
        raise bad("duration", f"must be a finite non-negative number, got {v.duration!r}")
    try:
        json.dumps(v.extra)
    except TypeError as e:
        raise bad("extra", f"not JSON-serialisable ({e})") from None
    return VideoFeatures(video_id=vid, image_size=(h, w), duration=duration, extra=dict(v.extra), **arrays)


def to_disk(v: VideoFeatures) -> tuple[dict[str, np.ndarray], dict]:
    """Tensors (disk dtypes, named `<vid>/<field>`) and the per-video metadata entry, with a CRC32."""
    tensors, crc = {}, 0
    for name, (_, dt) in ARRAY_FIELDS.items():
        a = np.ascontiguousarray(getattr(v, name).astype(dt, copy=False))
        tensors[f"{v.video_id}/{name}"] = a
        crc = zlib.crc32(a.tobytes(), crc)
    entry = {"id": v.video_id, "image_size": list(v.image_size), "duration": v.duration, "crc32": crc,
             "shapes": {k: list(getattr(v, k).shape) for k in ("action", "region", "region_cls")}}
    if v.extra:
        entry["extra"] = v.extra
    return tensors, entry


def from_disk(entry: dict, arrays: dict[str, np.ndarray]) -> VideoFeatures:
    """Inverse of `to_disk`: float16 fields come back as float32."""
    conv = {k: (a.astype(np.float32) if a.dtype == np.float16 else a) for k, a in arrays.items()}
    return VideoFeatures(video_id=entry["id"], image_size=tuple(entry["image_size"]),
                         duration=float(entry["duration"]), extra=entry.get("extra", {}), **conv)


def crc_of(arrays: dict[str, np.ndarray]) -> int:
    """CRC32 of a video's disk arrays, in field order (matches `to_disk`)."""
    crc = 0
    for name in ARRAY_FIELDS:
        crc = zlib.crc32(np.ascontiguousarray(arrays[name]).tobytes(), crc)
    return crc


def read_header(path: str | Path, known_videos: list[str] | None = None) -> tuple[dict, list[dict]]:
    """Parse a shard's safetensors header without reading its data and check the file is complete.

    Returns (tensor table, per-video metadata list). A file that is shorter than its header says, or
    whose header is not valid JSON, raises ShardCorruptError naming the file and (when the header or
    `known_videos` tells) the first video whose bytes are missing.
    """
    path = Path(path)
    first = (known_videos or [None])[0]
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise ShardCorruptError(path, first, f"file is {size} bytes, shorter than a safetensors header")
            (n,) = struct.unpack("<Q", raw)
            if n > size - 8 or n > 256 * 2**20:
                raise ShardCorruptError(path, first, f"header length {n} exceeds the file ({size} bytes): truncated")
            header = json.loads(f.read(n))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ShardCorruptError(path, first, f"unreadable header ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(header, dict):
        raise ShardCorruptError(path, first, f"header is a JSON {type(header).__name__}, not an object")
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict):
        raise ShardCorruptError(path, first, "header metadata is not an object")
    if meta.get("format") != FORMAT:
        raise ShardCorruptError(path, first, f"not an actbert store shard (format {meta.get('format')!r})")
    try:
        videos = json.loads(meta["videos"])
        if not isinstance(videos, list) or not all(isinstance(v, dict) and isinstance(v.get("id"), str)
                                                   for v in videos):
            raise ValueError("expected a list of {id: ...} records")
    except (KeyError, TypeError, ValueError, RecursionError) as e:
        raise ShardCorruptError(path, first, f"bad per-video metadata ({type(e).__name__}: {str(e)[:200]})") from None
    data_len = size - 8 - n
    for v in videos:  # name the first video whose bytes lie beyond the end of the file
        for name in ARRAY_FIELDS:
            t = header.get(f"{v['id']}/{name}")
            if t is None:
                raise ShardCorruptError(path, v["id"], f"tensor {name!r} missing from the header")
            offsets = t.get("data_offsets") if isinstance(t, dict) else None
            if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
                raise ShardCorruptError(path, v["id"], f"tensor {name!r} has no valid data_offsets in the header")
            if t["data_offsets"][1] > data_len:
                raise ShardCorruptError(path, v["id"], f"file truncated: {size} bytes, tensor {name!r} "
                                        f"ends at {8 + n + t['data_offsets'][1]}")
    return header, videos


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the complete new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, new_file_mode())  # mkstemp's 0o600 would make the file private
    try:
        with naming_file(path), os.fdopen(fd, "wb") as f:  # a full disk names the file
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


# -- index and store-level files (shared by the writer and the reader) -----------------------------
def load_json(path: Path, default: Any) -> Any:
    """A store file's JSON (`default` when absent); unreadable JSON raises StoreError naming the file."""
    try:
        return read_json(path)
    except FileNotFoundError:
        return default
    except InputError as e:
        raise StoreError(f"store file {e}") from None


def _index_entry_ok(ent: Any) -> bool:
    """A part index entry we can trust: {size: int, mtime_ns: int, videos: [str, ...]} (else: re-read the header)."""
    return (isinstance(ent, dict) and all(isinstance(ent.get(k), int) and not isinstance(ent.get(k), bool)
                                          for k in ("size", "mtime_ns"))
            and isinstance(ent.get("videos"), list) and all(isinstance(v, str) for v in ent["videos"]))


def read_store_meta(root: Path) -> dict:
    """store.json ({} when absent); a truncated or non-object file raises StoreError naming it."""
    meta = load_json(root / "store.json", {})
    if not isinstance(meta, dict):
        raise StoreError(f"store file {root / 'store.json'}: expected a JSON object, got {type(meta).__name__}")
    return meta


def merge_meta(root: Path, new: dict | None) -> dict:
    """Merge `new` into store.json; a different value for an existing key raises naming the key."""
    meta = read_store_meta(root)
    changed = False
    for k, v in (new or {}).items():
        if k in meta and meta[k] != v:
            raise StoreError(f"store {root}: meta {k!r} is {meta[k]!r} in store.json but {v!r} was given")
        if k not in meta:
            meta[k], changed = v, True
    if changed or not (root / "store.json").exists():
        meta.setdefault("format", FORMAT)
        atomic_write_json(root / "store.json", meta)
    return meta


def scan_shards(root: Path, on_corrupt: str = "raise") -> tuple[dict[str, dict], list[dict]]:
    """All readable shards of a store: name -> {size, mtime_ns, videos}, plus a list of problems.

    Index entries whose size and mtime match the file are trusted (an open costs a directory listing
    and one stat per shard); other shards have their header read and checked (truncation names the
    file and the video). With on_corrupt="skip" a corrupt shard is left out and reported instead.
    """
    indexed: dict[str, dict] = {}
    for ip in sorted((root / "index").glob("*.json")):
        try:  # the index is a cache: anything wrong with it only costs a re-read of the shard headers
            data = load_json(ip, {})
            entries = data.get("shards") if isinstance(data, dict) else None
            if not isinstance(entries, dict):
                raise StoreError(f"store index {ip} has no \"shards\" table")
        except StoreError as e:
            log.warning("%s; rebuilding from shard headers", e)
            continue
        bad = sorted(name for name, ent in entries.items() if not _index_entry_ok(ent))
        if bad:
            log.warning("store index %s: malformed entries for %s; re-reading their shard headers", ip, bad[:5])
        indexed.update({name: ent for name, ent in entries.items() if name not in bad})
    shards, problems = {}, []
    for p in sorted((root / "shards").glob("*.safetensors")):
        if not SHARD_RE.match(p.name):
            continue
        st = p.stat()
        ent = indexed.get(p.name)
        if ent and ent["size"] == st.st_size and ent["mtime_ns"] == st.st_mtime_ns:
            shards[p.name] = ent
            continue
        try:
            _, videos = read_header(p, ent["videos"] if ent else None)
        except ShardCorruptError as e:
            if on_corrupt == "raise":
                raise
            problems.append({"file": e.path, "video": e.video, "error": e.reason})
            continue
        shards[p.name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "videos": [v["id"] for v in videos],
                          "stale_index": True}
    for name, ent in indexed.items():
        if name not in shards and not (root / "shards" / name).exists():
            problem = {"file": str(root / "shards" / name), "video": (ent.get("videos") or [None])[0],
                       "error": "listed in the index but missing on disk"}
            if on_corrupt == "raise":
                raise ShardCorruptError(problem["file"], problem["video"], problem["error"])
            problems.append(problem)
    return shards, problems


def reindex(root: str | Path) -> int:
    """Rewrite every part's index from the shard files (after copying or repairing a store by hand)."""
    root = Path(root)
    shards, _ = scan_shards(root, on_corrupt="raise")
    by_part: dict[str, dict] = {}
    for name, ent in shards.items():
        ent = {k: v for k, v in ent.items() if k != "stale_index"}
        by_part.setdefault(SHARD_RE.match(name).group(1), {})[name] = ent
    (root / "index").mkdir(exist_ok=True)
    for part, ents in by_part.items():
        atomic_write_json(root / "index" / f"{part}.json", {"format": FORMAT, "part": part, "shards": ents})
    return len(shards)


def read_failures(path: Path) -> list[dict]:
    out = []
    if not path.exists():
        return out
    for i, line in enumerate(path.read_text().splitlines(), 1):
        try:
            out.append(json.loads(line))
        except ValueError:  # the last line of a writer killed mid-append
            log.warning("%s line %d: unreadable failure record skipped", path, i)
    return out
