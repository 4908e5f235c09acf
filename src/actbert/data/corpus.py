"""Narrated-video corpus: cleaned narration windows + the features that overlap them -> `ClipSample`s.

For each video present in both the captions and the feature store, the cleaned narration lines are
grouped into caption windows (consecutive lines, `min_window_s`..`max_window_s` long). A window's
sample holds the action tokens of the clips overlapping it (at most `max_actions`, evenly
subsampled), each labelled with the verb class of the narration line overlapping that clip most
(-100 when that line has no verb in the vocabulary or no line overlaps: never made up), and the top
boxes of the key frames inside the window. Everything skipped or empty is counted in `report()`.

`NarratedCorpus` is a map-style torch Dataset (random window order, reads only the rows it needs
from the store); `corpus.stream(...)` is an IterableDataset that reads the store shard by shard.
"""
from __future__ import annotations

import hashlib
import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch

from .asr import AsrConfig, AsrReport, Line, clean_lines
from .store import FeatureStore, ShardCorruptError, VideoFeatures
from .windows import region_location, select_window

__all__ = ["ClipSample", "CorpusConfig", "NarratedCorpus", "StreamingCorpus", "split_of"]
IGNORE = -100
log = logging.getLogger(__name__)
_TIMING = ("action_times", "frame_times", "region_valid", "region_score", "region_boxes")


@dataclass
class ClipSample:
    """One caption window with its visual features (float32 numpy), see docs/architecture.md."""

    video_id: str
    start: float
    end: float
    text: str
    action: np.ndarray         # [A, D_a]
    action_labels: np.ndarray  # [A] int64, -100 = no verb class
    region: np.ndarray         # [N, D_r]
    region_loc: np.ndarray     # [N, 5] x1/W, y1/H, x2/W, y2/H, area/(W*H)
    region_cls: np.ndarray     # [N, C]
    region_frame: np.ndarray   # [N] int64, index of the region's key frame among the window's key frames


@dataclass
class CorpusConfig:
    min_window_s: float = 4.0     # join consecutive lines until the window is at least this long...
    max_window_s: float = 12.0    # ...without exceeding this (a single longer line is kept, and counted)
    max_lines: int = 4
    max_gap_s: float = 3.0        # never join lines separated by a longer silence
    max_actions: int = 5
    max_regions: int = 36
    region_select: str = "balanced"  # "balanced": best box of every frame first; "score": global top scores
    nearest_frame_s: float = 2.0  # a window with no key frame inside takes the nearest one within this distance
    asr: AsrConfig | None = field(default_factory=AsrConfig)  # None: use the lines as given
    split: str = "all"            # "train" | "val" | "all"
    val_fraction: float = 0.05
    split_seed: int = 0
    train_ids: Sequence[str] | None = None  # explicit split lists override the hash split
    val_ids: Sequence[str] | None = None
    eager_labels: bool = True     # label every line at build time (one batched tagger pass)
    cache_videos: int = 8         # per-process cache of videos' timing arrays and clip labels
    on_bad_video: str = "skip"    # unreadable / non-finite video: "skip" (None sample, counted) or "raise"


def split_of(video_id: str, val_fraction: float, seed: int = 0) -> str:
    """'val' or 'train' from a seeded hash of the id: stable across runs, machines and corpus sizes."""
    return "val" if _split_hash(video_id, seed) < val_fraction else "train"


def _split_hash(video_id: str, seed: int) -> float:
    """A seeded hash of the id in [0, 1)."""
    return int(hashlib.sha1(f"{seed}:{video_id}".encode()).hexdigest()[:12], 16) / 16**12


def held_out_videos(video_ids: Sequence[str], val_fraction: float, seed: int = 0, min_videos: int = 2) -> set[str]:
    """The videos `split_of` holds out, topped up to `min_videos` (the next-lowest hashes) while at least
    one video stays for training; none when `val_fraction` is 0.

    Why a minimum: held-out matching pairs a clip with another *video's* caption, so a one-video held-out
    split has no negatives and its matching accuracy measures one class only (a 39-video demo corpus at
    10 % held out one video for two of five seeds).
    """
    if val_fraction <= 0:
        return set()
    ids = sorted(set(video_ids))
    held = {v for v in ids if split_of(v, val_fraction, seed) == "val"}
    room = min(min_videos, len(ids) - 1) - len(held)
    if room > 0:
        held |= set(sorted((v for v in ids if v not in held), key=lambda v: _split_hash(v, seed))[:room])
    return held


