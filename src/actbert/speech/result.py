"""What a transcription produces: timed lines with timed, scored words, and their caption-JSON form.

The JSON is HowTo100M's ``raw_caption.json`` (``{video_id: {"start": [...], "end": [...], "text": [...]}}``,
read by ``actbert vocab``, ``pretrain`` and ``Pipeline`` like HowTo100M's own) with three keys beside the
lists that those readers ignore: ``words`` (per line, ``[word, start, end, confidence]`` lists; confidence
is null where the source has none, e.g. subtitles), ``source`` (``sidecar:<file>``, ``stream`` or
``asr:<recognizer>``) and ``audio_seconds``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Word", "Line", "VideoTranscript", "transcript_json", "transcript_from_json"]


class Word(NamedTuple):
    text: str
    start: float
    end: float
    confidence: float | None  # posterior probability in [0, 1]; None where the source gives none


class Line(NamedTuple):
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()


@dataclass
class VideoTranscript:
    video_id: str
    source: str
    lines: list[Line]
    audio_seconds: float = 0.0


def _r(x: float) -> float:
    return round(float(x), 3)


def transcript_json(t: VideoTranscript) -> dict:
    return {"start": [_r(ln.start) for ln in t.lines], "end": [_r(ln.end) for ln in t.lines],
            "text": [ln.text for ln in t.lines],
            "words": [[[w.text, _r(w.start), _r(w.end), None if w.confidence is None else round(w.confidence, 4)]
                       for w in ln.words] for ln in t.lines],
            "source": t.source, "audio_seconds": _r(t.audio_seconds)}


def transcript_from_json(video_id: str, rec: dict) -> VideoTranscript:
    words = rec.get("words") or [[] for _ in rec["text"]]
    lines = [Line(float(s), float(e), str(text), tuple(Word(str(w[0]), float(w[1]), float(w[2]),
                                                           None if w[3] is None else float(w[3])) for w in ws))
             for s, e, text, ws in zip(rec["start"], rec["end"], rec["text"], words)]
    return VideoTranscript(video_id, str(rec.get("source", "")), lines, float(rec.get("audio_seconds", 0.0)))
