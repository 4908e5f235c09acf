"""Videos -> HowTo100M-style caption JSON: subtitles where the video has them, else speech recognition.

Sources, tried in order for each video (``sources`` picks which): a sidecar subtitle file, a text
subtitle stream in the container, recognition of the audio track. A video none of them can serve (no
audio stream, undecodable audio, silence, a malformed subtitle file) is recorded with its reason,
counted and skipped; the run goes on.

Resumable like ``extract``: each finished video is appended, as one JSON line, to a journal beside the
output and flushed to disk, so a killed run loses at most the video it was on; a re-run skips the
videos of the journal and of an existing output, and the output JSON is written atomically at the end
(the journal is then removed). Shardable like ``extract``: ``num_shards`` / ``shard_index`` split the
videos by the same stable hash of the video id; shard ``i`` of ``K`` writes ``<out stem>.partIIIofKKK.json``
and whichever shard finishes last (all parts present) merges them into ``out``.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import av
from tqdm.auto import tqdm

from actbert.speech.audio import AudioError, audio_duration, read_audio
from actbert.speech.recognizers import Recognizer, speech_segments
from actbert.speech.result import VideoTranscript, transcript_json
from actbert.speech.subtitles import SubtitleError, find_sidecar, read_sidecar, read_stream_subtitles
from actbert.utils import atomic_write_json
from actbert.video.extract import list_videos, part_name, split_by_shard

log = logging.getLogger(__name__)

__all__ = ["SOURCES", "TranscribeSummary", "transcribe_videos", "output_paths", "merge_parts"]

SOURCES = ("sidecar", "stream", "asr")


class Skip(Exception):
    """This video yields no transcript; ``reason`` says why (recorded, counted, not retried on resume)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass
class TranscribeSummary:
    out: Path
    part: str = "part000"
    done: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (video id, path, reason)
    other_shards: int = 0
    sources: Counter = field(default_factory=Counter)
    audio_seconds: float = 0.0       # of the videos transcribed by speech recognition in this run
    asr_wall_seconds: float = 0.0    # decoding + recognition time of those videos
    wall_seconds: float = 0.0
    lines: int = 0
    words: int = 0
    merged: bool = False             # this run wrote `out` (always, unless other shards are missing)

    @property
    def realtime_factor(self) -> float:
        """Audio seconds recognised per second of recognition (decode + VAD + ASR)."""
        return self.audio_seconds / self.asr_wall_seconds if self.asr_wall_seconds > 0 else 0.0

    def table(self) -> str:
        rows = [f"transcription summary ({self.part})",
                f"  videos transcribed      {len(self.done):>8d}",
                f"  already transcribed     {len(self.already_done):>8d}",
                f"  skipped                 {len(self.skipped):>8d}",
                f"  other shards            {self.other_shards:>8d}"]
        rows += [f"  source {k:<16s} {v:>8d}" for k, v in sorted(self.sources.items())]
        rows += [f"  caption lines / words   {self.lines:>8d} / {self.words}",
                 f"  audio-s recognised      {self.audio_seconds:>10.1f}",
                 f"  audio-s per second      {self.realtime_factor:>10.2f}  (speech recognition only)",
                 f"  wall seconds            {self.wall_seconds:>10.1f}",
                 f"  captions                {self.out if self.merged else str(self.out) + ' (waiting for other shards)'}"]
        rows += [f"  SKIPPED {vid}: {path}: {reason}" for vid, path, reason in self.skipped]
        return "\n".join(rows)


def output_paths(out: str | Path, num_shards: int, shard_index: int) -> tuple[Path, Path, Path]:
    """(this shard's caption file, its journal, its report) for the final output ``out``."""
    out = Path(out)
    target = out if num_shards == 1 else out.with_name(f"{out.stem}.{part_name(num_shards, shard_index)}{out.suffix}")
    return target, target.with_name(target.name + ".journal.jsonl"), target.with_name(target.stem + ".report.json")


