"""Video decoding with PyAV: one streaming pass yields action clips and detector key frames.

The extractor must handle corpora of long videos (HowTo100M averages 6.5 minutes, some run for hours), so
the decoder never holds the whole video: decoded frames are resampled on the fly to a fixed grid of
``spec.fps`` frames per second, shrunk to the action network's input size at once, and kept in a rolling
buffer only as long as a pending clip still needs them. Key frames for the detector are taken from the
same decode at ``spec.keyframe_every_s`` intervals, so each video is decoded exactly once.

Time conventions (seconds, relative to the first frame of the video stream):

* the resampled grid has frames at ``k / fps``; grid frame ``k`` is the decoded frame nearest to that time;
* clip ``j`` starts at grid frame ``round(j * stride_s * fps)`` and holds ``clip_frames`` grid frames;
  its ``end`` is ``start + clip_frames / fps`` clipped to the video duration (a tail clip that runs past
  the end repeats the last frame; it is emitted only when at least half of it is real video, and the
  first clip is always emitted so that even a very short video has one);
* key frames are at ``k * keyframe_every_s`` for every such time before the end of the video.

Any failure to open or decode is raised as :class:`VideoDecodeError`, whose message names the file and the
reason, so a batch job can report it, skip the file and carry on. That includes a file cut short: FFmpeg
ends a truncated mp4 quietly at the cut (no decode error), so :func:`stream_video` compares the decoded span
with the duration the stream header declares and raises when more than :func:`truncation_tolerance` is
missing, giving both numbers.

Rotation: phone videos store upright frames sideways plus a display-matrix rotation. Frames are turned
upright (``VideoFrame.rotation``, counter-clockwise degrees) before resizing and cropping, and
:func:`probe` reports the upright width and height, so features and boxes are those of the displayed video.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Generator, Iterator

import av
import numpy as np

from actbert.errors import ActbertError

__all__ = [
    "VideoDecodeError", "VideoInfo", "DecodeSpec", "Clip", "KeyFrame",
    "probe", "stream_video", "read_clip", "truncation_tolerance", "VIDEO_EXTENSIONS",
]

# Extensions `actbert extract DIR` picks up; anything FFmpeg demuxes works when listed explicitly.
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts")


class VideoDecodeError(ActbertError, RuntimeError):
    """A video could not be opened or decoded; ``path`` and ``reason`` are kept for failure summaries."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class VideoInfo:
    """Container-level facts about a video (``duration`` may be estimated from the frame count)."""

    path: str
    duration: float
    fps: float
    width: int
    height: int


@dataclass(frozen=True)
class DecodeSpec:
    """How to sample a video.

    ``fps`` and ``clip_frames`` fix the clip length (``clip_seconds = clip_frames / fps``); clips start every
    ``stride_s`` seconds. Clip frames are resized so the short side is ``resize`` and centre-cropped to
    ``crop`` x ``crop`` (the standard video-classification evaluation transform). Key frames keep the video's
    resolution unless ``keyframe_max_side`` asks for a downscale (boxes are then in the downscaled pixels).
    """

    fps: float = 16.0
    clip_frames: int = 16
    stride_s: float = 1.0
    resize: int = 128
    crop: int = 112
    keyframe_every_s: float = 1.0
    keyframe_max_side: int | None = None

    def __post_init__(self):
        if self.fps <= 0 or self.clip_frames < 1 or self.stride_s <= 0 or self.keyframe_every_s <= 0:
            raise ValueError(f"invalid DecodeSpec {self}: fps, clip_frames, stride_s, keyframe_every_s must be > 0")
        if self.crop > self.resize:
            raise ValueError(f"crop ({self.crop}) must not exceed resize ({self.resize})")

    @property
    def clip_seconds(self) -> float:
        return self.clip_frames / self.fps


@dataclass
class Clip:
    """``clip_frames`` RGB frames, uint8 ``[T, crop, crop, 3]``, covering ``[start, end)`` seconds."""

    start: float
    end: float
    frames: np.ndarray


@dataclass
class KeyFrame:
    """One RGB frame for the region detector, uint8 ``[H, W, 3]``, at ``time`` seconds."""

    time: float
    image: np.ndarray


