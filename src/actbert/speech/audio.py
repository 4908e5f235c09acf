"""The audio track of a video (or an audio file), decoded with PyAV to 16 kHz mono 16-bit PCM.

Both recognizers take 16 kHz mono: pocketsphinx's English acoustic model was trained at 16 kHz and
Whisper's feature extractor expects it. FFmpeg's resampler (through PyAV) does the conversion, so any
codec, rate and channel layout FFmpeg reads works. A file with no audio stream, or whose audio cannot
be decoded, raises :class:`AudioError` naming the file and the reason, so a long run can record it and
go on.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from actbert.errors import ActbertError

__all__ = ["SAMPLE_RATE", "AudioError", "Audio", "audio_duration", "read_audio"]

SAMPLE_RATE = 16000


class AudioError(ActbertError, RuntimeError):
    """The audio of ``path`` is missing or undecodable; ``reason`` is the short cause for summaries."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class Audio:
    """Mono int16 samples at ``SAMPLE_RATE``; ``offset`` is the stream's start time in seconds."""

    samples: np.ndarray
    offset: float = 0.0

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def audio_duration(path: str | Path) -> float:
    """Seconds of the first audio stream from the container header (0.0 when unknown).

    Raises AudioError when the file cannot be opened or has no audio stream.
    """
    with _open(path) as container:
        stream = _audio_stream(container, path)
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return float(container.duration or 0) / av.time_base


def read_audio(path: str | Path) -> Audio:
    """Decode the first audio stream of ``path`` to 16 kHz mono int16."""
    with _open(path) as container:
        stream = _audio_stream(container, path)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        offset = None
        try:
            for frame in container.decode(stream):
                if offset is None and frame.time is not None:
                    offset = max(0.0, float(frame.time))
                chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
        except (av.error.FFmpegError, ValueError) as exc:
            raise AudioError(path, f"audio cannot be decoded ({type(exc).__name__}: {exc})") from None
    if not chunks:
        raise AudioError(path, "audio stream holds no decodable samples")
    return Audio(np.concatenate(chunks).astype(np.int16, copy=False), offset or 0.0)


def _open(path: str | Path):
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise AudioError(path, f"cannot open ({type(exc).__name__}: {exc})") from None


def _audio_stream(container, path):
    if not container.streams.audio:
        raise AudioError(path, "no audio stream")
    return container.streams.audio[0]
