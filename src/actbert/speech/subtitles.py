"""Narration that a video already carries: a sidecar subtitle file, or a subtitle stream in the container.

Sidecar files sit beside the video with the same stem (``talk.mp4`` -> ``talk.srt``, ``talk.en.vtt``,
the name youtube-dl / yt-dlp give downloaded captions). WebVTT is read with ``webvtt-py``, which keeps a
cue's inline word timestamps; SubRip, ASS/SSA, TTML and SAMI with ``pysubs2`` (its WebVTT reader takes
YouTube's inline ``<00:00:01.079>`` timestamps for new cues and loses words, so it is not used for .vtt).

YouTube's automatic captions (``--write-auto-subs``) roll: each cue repeats the previous line and adds a
line whose words carry their own start times, with 10 ms "frozen" cues between. When a file has such
timed words, only the timed lines are kept and each word gets its time (the next word's start, or the
cue's end, ends it), so the rolling repeats never reach the captions.

A file that cannot be read or holds no cue raises :class:`SubtitleError` naming it.
"""
from __future__ import annotations

import re
from pathlib import Path

import av

from actbert.errors import ActbertError
from actbert.speech.result import Line, Word

__all__ = ["SUBTITLE_EXTENSIONS", "SubtitleError", "find_sidecar", "read_sidecar", "read_stream_subtitles"]

SUBTITLE_EXTENSIONS = (".vtt", ".srt", ".ass", ".ssa", ".ttml", ".smi", ".sami")
_INLINE_TIME = re.compile(r"<(\d+:)?(\d{2}):(\d{2})\.(\d{3})>")
_TAG = re.compile(r"<[^>]*>")
_ASS_OVERRIDE = re.compile(r"\{[^}]*\}")


class SubtitleError(ActbertError, RuntimeError):
    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def find_sidecar(video: str | Path) -> Path | None:
    """The subtitle file beside ``video``: ``<stem><ext>`` first, then ``<stem>.<lang><ext>`` (English
    first), in the order of SUBTITLE_EXTENSIONS."""
    video = Path(video)
    for ext in SUBTITLE_EXTENSIONS:
        exact = video.with_suffix(ext)
        if exact.is_file():
            return exact
    for ext in SUBTITLE_EXTENSIONS:
        tagged = sorted(video.parent.glob(f"{glob_escape(video.stem)}.*{ext}"),
                        key=lambda p: (not p.name[len(video.stem):].lower().startswith(".en"), p.name))
        if tagged:
            return tagged[0]
    return None


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def read_sidecar(path: str | Path) -> list[Line]:
    """Caption lines of a subtitle file (timed words where the file has them)."""
    path = Path(path)
    try:
        lines = _read_vtt(path) if path.suffix.lower() == ".vtt" else _read_pysubs2(path)
    except SubtitleError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise SubtitleError(path, f"unreadable subtitle file ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # noqa: BLE001 - the parsers raise their own types for malformed files
        raise SubtitleError(path, f"malformed subtitle file ({type(exc).__name__}: {exc})") from None
    if not lines:
        raise SubtitleError(path, "malformed or empty subtitle file: no cue with text")
    return lines


def _read_pysubs2(path: Path) -> list[Line]:
    import pysubs2

    out = []
    for event in pysubs2.load(str(path), encoding="utf-8"):
        if event.is_comment:
            continue
        text = _clean(event.plaintext)
        if text:
            out.append(Line(event.start / 1000.0, event.end / 1000.0, text))
    return out


def _read_vtt(path: Path) -> list[Line]:
    import webvtt

    # Timestamp.in_seconds() truncates to whole seconds; milliseconds keep the cue times exact
    cues = [(c.start_time.in_milliseconds() / 1000.0, c.end_time.in_milliseconds() / 1000.0, c.lines)
            for c in webvtt.read(str(path))]
    if any(_INLINE_TIME.search(line) for *_, lines in cues for line in lines):
        return _youtube_rolling(cues)
    return [Line(s, e, text) for s, e, lines in cues if (text := _clean(" ".join(lines)))]


def _youtube_rolling(cues) -> list[Line]:
    """Keep only the lines with inline word times (the new words of each rolling cue)."""
    out = []
    for start, end, lines in cues:
        for raw in lines:
            if not _INLINE_TIME.search(raw):
                continue
            words: list[Word] = []
            t = start
            for piece in re.split(r"(<(?:\d+:)?\d{2}:\d{2}\.\d{3}>)", raw):
                m = _INLINE_TIME.fullmatch(piece)
                if m:
                    t = _seconds(m)
                    continue
                for w in _clean(piece).split():
                    words.append(Word(w, t, t, None))
            for i, w in enumerate(words):  # a word lasts until the next one starts
                stop = words[i + 1].start if i + 1 < len(words) else end
                words[i] = Word(w.text, w.start, max(w.start, stop), None)
            if words:
                out.append(Line(start, end, " ".join(w.text for w in words), tuple(words)))
    return out


def _seconds(m: re.Match) -> float:
    hours = int(m.group(1)[:-1]) if m.group(1) else 0
    return hours * 3600 + int(m.group(2)) * 60 + int(m.group(3)) + int(m.group(4)) / 1000.0


def _clean(text: str) -> str:
    text = _ASS_OVERRIDE.sub("", _TAG.sub("", text.replace("\\N", " ").replace("\\n", " ")))
    return " ".join(text.split())


def read_stream_subtitles(path: str | Path) -> list[Line] | None:
    """Caption lines of the first text subtitle stream in the container (None when it has none).

    Bitmap subtitles (DVD / PGS) carry no text and are treated as no stream.
    """
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError):
        return None  # the audio path reports an unreadable file with its own reason
    with container:
        if not container.streams.subtitles:
            return None
        stream = container.streams.subtitles[0]
        out = []
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None:
                    continue
                start = float(packet.pts * packet.time_base)
                end = start + float((packet.duration or 0) * packet.time_base)
                texts = [_subtitle_text(sub) for sub in packet.decode()]
                text = _clean(" ".join(t for t in texts if t))
                if text:
                    out.append(Line(start, max(start, end), text))
        except (av.error.FFmpegError, ValueError) as exc:
            raise SubtitleError(path, f"subtitle stream cannot be decoded ({type(exc).__name__}: {exc})") from None
    return out or None


def _subtitle_text(sub) -> str:
    for attr in ("dialogue", "text"):
        value = getattr(sub, attr, b"")
        if value:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return ""
