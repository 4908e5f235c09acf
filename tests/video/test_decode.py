"""Decoding: clip / key-frame sampling, timestamps, containers, and bad files (all videos made here with PyAV)."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from actbert.video.decode import (Clip, DecodeSpec, KeyFrame, VideoDecodeError, probe, read_clip,
                                  stream_video)


def write_video(path: Path, frames, fps: int = 25, codec: str = "libx264", rotation: int | None = None,
                faststart: bool = False) -> Path:
    """Encode uint8 ``[H, W, 3]`` frames with PyAV (used by all video tests). ``rotation``: a display-matrix
    rotation (counter-clockwise degrees, as phones write); ``faststart``: the mp4 index (moov) first."""
    frames = list(frames)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else None) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = w, h
        if rotation is not None:
            stream.set_display_rotation(rotation)
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "12", "preset": "ultrafast"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def counter_frames(n: int, h: int = 48, w: int = 64, step: int = 4):
    """Frame i is uniformly grey at level ``step * i``: decoded pixels tell which source frame was used."""
    for i in range(n):
        yield np.full((h, w, 3), min(255, step * i), np.uint8)


def moving_square_frames(n: int, h: int = 48, w: int = 64, dx: int = 2, dy: int = 1, size: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    colour = rng.integers(100, 256, 3)
    for i in range(n):
        img = np.full((h, w, 3), 30, np.uint8)
        x, y = (5 + dx * i) % (w - size), (5 + dy * i) % (h - size)
        img[y:y + size, x:x + size] = colour
        yield img


def level(img: np.ndarray) -> float:
    return float(img.mean())


def test_probe_and_stream_shapes_and_times(tmp_path):
    path = write_video(tmp_path / "count.mp4", counter_frames(50), fps=25)  # 2.0 s
    info = probe(path)
    assert (info.width, info.height) == (64, 48) and info.fps == pytest.approx(25)
    assert info.duration == pytest.approx(2.0, abs=0.05)
    spec = DecodeSpec(fps=10, clip_frames=5, stride_s=0.5, resize=36, crop=32, keyframe_every_s=0.4)
    items = list(stream_video(path, spec))
    clips = [c for c in items if isinstance(c, Clip)]
    keys = [k for k in items if isinstance(k, KeyFrame)]
    assert [c.start for c in clips] == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert [c.end for c in clips] == pytest.approx([0.5, 1.0, 1.5, 2.0])
    assert all(c.frames.shape == (5, 32, 32, 3) and c.frames.dtype == np.uint8 for c in clips)
    assert [k.time for k in keys] == pytest.approx([0.0, 0.4, 0.8, 1.2, 1.6])
    assert all(k.image.shape == (48, 64, 3) for k in keys)
    # each grid frame is the source frame nearest its time (frame i at i/25 s has grey level 4 i)
    for c in clips:
        for i, frame in enumerate(c.frames):
            t = c.start + i / spec.fps
            assert level(frame) == pytest.approx(4 * round(t * 25), abs=3)
    for k in keys:
        assert level(k.image) == pytest.approx(4 * round(k.time * 25), abs=3)
    # items of each kind come out in time order, and a clip only once its frames have been decoded
    assert np.all(np.diff([c.start for c in clips]) > 0) and np.all(np.diff([k.time for k in keys]) > 0)


def test_tail_clip_padding_and_gaps(tmp_path):
    path = write_video(tmp_path / "short.mp4", counter_frames(33), fps=25)  # 1.32 s
    spec = DecodeSpec(fps=10, clip_frames=10, stride_s=0.5, resize=32, crop=32, keyframe_every_s=1.0)
    clips = [c for c in stream_video(path, spec) if isinstance(c, Clip)]
    # 0.0 is full; 0.5 is a tail clip (0.82 s of 1 s real) padded with the last frame; 1.0 is < half real: dropped
    assert [c.start for c in clips] == pytest.approx([0.0, 0.5])
    assert clips[1].end == pytest.approx(1.32, abs=0.01)
    assert np.array_equal(clips[1].frames[-1], clips[1].frames[-2])
    # stride longer than the clip: frames in the gaps are skipped, clips still right
    spec = DecodeSpec(fps=10, clip_frames=2, stride_s=0.6, resize=32, crop=32)
    clips = [c for c in stream_video(path, spec) if isinstance(c, Clip)]
    assert [c.start for c in clips] == pytest.approx([0.0, 0.6, 1.2])
    assert level(clips[1].frames[1]) == pytest.approx(4 * round(0.7 * 25), abs=3)
    # a video shorter than one clip still yields one (padded) clip
    tiny = write_video(tmp_path / "tiny.mp4", counter_frames(3), fps=25)
    clips = [c for c in stream_video(tiny, DecodeSpec(fps=8, clip_frames=8, resize=32, crop=32))
             if isinstance(c, Clip)]
    assert len(clips) == 1 and clips[0].frames.shape[0] == 8 and clips[0].end == pytest.approx(0.12, abs=0.01)


def test_read_clip_matches_stream(tmp_path):
    path = write_video(tmp_path / "sq.mp4", moving_square_frames(60, h=48, w=64), fps=20)
    spec = DecodeSpec(fps=10, clip_frames=6, stride_s=1.0, resize=40, crop=32)
    clips = [c for c in stream_video(path, spec) if isinstance(c, Clip)]
    for c in clips:
        window = read_clip(path, c.start, c.start + spec.clip_seconds, spec)
        assert window.shape == (6, 40, 40, 3)
        assert np.array_equal(window[:, 4:36, 4:36], c.frames)  # centre crop of the window == the clip
    many = read_clip(path, 1.0, 2.0, spec, num_frames=20, size=24)
    assert many.shape == (20, 24, 24, 3)
    past_end = read_clip(path, 2.8, 3.8, spec)  # runs past the 3 s video: last frame repeated
    assert past_end.shape[0] == 6 and np.array_equal(past_end[-1], past_end[-2])


@pytest.mark.parametrize("name,codec", [("a.mkv", "mpeg4"), ("b.avi", "mjpeg"), ("c.webm", "libvpx-vp9")])
def test_other_containers_and_codecs(tmp_path, name, codec):
    path = write_video(tmp_path / name, moving_square_frames(20), fps=10, codec=codec)
    spec = DecodeSpec(fps=5, clip_frames=5, resize=32, crop=32)
    items = list(stream_video(path, spec))
    assert sum(isinstance(i, Clip) for i in items) == 2 and sum(isinstance(i, KeyFrame) for i in items) == 2
    assert probe(path).duration == pytest.approx(2.0, abs=0.15)


def test_bad_files_raise_with_file_and_reason(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    good = write_video(tmp_path / "good.mp4", moving_square_frames(40), fps=20)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # moov atom (at the end) is lost
    for bad, reason in [(empty, "empty file"), (junk, "cannot open"), (truncated, ""),
                        (tmp_path / "missing.mp4", "not found")]:
        for call in (lambda: probe(bad), lambda: list(stream_video(bad)), lambda: read_clip(bad, 0, 1)):
            with pytest.raises(VideoDecodeError) as err:
                call()
            assert str(bad) in str(err.value) and reason in err.value.reason
            assert err.value.path == str(bad)


def test_streaming_memory_is_bounded(tmp_path):
    """Python-side memory while streaming a long video stays at a few clips, not the whole video."""
    import tracemalloc

    path = write_video(tmp_path / "long.mp4", moving_square_frames(600, h=48, w=64), fps=20)  # 30 s
    spec = DecodeSpec(fps=10, clip_frames=8, stride_s=0.5, resize=40, crop=32, keyframe_every_s=1.0)
    clip_bytes = 8 * 32 * 32 * 3
    whole_video = 300 * 40 * 40 * 3  # the resampled video, had it been kept
    tracemalloc.start()
    n = 0
    for item in stream_video(path, spec):  # items are dropped at once, as a consumer that writes them out would
        n += isinstance(item, Clip)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 60
    assert peak < 12 * clip_bytes < whole_video / 4, peak


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_flag_is_honoured(tmp_path, rotation):
    img = np.zeros((48, 64, 3), np.uint8)
    img[:16, :16] = 255  # a white block in the stored frame's top-left corner
    path = write_video(tmp_path / "rot.mp4", [img] * 10, fps=10, rotation=rotation)
    info = probe(path)
    upright = np.rot90(img, rotation // 90)
    assert (info.height, info.width) == upright.shape[:2]
    items = list(stream_video(path, DecodeSpec(fps=10, clip_frames=5, resize=48, crop=48, keyframe_every_s=0.5)))
    key = next(i for i in items if isinstance(i, KeyFrame)).image
    assert key.shape == upright.shape
    assert np.abs(key.astype(int) - upright).mean() < 8  # the block is where a player shows it
    clip = next(i for i in items if isinstance(i, Clip)).frames[0]
    small = np.rot90(img[::1, 8:56], rotation // 90)  # short side 48 -> centre crop 48 x 48, then upright
    assert np.abs(clip.astype(int) - small).mean() < 8


def test_truncated_mp4_is_detected_with_both_durations(tmp_path):
    from tests.cli.test_fault_injection import write_cut_faststart_mp4

    whole = tmp_path / "whole.mp4"
    write_cut_faststart_mp4(whole, moving_square_frames(100), fps=10, fraction=1.0)
    items = list(stream_video(whole, DecodeSpec(fps=10, clip_frames=10)))  # intact: no false alarm
    assert len([c for c in items if isinstance(c, Clip)]) == 10
    for fraction in (0.5, 0.9):
        cut = tmp_path / f"cut{fraction}.mp4"
        write_cut_faststart_mp4(cut, moving_square_frames(100), fps=10, fraction=fraction)
        with pytest.raises(VideoDecodeError, match=r"truncated: decoded \d+\.\d\d s of the 10\.00 s its header") as e:
            list(stream_video(cut, DecodeSpec(fps=10, clip_frames=10)))
        assert e.value.path == str(cut)