def _reason(exc: BaseException) -> str:
    """FFmpeg's message without PyAV's "[Errno N] ...: 'path'" wrapping (the path is reported once, by the
    caller): "[Errno 1094995529] Invalid data found when processing input: 'x.mp4'" -> "invalid data found
    when processing input"."""
    text = getattr(exc, "strerror", None) or str(exc)
    return text[:1].lower() + text[1:] if text else type(exc).__name__


def _open(path: str | Path):
    """Open a container and its first video stream, turning every PyAV/OS failure into VideoDecodeError."""
    path = Path(path)
    if not path.exists():
        raise VideoDecodeError(path, "file not found")
    if path.stat().st_size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    try:
        container = av.open(str(path), mode="r")
    except Exception as exc:  # av.error.* (InvalidDataError, ...) and OSError
        raise VideoDecodeError(path, f"cannot open the video ({_reason(exc)}: not a video file, or a damaged "
                                     "one)") from exc
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(path, "no video stream")
    stream = container.streams.video[0]
    # Let FFmpeg decode with its own threads; frames still come out in presentation order.
    stream.thread_type = "AUTO"
    return container, stream


def _header_video_duration(container, stream) -> float | None:
    """The video stream's declared duration, or the container's when the video is its only stream.

    A container's duration also covers audio, which may run longer than the video, so it is used for the
    truncation check only when nothing else could have lengthened it.
    """
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and len(container.streams) == 1:
        return container.duration / 1_000_000
    return None


def truncation_tolerance(header_duration: float, native_fps: float) -> float:
    """Seconds the decoded span may fall short of the header before the file counts as cut short.

    Two native frames or 0.5 s absorb B-frame / edit-list rounding (measured: 0 s short on intact x264,
    mjpeg and vp9 test files), and 2 % absorbs headers that are approximate on long videos.
    """
    return max(0.5, 2.0 / native_fps, 0.02 * header_duration)


def _rotation_quarters(frame) -> int:
    """Counter-clockwise quarter turns that make the frame upright (display-matrix rotation; 0 when none)."""
    try:
        rot = float(getattr(frame, "rotation", 0) or 0)
    except (TypeError, ValueError):
        return 0
    return int(round(rot / 90.0)) % 4


def _upright(img: np.ndarray, quarters: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(img, quarters)) if quarters else img


def _stream_facts(container, stream) -> tuple[float, float]:
    """(duration seconds, native fps) from the stream header, falling back to the container's."""
    fps = float(stream.average_rate or stream.guessed_rate or 0.0) or 25.0
    duration = 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    elif stream.frames:
        duration = stream.frames / fps
    return duration, fps


def probe(path: str | Path) -> VideoInfo:
    """Read duration, fps and size from the header without decoding (cheap; used for progress totals)."""
    container, stream = _open(path)
    try:
        duration, fps = _stream_facts(container, stream)
        width, height = stream.codec_context.width, stream.codec_context.height
        if _stream_rotation_quarters(container, stream) % 2:  # shown sideways-rotated: report upright size
            width, height = height, width
    finally:
        container.close()
    if not width or not height:
        raise VideoDecodeError(path, "video stream has no frame size")
    return VideoInfo(str(path), duration, fps, int(width), int(height))


def _stream_rotation_quarters(container, stream) -> int:
    """Rotation of the stream, read from its first decoded frame (the header's display matrix is per frame in
    FFmpeg 7); 0 when nothing decodes, which the caller then reports on its own."""
    try:
        for frame in container.decode(stream):
            return _rotation_quarters(frame)
    except Exception:  # noqa: BLE001 - probing only; stream_video raises the real decode error
        return 0
    return 0


def _decoded_frames(path, container, stream, start: float = 0.0) -> Iterator[tuple[float, "av.VideoFrame"]]:
    """Yield (time since stream start, frame) in presentation order, from ``start`` seconds on (seeking)."""
    t0 = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    if start > 0:
        try:  # seek to the key frame before `start`; decoding then runs forward to it
            container.seek(int((start + t0) / stream.time_base), stream=stream, backward=True, any_frame=False)
        except Exception as exc:
            raise VideoDecodeError(path, f"seek to {start:.2f}s failed: {_reason(exc)}") from exc
    last = -math.inf
    try:
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * stream.time_base) - t0
            if t <= last:  # out-of-order or duplicate timestamps (broken muxers): keep time monotonic
                continue
            last = t
            yield t, frame
    except VideoDecodeError:
        raise
    except Exception as exc:  # av.error.InvalidDataError and friends on truncated / corrupt data
        raise VideoDecodeError(path, f"decode error after {max(last, 0.0):.2f}s: {_reason(exc)}") from exc


