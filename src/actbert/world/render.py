"""Render a planned video frame by frame and encode it as H.264 mp4 with PyAV.

Speed: everything that does not move during a step (or an idle gap) is drawn once into a cached
layer; a frame is a copy of that layer plus the few moving objects, so idle frames cost one copy.
Determinism: the encoder runs single-threaded with fixed options, no lookahead, the muxer in
bit-exact mode, and RGB->YUV is integer arithmetic, so the same frames give the same bytes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from actbert.world.config import WorldConfig
from actbert.world.draw import Box
from actbert.world.motion import animate, finish
from actbert.world.plan import PlannedStep, VideoPlan, rng_for
from actbert.world.scene import Scene


@dataclass(frozen=True)
class RenderedFrame:
    """One frame and the box of every object visible in it (object name -> x0, y0, x1, y1)."""

    index: int
    time: float
    image: np.ndarray          # (H, W, 3) uint8 RGB; idle frames share one array: do not modify it
    boxes: dict[str, Box]


def render_frames(plan: VideoPlan, config: WorldConfig, seed: int) -> Iterator[RenderedFrame]:
    """Yield every frame of `plan` in order."""
    scene = Scene(plan, config, rng_for(seed, plan.index, "scene"))
    frame_rng = rng_for(seed, plan.index, "frames")
    fps = plan.fps
    # frame index -> index of the step it belongs to (-1 = idle); boundaries are on the frame grid
    owner = np.full(plan.num_frames, -1, dtype=np.int64)
    for k, step in enumerate(plan.steps):
        owner[int(round(step.start * fps)):int(round(step.end * fps))] = k
    finished = 0
    cached_for: int | None = None
    layer, layer_boxes = scene.background, {}
    involved: set[str] = set()
    for i in range(plan.num_frames):
        k = int(owner[i])
        # apply the lasting effects of every step that ended before this frame
        while finished < len(plan.steps) and int(round(plan.steps[finished].end * fps)) <= i:
            finish(scene, plan.steps[finished])
            finished += 1
            cached_for = None
        if cached_for != k:
            involved = _involved(scene, plan.steps[k]) if k >= 0 else set()
            layer, layer_boxes = scene.draw_static(involved)
            cached_for = k
        boxes = dict(layer_boxes)
        if k >= 0:
            step = plan.steps[k]
            image = layer.copy()
            boxes.update(animate(scene, step, i / fps - step.start, frame_rng, image))
        else:
            image = layer  # idle: nothing moves, so the frame is the cached layer itself
        yield RenderedFrame(i, i / fps, image, boxes)


def _involved(scene: Scene, step: PlannedStep) -> set[str]:
    from actbert.world.catalog import VERB_BY_NAME

    names = {n for n in (step.object, step.target, VERB_BY_NAME[step.verb].tool) if n}
    return scene.group(names)


def rgb_to_yuv420p(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H * 3 / 2, W) uint8 planar YUV 4:2:0, BT.601 limited range (what
    decoders assume for untagged H.264).

    Integer arithmetic on purpose: float reductions in numpy (and swscale's SIMD paths) can round
    differently depending on memory alignment, which made the same frames encode to different bytes.
    """
    rgb = image.astype(np.int32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    h, w = y.shape
    # average each 2x2 block before converting chroma (sum of 4; strided adds are much faster than a reduce)
    blocks = rgb[0::2, 0::2] + rgb[1::2, 0::2] + rgb[0::2, 1::2] + rgb[1::2, 1::2]
    r4, g4, b4 = blocks[..., 0], blocks[..., 1], blocks[..., 2]
    cb = ((-38 * r4 - 74 * g4 + 112 * b4 + 512) >> 10) + 128
    cr = ((112 * r4 - 94 * g4 - 18 * b4 + 512) >> 10) + 128
    planes = np.concatenate([y.ravel(), cb.ravel(), cr.ravel()])
    return np.clip(planes, 0, 255).astype(np.uint8).reshape(h * 3 // 2, w)


class Mp4Writer:
    """Write RGB frames to an H.264 mp4 (yuv420p), reproducibly, via a temp file + os.replace."""

    def __init__(self, path: str | Path, fps: int, width: int, height: int, crf: int = 20):
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
        self.container = av.open(str(self.tmp), mode="w", format="mp4",
                                 options={"fflags": "+bitexact", "movflags": "+faststart"})
        self.stream = self.container.add_stream(
            "libx264", rate=fps,
            # mbtree / rc-lookahead off: with them x264 gave different bytes for the same frames from run
            # to run (seen at 64x64: its low-resolution lookahead reads memory it did not write)
            options={"preset": "veryfast", "crf": str(crf), "threads": "1", "g": str(2 * fps), "bframes": "0",
                     "flags": "+bitexact", "x264-params": "mbtree=0:rc-lookahead=0"})
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.thread_count = 1
        self.count = 0
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    def write(self, image: np.ndarray) -> None:
        # convert to yuv420p here rather than through PyAV's swscale reformatter, whose output was seen
        # to differ slightly between runs in one process (not bit-exact); numpy's is
        if self._last is None or self._last[0] is not image:  # idle frames repeat the same array
            self._last = (image, rgb_to_yuv420p(image))
        frame = av.VideoFrame.from_ndarray(self._last[1], format="yuv420p")
        frame.pts = self.count
        self.count += 1
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self.container.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def render_video(plan: VideoPlan, config: WorldConfig, seed: int, path: str | Path,
                 keep_frames: set[int] = frozenset()) -> dict[int, RenderedFrame]:
    """Render and encode one video to `path`; return the frames whose index is in `keep_frames`
    (the detection frames), with their boxes."""
    writer = Mp4Writer(path, plan.fps, config.width, config.height, config.crf)
    kept: dict[int, RenderedFrame] = {}
    try:
        for frame in render_frames(plan, config, seed):
            writer.write(frame.image)
            if frame.index in keep_frames:
                kept[frame.index] = frame
        if writer.count != plan.num_frames:
            raise RuntimeError(f"{plan.video_id}: rendered {writer.count} frames, planned {plan.num_frames}")
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return kept