def _read_journal(path: Path, settings: dict) -> tuple[dict, dict]:
    """(transcripts, skips) of a journal; a truncated last line (a killed run) is ignored."""
    done, skipped = {}, {}
    if not path.is_file():
        return done, skipped
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line a crash cut short; its video is redone
            if i == 0 and "settings" in rec:
                if rec["settings"] != settings:
                    raise ValueError(f"{path}: a run with other settings ({rec['settings']}) was interrupted here; "
                                     f"finish it with the same settings or delete the journal")
                continue
            if rec.get("status") == "ok":
                done[rec["video_id"]] = rec["captions"]
            elif rec.get("status") == "skipped":
                skipped[rec["video_id"]] = (rec["path"], rec["reason"])
    return done, skipped


def _load_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: the existing caption file cannot be resumed ({exc}); move it away") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the existing caption file is not a {{video_id: captions}} object; move it away")
    return data


def _media_seconds(path: Path) -> float:
    """Length for the progress bar: the audio stream's, else the container's (0 when unreadable)."""
    try:
        return audio_duration(path)
    except AudioError:
        try:
            with av.open(str(path)) as c:
                return float(c.duration or 0) / av.time_base
        except (av.error.FFmpegError, OSError, ValueError):
            return 0.0


def transcribe_one(path: Path, video_id: str, sources: tuple[str, ...],
                   recognizer: Callable[[], Recognizer]) -> VideoTranscript:
    """The transcript of one video from the first source that has one; raises Skip with the reason."""
    if "sidecar" in sources and (sidecar := find_sidecar(path)) is not None:
        try:
            return VideoTranscript(video_id, f"sidecar:{sidecar.name}", read_sidecar(sidecar))
        except SubtitleError as exc:
            raise Skip(f"subtitle file {exc.path}: {exc.reason}") from None
    if "stream" in sources:
        try:
            lines = read_stream_subtitles(path)
        except SubtitleError as exc:
            raise Skip(exc.reason) from None
        if lines:
            return VideoTranscript(video_id, "stream", lines)
    if "asr" not in sources:
        raise Skip(f"no subtitle (sources: {', '.join(sources)})")
    try:
        audio = read_audio(path)
    except AudioError as exc:
        raise Skip(exc.reason) from None
    rec = recognizer()
    lines = rec.transcribe(audio)
    if not lines:
        voiced = speech_segments(audio)
        raise Skip("silent audio: no speech found" if not voiced else "no words recognised in the speech")
    return VideoTranscript(video_id, f"asr:{rec.name}", lines, audio.seconds)