def _square(frame: "av.VideoFrame", resize: int, crop: int) -> np.ndarray:
    """Short side -> ``resize`` (swscale, fast), then centre crop ``crop`` x ``crop``; uint8 [crop, crop, 3]."""
    w, h = frame.width, frame.height
    scale = resize / min(w, h)
    nw, nh = max(resize, round(w * scale)), max(resize, round(h * scale))
    img = _upright(frame.reformat(width=nw, height=nh, format="rgb24").to_ndarray(), _rotation_quarters(frame))
    nh, nw = img.shape[:2]
    y, x = (nh - crop) // 2, (nw - crop) // 2
    return np.ascontiguousarray(img[y:y + crop, x:x + crop])


def _keyframe_image(frame: "av.VideoFrame", max_side: int | None) -> np.ndarray:
    """Full-resolution RGB, or downscaled so the long side is ``max_side`` when that is smaller."""
    w, h = frame.width, frame.height
    if max_side and max(w, h) > max_side:
        s = max_side / max(w, h)
        img = frame.reformat(width=max(1, round(w * s)), height=max(1, round(h * s)), format="rgb24").to_ndarray()
    else:
        img = frame.to_ndarray(format="rgb24")
    return _upright(img, _rotation_quarters(frame))


class _Resampler:
    """Map a stream of decoded (time, frame) pairs onto grid times, choosing the nearest decoded frame.

    ``push`` returns the grid times settled by the new frame (those before it that are nearer to the previous
    frame, or to it); ``finish`` settles the grid times left once the stream has ended. Only the previous
    decoded frame is held, so memory does not grow with the video.
    """

    def __init__(self, times):
        self._times = iter(times)
        self._next = next(self._times, None)
        self._prev: tuple[float, object] | None = None

    def push(self, t: float, frame) -> list[tuple[float, object]]:
        out = []
        while self._next is not None and self._next <= t:
            g = self._next
            if self._prev is not None and (g - self._prev[0]) < (t - g):
                out.append((g, self._prev[1]))
            else:
                out.append((g, frame))
            self._next = next(self._times, None)
        self._prev = (t, frame)
        return out

    def finish(self, end: float) -> list[tuple[float, object]]:
        out = []
        while self._prev is not None and self._next is not None and self._next < end:
            out.append((self._next, self._prev[1]))
            self._next = next(self._times, None)
        return out


def _grid(step: float):
    """0, step, 2*step, ... computed by multiplication so long videos accumulate no rounding drift."""
    k = 0
    while True:
        yield k * step
        k += 1


def stream_video(path: str | Path, spec: DecodeSpec = DecodeSpec()) -> Generator[Clip | KeyFrame, None, float]:
    """Decode ``path`` once and yield action clips and key frames as soon as each is complete.

    Clips come out in start order and key frames in time order (the two kinds interleaved as decoding
    reaches them). Memory is bounded by ``max(clip_frames, stride_s * fps)`` small clip frames plus one
    decoded frame. Raises :class:`VideoDecodeError` (possibly after some items were yielded) on a bad file.
    The generator's return value (``StopIteration.value``) is the decoded duration in seconds (last frame
    time + one frame period), which is more trustworthy than the container header.
    """
    container, stream = _open(path)
    try:
        return (yield from _stream(path, container, stream, spec))
    finally:
        container.close()


def _clip_start_index(j: int, spec: DecodeSpec) -> int:
    return round(j * spec.stride_s * spec.fps)


