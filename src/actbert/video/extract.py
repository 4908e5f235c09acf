"""Raw videos -> feature store: action features per clip and region features per key frame.

Each video is decoded once (:func:`actbert.video.decode.stream_video`); its clips go through the action
network and its key frames through the region detector in batches, and the result is written as one
:class:`actbert.data.store.VideoFeatures` by a :class:`actbert.data.store.StoreWriter`.

Large corpora: ``num_shards`` / ``shard_index`` split the video list by a stable hash of the video id, so
any number of machines (a SLURM array, ``torchrun`` ranks) each take their share with no coordination;
each shard writes its own store part. Re-running skips videos already in the store, and the writer
repairs a shard a killed run left half-written. A video that cannot be decoded is recorded in the store's
failure log with its reason, skipped, and listed in the final summary; the run goes on.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm.auto import tqdm

from actbert.data.store import StoreWriter, VideoFeatures
from actbert.video.decode import VIDEO_EXTENSIONS, Clip, DecodeSpec, VideoDecodeError, probe, stream_video

log = logging.getLogger(__name__)

__all__ = ["ExtractSummary", "extract_features", "list_videos", "video_id_of", "video_ids", "shard_of", "split_by_shard",
           "part_name", "default_spec"]


def video_id_of(path: str | Path) -> str:
    """A video's id is its file name without the extension (HowTo100M / YouCook2 convention)."""
    return Path(path).stem


def video_ids(paths: Iterable[str | Path]) -> dict[Path, str]:
    """Absolute path -> id of every distinct video file of `paths`. The id is the file name without its
    extension (`video_id_of`), except for same-named files in different folders: those are told apart by
    their folders below the folder they share, joined with "__" ("a/cook.mp4", "b/cook.mp4" -> "a__cook",
    "b__cook"; a path separator would make ids unusable in file names such as plots)."""
    files = list(dict.fromkeys(Path(p).expanduser().resolve() for p in paths))  # one entry per file
    by_stem: dict[str, list[Path]] = {}
    for f in files:
        by_stem.setdefault(f.stem, []).append(f)
    ids: dict[Path, str] = {}
    for stem, group in by_stem.items():
        if len(group) == 1:
            ids[group[0]] = stem
            continue
        root = Path(os.path.commonpath([str(f.parent) for f in group]))
        rel = [f.relative_to(root) for f in group]
        keep_suffix = len({r.with_suffix("") for r in rel}) < len(rel)  # cook.mp4 + cook.mkv in one folder
        for f, r in zip(group, rel):
            ids[f] = "__".join((r if keep_suffix else r.with_suffix("")).parts)
    return ids


def shard_of(video_id: str, num_shards: int) -> int:
    """Stable shard of a video id: the same on every machine and Python run (unlike ``hash()``)."""
    return int.from_bytes(hashlib.sha1(video_id.encode("utf-8")).digest()[:8], "big") % num_shards


def split_by_shard(paths: Iterable[Path], num_shards: int, shard_index: int) -> tuple[dict[str, Path], int]:
    """This shard's videos by id (`video_ids`: same-named files in different folders get distinct ids,
    a file listed twice is one video), and the number left to other shards."""
    mine: dict[str, Path] = {}
    others = 0
    for p, vid in video_ids(paths).items():
        if shard_of(vid, num_shards) != shard_index:
            others += 1
        else:
            mine[vid] = p
    return mine, others


def part_name(num_shards: int, shard_index: int) -> str:
    """Store part written by one shard; distinct per shard so writers never touch each other's files."""
    return "part000" if num_shards == 1 else f"part{shard_index:03d}of{num_shards:03d}"


def list_videos(source: str | Path) -> list[Path]:
    """Videos named by ``source``: a directory (searched recursively for common video extensions), a text
    file with one path per line (blank lines and ``#`` comments ignored; relative paths are relative to the
    list file), or a single video file."""
    source = Path(source)
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    if not source.is_file():
        raise FileNotFoundError(f"video source {source} is neither a directory nor a file")
    if source.suffix.lower() in VIDEO_EXTENSIONS:
        return [source]
    out = []
    for line in source.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line).expanduser()
            out.append(p if p.is_absolute() else source.parent / p)
    return out


def default_spec(action_net, keyframe_every_s: float = 1.0) -> DecodeSpec:
    """Clips as the action net was trained on (fps, frames, resize, crop), non-overlapping, 1 key frame/s."""
    c = action_net.config
    return DecodeSpec(fps=c.fps, clip_frames=c.clip_frames, stride_s=c.clip_frames / c.fps, resize=c.resize,
                      crop=c.crop, keyframe_every_s=keyframe_every_s)