def _label_many(vocab: Any, texts: list[str]) -> list[int | None]:
    if hasattr(vocab, "label_many"):
        return list(vocab.label_many(texts))
    return [vocab.label(t) for t in texts]


class NarratedCorpus(torch.utils.data.Dataset):
    """Caption windows of the videos in `captions` ∩ `store`, for `config.split`."""

    def __init__(self, store: FeatureStore, captions: Mapping[str, Sequence[Any]], action_vocab: Any,
                 config: CorpusConfig | None = None):
        self.store, self.vocab = store, action_vocab
        self.config = cfg = config or CorpusConfig()
        if cfg.split not in ("train", "val", "all"):
            raise ValueError(f"split must be train, val or all, got {cfg.split!r}")
        self._counts: Counter = Counter()
        self.asr_report = AsrReport()
        explicit = None
        if cfg.train_ids is not None or cfg.val_ids is not None:
            explicit = {"train": set(cfg.train_ids or ()), "val": set(cfg.val_ids or ())}
        self.lines: dict[str, list[Line]] = {}
        vids, rows = [], []  # rows: (video index, first line, end line)
        for vid, caps in captions.items():
            self._counts["videos_with_captions"] += 1
            if vid not in store:
                self._counts["skipped_video_missing_from_store"] += 1
                continue
            if cfg.split != "all":
                where = (("val" if vid in explicit["val"] else "train" if vid in explicit["train"] else None)
                         if explicit else split_of(vid, cfg.val_fraction, cfg.split_seed))
                if where is None:
                    self._counts["skipped_video_in_no_split_list"] += 1
                    continue
                if where != cfg.split:
                    continue
            if cfg.asr is not None:
                lines, rep = clean_lines(caps, cfg.asr)
                self.asr_report = self.asr_report + rep
            else:
                lines = [Line(float(c.start), float(c.end), c.text) if hasattr(c, "text") else Line(*c) for c in caps]
                lines = [ln for ln in lines if ln.text and ln.text.strip()]
                self._counts["skipped_caption_no_text"] += len(caps) - len(lines)
            if not lines:
                self._counts["skipped_video_no_caption_text"] += 1
                continue
            self._counts["videos"] += 1
            self.lines[vid] = lines
            for a, b in self._windows(lines):
                rows.append((len(vids), a, b))
            vids.append(vid)
        self._counts["skipped_caption_no_text"] += self.asr_report.lines_dropped_empty
        self._counts["skipped_caption_bad_time"] += self.asr_report.lines_dropped_bad_time
        self._counts["videos_in_store_without_captions"] = sum(1 for v in store.video_ids() if v not in captions)
        self.video_ids = vids
        self._vindex = {v: i for i, v in enumerate(vids)}
        self._rows = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
        # windows of video i are rows _first[i]:_first[i + 1] (rows are built video by video)
        self._first = np.searchsorted(self._rows[:, 0], np.arange(len(vids) + 1))
        self._counts["windows"] = len(self._rows)
        self.line_labels: dict[str, list[int]] = {}
        if cfg.eager_labels and self.lines:
            flat = [ln.text for v in vids for ln in self.lines[v]]
            labels = iter(_label_many(action_vocab, flat))
            self.line_labels = {v: [IGNORE if (x := next(labels)) is None else int(x) for _ in self.lines[v]]
                                for v in vids}
        self._cache: OrderedDict[str, dict] = OrderedDict()
        self._warned: set[str] = set()

    # -- windows ----------------------------------------------------------------------------------
    def _windows(self, lines: list[Line]) -> Iterator[tuple[int, int]]:
        cfg, i, n = self.config, 0, len(lines)
        while i < n:
            j, end = i, lines[i].end
            while (end - lines[i].start < cfg.min_window_s and j + 1 < n and j + 1 - i < cfg.max_lines
                   and lines[j + 1].end - lines[i].start <= cfg.max_window_s
                   and lines[j + 1].start - end <= cfg.max_gap_s):
                j += 1
                end = max(end, lines[j].end)
            if end - lines[i].start > cfg.max_window_s:
                self._counts["windows_longer_than_max_s"] += 1
            yield i, j + 1
            i = j + 1

    def __len__(self) -> int:
        return len(self._rows)

    def window(self, index: int) -> tuple[str, float, float, str]:
        """(video_id, start, end, text) of window `index`."""
        v, a, b = self._rows[index]
        vid = self.video_ids[v]
        lines = self.lines[vid][a:b]
        return vid, lines[0].start, max(ln.end for ln in lines), " ".join(ln.text for ln in lines)

    def windows_of(self, vid: str) -> list[int]:
        """Indices of the windows of one video (KeyError if it is not in this corpus)."""
        v = self._vindex[vid]
        return list(range(self._first[v], self._first[v + 1]))

    # -- selection (timing arrays only) -----------------------------------------------------------
    def _video_info(self, vid: str, source: VideoFeatures | None = None) -> dict:
        """Timing arrays, image size and per-clip labels of a video (cached per process)."""
        if vid in self._cache:
            self._cache.move_to_end(vid)
            return self._cache[vid]
        if source is not None:
            info = {f: getattr(source, f) for f in _TIMING}
            info["image_size"] = source.image_size
        else:
            raw = self.store.read(vid, _TIMING)
            info = {f: raw[f].astype(np.float32) if raw[f].dtype == np.float16 else raw[f] for f in _TIMING}
            info["image_size"] = tuple(raw["_entry"]["image_size"])
        lines = self.lines[vid]
        labels = self.line_labels.get(vid)
        if labels is None:
            labels = [IGNORE if x is None else int(x) for x in _label_many(self.vocab, [ln.text for ln in lines])]
            self.line_labels[vid] = labels
        at = info["action_times"]
        if len(at) and lines:
            ls = np.array([[ln.start, ln.end] for ln in lines], dtype=np.float32)
            ov = np.minimum(at[:, None, 1], ls[None, :, 1]) - np.maximum(at[:, None, 0], ls[None, :, 0])
            best = ov.argmax(1)
            info["clip_labels"] = np.where(ov.max(1) > 0, np.asarray(labels, dtype=np.int64)[best], IGNORE)
        else:
            info["clip_labels"] = np.full(len(at), IGNORE, dtype=np.int64)
        self._cache[vid] = info
        while len(self._cache) > self.config.cache_videos:
            self._cache.popitem(last=False)
        return info

    def _select(self, info: dict, start: float, end: float) -> dict:
        """Clip indices, key frames and (frame, box) pairs of a window; counts what is empty."""
        cfg, c = self.config, self._counts
        sel = select_window(info["action_times"], info["frame_times"], info["region_valid"], info["region_score"],
                            start, end, cfg.max_actions, cfg.max_regions, nearest_frame_s=cfg.nearest_frame_s,
                            region_select=cfg.region_select)
        c["windows_actions_subsampled"] += int(sel.clips_subsampled)
        c["windows_regions_from_nearest_frame"] += int(sel.frame_from_nearest)
        if not len(sel.clips):
            c["windows_without_clips"] += 1
        if not len(sel.boxes):
            c["windows_without_regions"] += 1
        c["clips_selected"] += len(sel.clips)
        c["clips_without_label"] += int((info["clip_labels"][sel.clips] == IGNORE).sum())
        return {"clips": sel.clips, "frames": sel.frames, "fi": sel.frame_pos, "bi": sel.boxes}

    def _sample(self, vid: str, start: float, end: float, text: str, source: VideoFeatures | None) -> ClipSample:
        info = self._video_info(vid, source)
        sel = self._select(info, start, end)
        clips, frames, fi, bi = sel["clips"], sel["frames"], sel["fi"], sel["bi"]
        if source is not None:
            action, region, cls = source.action[clips], source.region[frames[fi], bi], source.region_cls[frames[fi], bi]
        else:
            action = self._rows_of(vid, "action", clips)
            region = self._rows_of(vid, "region", frames[fi], bi)
            cls = self._rows_of(vid, "region_cls", frames[fi], bi)
        cls = cls.astype(np.float32)
        cls /= np.maximum(cls.sum(-1, keepdims=True), 1e-12)  # float16 storage leaves sums of 1 +- 1e-3
        loc = region_location(info["region_boxes"][frames][fi, bi], info["image_size"])
        return ClipSample(vid, float(start), float(end), text, action.astype(np.float32),
                          info["clip_labels"][clips].astype(np.int64), region.astype(np.float32), loc, cls,
                          fi.astype(np.int64))

    def _rows_of(self, vid: str, fld: str, rows: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """`field[rows]` (or `field[rows, cols]`) as float32, reading only the span of rows they cover."""
        lo, hi = (int(rows.min()), int(rows.max()) + 1) if len(rows) else (0, 0)
        span = self.store.read_rows(vid, fld, lo, hi)
        out = span[rows - lo] if cols is None else span[rows - lo, cols]
        return out.astype(np.float32)

    def __getitem__(self, index: int) -> ClipSample | None:
        """The sample of window `index`; None (counted, logged) when its video cannot be used and
        `config.on_bad_video == "skip"`: the collators drop None samples."""
        vid, start, end, text = self.window(int(index))
        return self._safe_sample(vid, start, end, text, None)

    def _safe_sample(self, vid: str, start: float, end: float, text: str,
                     source: VideoFeatures | None) -> ClipSample | None:
        try:
            s = self._sample(vid, start, end, text, source)
        except ShardCorruptError as e:
            if self.config.on_bad_video == "raise":
                raise
            return self._bad(vid, "skipped_window_unreadable_video", str(e))
        for name in ("action", "region", "region_cls"):
            if not np.isfinite(getattr(s, name)).all():  # the writer refuses NaN; this catches damaged files
                return self._bad(vid, "skipped_window_nonfinite_features",
                                 f"video {vid!r} ({start:.1f}-{end:.1f} s) in {self.store.shard_of(vid)}: "
                                 f"non-finite values in {name!r}")
        return s

    def _bad(self, vid: str, reason: str, message: str) -> None:
        """Count (and log once per video) a skipped window, or raise in on_bad_video="raise" mode."""
        if self.config.on_bad_video == "raise":
            raise ValueError(message)
        self._counts[reason] += 1
        if vid not in self._warned:
            self._warned.add(vid)
            log.warning("%s (%s); its windows are skipped and counted in report()", message, reason)
        return None

    # -- streaming and reports --------------------------------------------------------------------
    def stream(self, rank: int = 0, world_size: int = 1, seed: int | None = None, epoch: int = 0) -> "StreamingCorpus":
        """An IterableDataset reading the store shard by shard (each video once), split over ranks/workers."""
        return StreamingCorpus(self, rank, world_size, seed, epoch)

    def scan(self) -> dict[str, int]:
        """Count empty visual streams over every window (reads timing arrays only); returns `report()`."""
        for k in ("windows_without_clips", "windows_without_regions", "windows_regions_from_nearest_frame",
                  "windows_actions_subsampled", "clips_selected", "clips_without_label"):
            self._counts[k] = 0
        for v, a, b in self._rows:
            vid = self.video_ids[v]
            lines = self.lines[vid][a:b]
            self._select(self._video_info(vid), lines[0].start, max(ln.end for ln in lines))
        return self.report()

    def report(self) -> dict[str, int]:
        """Reason -> count. Build-time counts are exact; window/clip counts cover the samples made in
        this process (DataLoader workers keep their own) unless `scan()` was run."""
        out = dict(sorted(self._counts.items()))
        out.update({f"asr_{k}": v for k, v in self.asr_report.as_dict().items() if k != "examples"})
        return out


class StreamingCorpus(torch.utils.data.IterableDataset):
    """Every window of every corpus video, reading each video once, in store shard order."""

    def __init__(self, corpus: NarratedCorpus, rank: int = 0, world_size: int = 1, seed: int | None = None,
                 epoch: int = 0):
        self.corpus, self.rank, self.world_size, self.seed, self.epoch = corpus, rank, world_size, seed, epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[ClipSample]:
        c = self.corpus
        for video in c.store.iter_videos(self.rank, self.world_size, seed=self.seed, epoch=self.epoch,
                                             only=c._vindex):
            if video.video_id not in c._vindex:
                continue
            idx = np.asarray(c.windows_of(video.video_id))
            if self.seed is not None:
                idx = np.random.default_rng([self.seed, self.epoch, int(idx[0]) if len(idx) else 0]).permutation(idx)
            for i in idx:
                vid, start, end, text = c.window(int(i))
                s = c._safe_sample(vid, start, end, text, video)
                if s is not None:
                    yield s
