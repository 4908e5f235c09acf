"""What `actbert serve` may show of a video: its file (only one the index lists), a thumbnail, its transcript.

Files are looked up by video id in the index's own list, never built from a URL, so `../`, absolute
paths and URL-encoded tricks cannot name anything else. A listed file is served only if it still
exists, has a video extension, and does not resolve (through symlinks) outside the folder the index
lists it in or the folder that was indexed.
"""
from __future__ import annotations

import io
import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from actbert.api.index import ClipIndex
from actbert.api.pipeline import _VIDEO_EXTS
from actbert.speech.subtitles import SubtitleError, find_sidecar, read_sidecar

__all__ = ["MediaNotFound", "VideoEntry", "VideoCatalog", "thumbnail_jpeg", "load_transcripts", "TranscriptFinder"]
log = logging.getLogger(__name__)
TRANSCRIPT_FILES = ("narration.json", "raw_caption.json")  # HowTo100M format (the demo world writes the first)


class MediaNotFound(LookupError):
    """A video, file or transcript that the server will not (or cannot) serve; the message says why."""


@dataclass(frozen=True)
class VideoEntry:
    video: str
    path: Path | None  # the file recorded at extraction (absolute), None when the index records none
    duration: float | None

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else self.video


class VideoCatalog:
    """Video id -> recorded file, read lazily from the index's feature store (thread-safe, cached)."""

    def __init__(self, index: ClipIndex):
        self.index = index
        self.ids = frozenset(index.videos)
        self._entries: dict[str, VideoEntry] = {}
        self._lock = threading.Lock()
        self._warned = False
        source = Path(index.info.get("source", ""))
        self._source_root = source.resolve() if source.is_absolute() and source.is_dir() else None

    def entry(self, vid: str) -> VideoEntry:
        if vid not in self.ids:
            raise MediaNotFound(f"no video {vid!r} in index {self.index.path}")
        with self._lock:  # the store's open-shard cache is not thread-safe
            if vid not in self._entries:
                self._entries[vid] = self._read_entry(vid)
            return self._entries[vid]

    def _read_entry(self, vid: str) -> VideoEntry:
        try:
            rec = self.index.store().read(vid, ("frame_times",))["_entry"]
        except (OSError, KeyError, RuntimeError) as exc:  # store gone / video not in it / corrupt shard
            if not self._warned:  # once: an index without its store would say it for every video
                log.warning("video %s: no store entry, so no file to show (%s)", vid, exc)
                self._warned = True
            return VideoEntry(vid, None, None)
        raw = (rec.get("extra") or {}).get("path")
        path = None
        if raw:
            path = Path(raw)
            if not path.is_absolute():  # recorded relative to where extraction ran; the indexed folder is the guess
                base = self._source_root or Path.cwd()
                path = base / path if (base / path).exists() else Path.cwd() / path
            path = Path(os.path.abspath(path))
        dur = rec.get("duration")
        return VideoEntry(vid, path, float(dur) if dur is not None else None)

    def file_for(self, vid: str) -> Path:
        """The file to serve for `vid`, or MediaNotFound naming the reason."""
        e = self.entry(vid)
        if e.path is None:
            raise MediaNotFound(f"index {self.index.path} records no video file for {vid!r}")
        if e.path.suffix.lower() not in _VIDEO_EXTS:
            raise MediaNotFound(f"{e.path.name!r} of video {vid!r} is not a video file")
        if not e.path.is_file():
            raise MediaNotFound(f"the file of video {vid!r} ({e.path}) no longer exists (moved or deleted since "
                                "indexing?)")
        real = e.path.resolve()
        roots = [e.path.parent.resolve()] + ([self._source_root] if self._source_root else [])
        if not any(real.is_relative_to(r) for r in roots):
            raise MediaNotFound(f"the file of video {vid!r} links out of its folder ({e.path} -> {real}); not served")
        return real


class LRU:
    """A small thread-safe least-recently-used cache (functools.lru_cache cannot skip caching failures)."""

    def __init__(self, size: int):
        self.size, self._d, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        return None

    def put(self, key, value) -> None:
        with self._lock:
            self._d[key] = value
            while len(self._d) > self.size:
                self._d.popitem(last=False)


def thumbnail_jpeg(path: Path, t: float, width: int = 240) -> bytes:
    """A JPEG of the first frame at or after `t` seconds of `path` (the last frame when `t` is past the end)."""
    import av

    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            stream.thread_type = "AUTO"
            if t > 0 and stream.time_base:
                c.seek(int(t / stream.time_base), stream=stream, backward=True)
            img = None
            for frame in c.decode(stream):
                img = frame
                if frame.time is None or frame.time >= t - 1e-3:
                    break
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise MediaNotFound(f"cannot decode a frame of {path.name!r} at {t:.1f} s: {exc}") from exc
    if img is None:
        raise MediaNotFound(f"{path.name!r} has no frame at {t:.1f} s")
    pil = img.to_image()
    pil.thumbnail((width, width * 4))
    buf = io.BytesIO()
    pil.convert("RGB").save(buf, "JPEG", quality=80)
    return buf.getvalue()


def load_transcripts(path: Path, videos: frozenset[str]) -> dict[str, list[dict]]:
    """The lines of `videos` in a HowTo100M-format caption json (`{vid: {start, end, text}}`)."""
    from actbert.data.formats.howto100m import read_captions

    caps = read_captions(path)
    return {v: [{"start": c.start, "end": c.end, "text": c.text} for c in lines]
            for v, lines in caps.items() if v in videos}


class TranscriptFinder:
    """A video's transcript: from `--transcripts FILE`, a subtitle file beside the video (`NAME.vtt`, `.srt`, ...),
    or a HowTo100M caption json (`narration.json`, `raw_caption.json`) in the video's folder or the one above."""

    def __init__(self, catalog: VideoCatalog, transcripts: Path | None = None):
        self.catalog = catalog
        self.given = load_transcripts(transcripts, catalog.ids) if transcripts else None
        self._json_cache: dict[Path, dict] = {}
        self._lock = threading.Lock()

    def find(self, vid: str) -> tuple[list[dict] | None, str | None]:
        """`(lines, where they came from)`, or `(None, None)` when the video has no transcript."""
        if self.given is not None:
            return (self.given[vid], "--transcripts") if vid in self.given else (None, None)
        path = self.catalog.entry(vid).path
        if path is None:
            return None, None
        side = find_sidecar(path)
        if side is not None:
            try:
                return [{"start": ln.start, "end": ln.end, "text": ln.text} for ln in read_sidecar(side)], side.name
            except SubtitleError as exc:
                log.warning("transcript of %s not read: %s", vid, exc)
        for folder in (path.parent, path.parent.parent):
            for name in TRANSCRIPT_FILES:
                f = folder / name
                if f.is_file():
                    lines = self._json(f).get(vid)
                    if lines is not None:
                        return lines, name
        return None, None

    def _json(self, f: Path) -> dict:
        with self._lock:
            if f not in self._json_cache:
                try:
                    self._json_cache[f] = load_transcripts(f, self.catalog.ids)
                except (ValueError, OSError, json.JSONDecodeError) as exc:  # FormatError is a ValueError
                    log.warning("transcripts %s not read: %s", f, exc)
                    self._json_cache[f] = {}
            return self._json_cache[f]