@dataclass
class ExtractSummary:
    """What one :func:`extract_features` call did."""

    done: list[str] = field(default_factory=list)            # extracted by this run
    already_done: list[str] = field(default_factory=list)    # found in the store (resume)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (video id, path, reason)
    other_shards: int = 0                                    # videos belonging to other shards
    seconds_of_video: float = 0.0                            # decoded duration of the videos done
    wall_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # decode / action / region / write seconds
    part: str = "part000"

    @property
    def throughput(self) -> float:
        """Seconds of video extracted per wall-clock second."""
        return self.seconds_of_video / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def table(self) -> str:
        """Human-readable summary: counts, throughput, where the time went, and every failure with reason."""
        lines = [f"extraction summary (store part {self.part})",
                 f"  videos extracted      {len(self.done):>8d}",
                 f"  already in store      {len(self.already_done):>8d}",
                 f"  failed (skipped)      {len(self.failed):>8d}",
                 f"  other shards          {self.other_shards:>8d}",
                 f"  seconds of video      {self.seconds_of_video:>10.1f}",
                 f"  wall seconds          {self.wall_seconds:>10.1f}",
                 f"  video-s per wall-s    {self.throughput:>10.2f}"]
        busy = sum(self.timings.values())
        for k, v in self.timings.items():
            lines.append(f"  time in {k:<12s}  {v:>10.1f} s  ({100 * v / busy if busy else 0:4.1f} %)")
        for vid, path, reason in self.failed:
            lines.append(f"  FAILED {vid}: {path}: {reason}")
        return "\n".join(lines)


def _meta(action_net, region_extractor, spec: DecodeSpec) -> dict:
    """Settings recorded in store.json; a resumed or parallel run with different settings is refused there."""
    c = action_net.config
    meta = {"extractor": {
        "action_net": {"arch": c.arch, "feature_dim": c.feature_dim, "num_classes": c.num_classes,
                       "clip_frames": c.clip_frames, "fps": c.fps, "resize": c.resize, "crop": c.crop},
        "detector": {"backbone": getattr(region_extractor, "backbone", None),
                     "num_classes": int(region_extractor.num_classes), "feature_dim": int(region_extractor.feature_dim),
                     "top_k": int(region_extractor.top_k)},
        "decode": asdict(spec)}}
    return json.loads(json.dumps(meta))  # JSON-normalised, so it compares equal to what store.json holds


class _Timer(dict):
    def add(self, key: str, since: float) -> float:
        now = time.perf_counter()
        self[key] = self.get(key, 0.0) + now - since
        return now


def _extract_one(path: Path, vid: str, size: tuple[int, int], action_net, region_extractor, spec: DecodeSpec,
                 action_batch: int, region_batch: int, timer: _Timer, advance, bf16: bool = False) -> VideoFeatures:
    """Decode ``path`` once, run both networks in batches, and assemble its VideoFeatures."""
    clips: list[np.ndarray] = []
    frames: list[np.ndarray] = []
    clip_times, frame_times, action, regions = [], [], [], []

    def run_action():
        t = time.perf_counter()
        action.append(action_net.embed(np.stack(clips), bf16=bf16))
        clips.clear()
        timer.add("action", t)

    def run_region():
        t = time.perf_counter()
        regions.extend(region_extractor.extract(frames))
        frames.clear()
        timer.add("region", t)

    stream = stream_video(path, spec)
    t = time.perf_counter()
    while True:
        try:
            item = next(stream)
        except StopIteration as stop:
            duration = float(stop.value)
            break
        t = timer.add("decode", t)
        if isinstance(item, Clip):
            clips.append(item.frames)
            advance(item.start, item.end)
            clip_times.append((item.start, item.end))
            if len(clips) >= action_batch:
                run_action()
        else:
            # keep the key frame's own size: boxes are rescaled to the video's pixels below
            frames.append(item.image)
            frame_times.append((item.time, item.image.shape[:2]))
            if len(frames) >= region_batch:
                run_region()
        t = time.perf_counter()
    if clips:
        run_action()
    if frames:
        run_region()

    h, w = size
    k, d, c = region_extractor.top_k, region_extractor.feature_dim, region_extractor.num_classes
    f = len(regions)
    feats = np.zeros((f, k, d), np.float32)
    boxes = np.zeros((f, k, 4), np.float32)
    cls = np.zeros((f, k, c), np.float32)
    score = np.zeros((f, k), np.float32)
    valid = np.zeros((f, k), bool)
    for i, (r, (_, (ih, iw))) in enumerate(zip(regions, frame_times)):
        n = min(len(r.scores), k)  # pad frames with fewer than top_k boxes; region_valid marks the real ones
        feats[i, :n], cls[i, :n], score[i, :n], valid[i, :n] = r.features[:n], r.class_probs[:n], r.scores[:n], True
        boxes[i, :n] = np.asarray(r.boxes[:n], np.float32) * np.array([w / iw, h / ih, w / iw, h / ih], np.float32)
    return VideoFeatures(
        video_id=vid, action=np.concatenate(action) if action else np.zeros((0, action_net.feature_dim), np.float32),
        action_times=np.asarray(clip_times, np.float32).reshape(-1, 2), region=feats, region_boxes=boxes,
        region_cls=cls, region_score=score, region_valid=valid,
        frame_times=np.asarray([ft for ft, _ in frame_times], np.float32), image_size=(h, w), duration=duration,
        extra={"path": str(path)})