def _stream(path, container, stream, spec: DecodeSpec) -> Generator[Clip | KeyFrame, None, float]:
    _, native_fps = _stream_facts(container, stream)
    step = 1.0 / spec.fps
    grid = _Resampler(_grid(step))
    keys = _Resampler(_grid(spec.keyframe_every_s))
    buf: deque[np.ndarray] = deque()  # grid frames buf_start, buf_start+1, ...
    buf_start = 0
    n_grid = 0  # grid frames produced so far
    j = 0  # next clip to emit
    last_t = None

    def ready_clips(final: bool, duration: float = 0.0) -> Iterator[Clip]:
        nonlocal j, buf_start
        while True:
            a = _clip_start_index(j, spec)
            start = a * step
            if final:
                if a >= n_grid or (j > 0 and duration - start < 0.5 * spec.clip_seconds):
                    return
            elif a + spec.clip_frames > n_grid:
                return
            frames = [buf[i - buf_start] for i in range(a, min(a + spec.clip_frames, n_grid))]
            frames += [frames[-1]] * (spec.clip_frames - len(frames))  # tail clip: repeat the last frame
            end = min(start + spec.clip_seconds, duration) if final else start + spec.clip_seconds
            yield Clip(start, end, np.stack(frames))
            j += 1
            # drop grid frames that no later clip needs
            keep_from = _clip_start_index(j, spec)
            while buf and buf_start < keep_from:
                buf.popleft()
                buf_start += 1

    def add_grid_frame(gf) -> None:
        nonlocal n_grid, buf_start
        if n_grid < _clip_start_index(j, spec):  # in a gap between clips (stride > clip length): skip
            buf_start = n_grid + 1
        else:
            buf.append(_square(gf, spec.resize, spec.crop))
        n_grid += 1

    for t, frame in _decoded_frames(path, container, stream):
        last_t = t
        for kt, kf in keys.push(t, frame):
            yield KeyFrame(kt, _keyframe_image(kf, spec.keyframe_max_side))
        for _, gf in grid.push(t, frame):
            add_grid_frame(gf)
        yield from ready_clips(final=False)
    if last_t is None:
        raise VideoDecodeError(path, "no decodable video frames")
    # The decoded end of the video is the last frame's time plus one native frame period.
    duration = last_t + 1.0 / native_fps
    declared = _header_video_duration(container, stream)
    if declared and declared - duration > truncation_tolerance(declared, native_fps):
        raise VideoDecodeError(path, f"truncated: decoded {duration:.2f} s of the {declared:.2f} s its header declares "
                                     f"({declared - duration:.2f} s missing; file cut short?)")
    for kt, kf in keys.finish(duration):
        yield KeyFrame(kt, _keyframe_image(kf, spec.keyframe_max_side))
    for _, gf in grid.finish(duration):
        add_grid_frame(gf)
    yield from ready_clips(final=True, duration=duration)
    return duration


def read_clip(path: str | Path, start: float, end: float, spec: DecodeSpec = DecodeSpec(),
              num_frames: int | None = None, size: int | None = None) -> np.ndarray:
    """Frames of ``[start, end)`` for training: uint8 ``[num_frames, size, size, 3]``.

    ``num_frames`` defaults to ``spec.clip_frames`` and the frames sit at ``start + i * (end - start) /
    num_frames`` (the same times :func:`stream_video` uses for a clip of that span). ``size`` defaults to
    ``spec.resize``: a square of the resized frame, from which training takes random ``spec.crop`` crops.
    Times past the end of the video repeat the last frame. Seeks, so only the needed GOPs are decoded.
    """
    n = num_frames or spec.clip_frames
    size = size or spec.resize
    if end <= start:
        raise ValueError(f"read_clip: end ({end}) must be after start ({start})")
    times = [start + i * (end - start) / n for i in range(n)]
    container, stream = _open(path)
    frames: list[np.ndarray] = []
    try:
        res = _Resampler(times)
        last_t = None
        for t, frame in _decoded_frames(path, container, stream, start=max(0.0, start)):
            last_t = t
            frames += [_square(f, size, size) for _, f in res.push(t, frame)]
            if len(frames) == n:
                break
        else:
            if last_t is None:
                raise VideoDecodeError(path, f"no decodable frames at {start:.2f}s")
            frames += [_square(f, size, size) for _, f in res.finish(math.inf)]
    finally:
        container.close()
    return np.stack(frames[:n])