def transcribe_videos(videos: Iterable[str | Path] | str | Path, out: str | Path,
                      recognizer: Callable[[], Recognizer], sources: tuple[str, ...] = SOURCES,
                      settings: dict | None = None, num_shards: int = 1, shard_index: int = 0, resume: bool = True,
                      retry_skipped: bool = False, progress: bool = True) -> TranscribeSummary:
    """Transcribe this shard's videos into ``out`` (see the module doc); returns a summary.

    ``recognizer`` is called the first time a video needs speech recognition (so a corpus fully served by
    subtitles never loads a model); ``settings`` (recognizer and its options) are recorded and a resumed run
    with other settings is refused.
    """
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index {shard_index} must be in [0, {num_shards})")
    unknown = set(sources) - set(SOURCES)
    if unknown or not sources:
        raise ValueError(f"unknown sources {sorted(unknown)}; choose from {', '.join(SOURCES)}")
    t0 = time.perf_counter()
    settings = json.loads(json.dumps({"sources": list(sources), **(settings or {})}))
    target, journal, report_path = output_paths(out, num_shards, shard_index)
    summary = TranscribeSummary(Path(out), part=part_name(num_shards, shard_index))
    paths = list_videos(videos) if isinstance(videos, (str, Path)) else [Path(v) for v in videos]
    mine, summary.other_shards = split_by_shard(paths, num_shards, shard_index)

    captions = _load_json(target)
    journaled, skipped_before = _read_journal(journal, settings)
    if (captions or journaled) and not resume:
        raise FileExistsError(f"{target} already holds {len(captions) + len(journaled)} videos; resume or use another --out")
    previous = _load_json(report_path).get("skipped", {}) if resume else {}
    skipped_before = {**{k: tuple(v) for k, v in previous.items()}, **skipped_before}
    captions.update(journaled)
    skips: dict[str, tuple[str, str]] = {} if retry_skipped else {k: v for k, v in skipped_before.items() if k in mine}

    todo = []
    for vid, p in mine.items():
        if vid in captions:
            summary.already_done.append(vid)
        elif vid in skips:
            summary.skipped.append((vid, *skips[vid]))
        else:
            todo.append((vid, p))
    loaded: list[Recognizer] = []

    def get_recognizer() -> Recognizer:
        if not loaded:
            loaded.append(recognizer())
        return loaded[0]

    seconds = {vid: _media_seconds(p) for vid, p in tqdm(todo, desc="probing", unit="video", disable=not progress,
                                                         leave=False)}
    bar = tqdm(total=sum(seconds.values()), desc=f"transcribe {summary.part}", unit="audio-s", disable=not progress,
               dynamic_ncols=True, bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} audio-s [{elapsed}<{remaining}, "
                                              "{rate_fmt}{postfix}]")
    journal.parent.mkdir(parents=True, exist_ok=True)
    with journal.open("a", encoding="utf-8") as jf:
        if journal.stat().st_size == 0:
            _append(jf, {"settings": settings})
        for vid, p in todo:
            t = time.perf_counter()
            try:
                tr = transcribe_one(p, vid, tuple(sources), get_recognizer)
            except Skip as skip:
                summary.skipped.append((vid, str(p), skip.reason))
                skips[vid] = (str(p), skip.reason)
                _append(jf, {"video_id": vid, "status": "skipped", "path": str(p), "reason": skip.reason})
                log.warning("skipping %s: %s", p, skip.reason)
            else:
                if tr.source.startswith("asr:"):
                    summary.audio_seconds += tr.audio_seconds
                    summary.asr_wall_seconds += time.perf_counter() - t
                captions[vid] = transcript_json(tr)
                _append(jf, {"video_id": vid, "status": "ok", "captions": captions[vid]})
                summary.done.append(vid)
                summary.sources[tr.source.split(":", 1)[0]] += 1
                summary.lines += len(tr.lines)
                summary.words += sum(len(ln.text.split()) for ln in tr.lines)
            bar.update(seconds[vid])
            bar.set_postfix(done=len(summary.done), skipped=len(summary.skipped))
    bar.close()
    atomic_write_json(target, dict(sorted(captions.items())))
    atomic_write_json(report_path, {"settings": settings, "recognizer": loaded[0].describe() if loaded else None,
                                    "videos": len(captions), "skipped": {k: list(v) for k, v in sorted(skips.items())}})
    journal.unlink()
    summary.merged = num_shards == 1 or merge_parts(out, num_shards)
    summary.wall_seconds = time.perf_counter() - t0
    return summary


def _append(f, record: dict) -> None:
    f.write(json.dumps(record) + "\n")
    f.flush()
    os.fsync(f.fileno())


def merge_parts(out: str | Path, num_shards: int) -> bool:
    """Write ``out`` from the K shard files when all are finished (a part file exists only once its
    shard is done); False while some are missing."""
    parts = [output_paths(out, num_shards, i)[0] for i in range(num_shards)]
    if not all(p.is_file() for p in parts):
        return False
    merged: dict = {}
    for p in parts:
        merged.update(_load_json(p))
    atomic_write_json(out, dict(sorted(merged.items())))
    return True