def extract_features(videos: Iterable[str | Path] | str | Path, store_root: str | Path, action_net,
                     region_extractor, spec: DecodeSpec | None = None, num_shards: int = 1, shard_index: int = 0,
                     resume: bool = True, progress: bool = True, action_batch: int = 16, region_batch: int = 8,
                     shard_videos: int = 64, bf16: bool = False) -> ExtractSummary:
    """Extract features of this shard's videos into ``store_root``; returns an :class:`ExtractSummary`.

    ``videos``: paths, or a directory / list file (see :func:`list_videos`). ``spec`` defaults to
    :func:`default_spec` of the action net. ``resume=False`` refuses a store that already holds videos
    (rather than silently mixing two runs). Undecodable videos are recorded (``store`` failure log and
    ``summary.failed``) and skipped; ``bf16`` runs the action net under bfloat16 autocast (see
    ``ActionNet.embed``); any other exception stops the run after the writer has saved every
    finished video, so a re-run continues where this one stopped.
    """
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index {shard_index} must be in [0, {num_shards})")
    t_start = time.perf_counter()
    paths = list_videos(videos) if isinstance(videos, (str, Path)) else [Path(v) for v in videos]
    spec = spec or default_spec(action_net)
    summary = ExtractSummary(part=part_name(num_shards, shard_index))
    timer = _Timer(decode=0.0, action=0.0, region=0.0, write=0.0)
    mine, summary.other_shards = split_by_shard(paths, num_shards, shard_index)

    with StoreWriter(store_root, part=summary.part, shard_videos=shard_videos,
                     meta=_meta(action_net, region_extractor, spec)) as writer:
        done = writer.done_ids()
        if done and not resume:
            raise FileExistsError(f"store {store_root} already holds {len(done)} videos; resume or use a new store")
        for vid, p, reason in list(summary.failed):
            writer.record_failure(vid, p, reason)
        todo: list[tuple[str, Path, tuple[int, int], float]] = []
        for vid, p in tqdm(mine.items(), desc="probing", unit="video", disable=not progress, leave=False):
            if vid in done:
                summary.already_done.append(vid)
                continue
            try:
                info = probe(p)
                todo.append((vid, p, (info.height, info.width), info.duration))
            except VideoDecodeError as exc:
                summary.failed.append((vid, exc.path, exc.reason))
                writer.record_failure(vid, exc.path, exc.reason)
                log.info("skipping %s", exc)  # reported once, by the caller, from summary.failed
        # one rate on the bar (tqdm's, in seconds of video per second); the store part is a file name, not
        # something to show: a sharded run says which shard it is
        desc = "extract" if num_shards == 1 else f"extract shard {shard_index + 1}/{num_shards}"
        bar = tqdm(total=sum(d for *_, d in todo), desc=desc, unit="video-s",
                   disable=not progress, dynamic_ncols=True,
                   bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} video-s [{elapsed}<{remaining}, {rate_fmt}{postfix}]")
        for vid, p, size, header_duration in todo:
            shown = [0.0]  # video seconds of this video already added to the bar

            def advance(_start: float, end: float) -> None:
                step = min(end, header_duration) - shown[0]
                if step > 0:
                    bar.update(step)
                    shown[0] += step

            try:
                feats = _extract_one(p, vid, size, action_net, region_extractor, spec, action_batch, region_batch,
                                     timer, advance, bf16)
                t = time.perf_counter()
                writer.add(feats)
                timer.add("write", t)
            except (VideoDecodeError, ValueError) as exc:  # bad file, or features the store rejects
                reason = exc.reason if isinstance(exc, VideoDecodeError) else str(exc)
                summary.failed.append((vid, str(p), reason))
                writer.record_failure(vid, p, reason)
                log.info("skipping %s: %s", p, reason)  # reported once, by the caller, from summary.failed
                bar.update(max(0.0, header_duration - shown[0]))
                continue
            bar.update(max(0.0, header_duration - shown[0]))
            summary.done.append(vid)
            summary.seconds_of_video += feats.duration
            bar.set_postfix(videos=len(summary.done), failed=len(summary.failed))
        bar.close()
        t = time.perf_counter()
    timer.add("write", t)  # the final flush of the last shard
    summary.timings = dict(timer)
    summary.wall_seconds = time.perf_counter() - t_start
    return summary
