"""`extract_features` / `actbert extract`: store contents, bad files, sharding, resume after a crash."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from actbert.data.store import FeatureStore
from actbert.video import extract as extract_mod
from actbert.video.action_net import build_action_net, save_action_net
from actbert.video.decode import Clip, DecodeSpec, stream_video
from actbert.video.detector import RegionExtractor, box_location5, build_detector, save_region_extractor
from actbert.video.extract import extract_features, list_videos, shard_of, video_ids
from tests.video.test_decode import moving_square_frames, write_video

ROOT = Path(__file__).resolve().parents[2]
SPEC = DecodeSpec(fps=4, clip_frames=4, stride_s=1.0, resize=36, crop=32, keyframe_every_s=1.0)
LENGTHS = {"vid_a": 30, "vid_b": 16, "vid_c": 24, "vid_d": 12}  # frames at 10 fps


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("videos")
    for i, (name, n) in enumerate(LENGTHS.items()):
        write_video(d / f"{name}.mp4", moving_square_frames(n, h=48, w=64, seed=i), fps=10)
    (d / "empty.mp4").write_bytes(b"")
    (d / "corrupt.mkv").write_bytes(b"\x1aE\xdf\xa3" + bytes(range(256)) * 8)
    (d / "notes.txt").write_text("not a video, ignored by the directory scan")
    return d


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.manual_seed(0)
    net = build_action_net("tiny3d", num_classes=3, clip_frames=4, fps=4.0, resize=36, crop=32).eval()
    extractor = RegionExtractor(build_detector("tiny", num_classes=4), top_k=6, backbone="tiny")
    d = tmp_path_factory.mktemp("models")
    save_action_net(net, d / "action")
    save_region_extractor(extractor, d / "detector")
    return net, extractor, d


def stores_equal(a: Path, b: Path) -> None:
    sa, sb = FeatureStore(a), FeatureStore(b)
    assert sorted(sa.video_ids()) == sorted(sb.video_ids())
    for vid in sa.video_ids():
        va, vb = sa[vid], sb[vid]
        for name in ("action", "action_times", "region", "region_boxes", "region_cls", "region_score",
                     "region_valid", "frame_times"):
            assert np.array_equal(getattr(va, name), getattr(vb, name)), (vid, name)
        assert va.image_size == vb.image_size and va.duration == vb.duration


def test_extract_store_contents_and_failures(corpus, models, tmp_path):
    net, extractor, _ = models
    summary = extract_features(corpus, tmp_path / "store", net, extractor, SPEC, progress=False,
                               action_batch=3, region_batch=2)
    assert sorted(summary.done) == sorted(LENGTHS)
    assert sorted((vid, reason.split(" (")[0]) for vid, _, reason in summary.failed) == [
        ("corrupt", "cannot open the video"), ("empty", "empty file")]
    assert not any("Errno" in reason or str(path) in reason for _, path, reason in summary.failed)  # path once
    for vid in LENGTHS:  # the recorded path is absolute, whatever the working folder was
        assert FeatureStore(tmp_path / "store")[vid].extra["path"] == str((corpus / f"{vid}.mp4").resolve())
    assert summary.seconds_of_video == pytest.approx(sum(LENGTHS.values()) / 10, abs=0.01)
    assert set(summary.timings) == {"decode", "action", "region", "write"} and summary.throughput > 0
    assert "FAILED empty" in summary.table() and str(corpus / "corrupt.mkv") in summary.table()
    store = FeatureStore(tmp_path / "store")
    assert sorted(f["video_id"] for f in store.failures()) == ["corrupt", "empty"]
    for vid, n in LENGTHS.items():
        v = store[vid]
        seconds = n / 10
        clips = int(np.floor(seconds)) + (seconds % 1 >= 0.5)
        assert v.action.shape == (max(clips, 1), net.feature_dim)
        assert np.all(np.diff(v.action_times[:, 0]) > 0) and np.all(v.action_times[:, 1] > v.action_times[:, 0])
        assert v.region.shape == (int(np.ceil(seconds)), 6, extractor.feature_dim)
        assert np.all(np.diff(v.frame_times) > 0) and v.image_size == (48, 64)
        assert v.duration == pytest.approx(seconds, abs=0.01)
        valid = v.region_valid
        assert valid.any()
        assert np.allclose(v.region_cls[valid].sum(-1), 1.0, atol=0.01)
        assert not v.region_cls[~valid].any() and not v.region_score[~valid].any()
        loc = box_location5(v.region_boxes[valid], v.image_size)
        assert loc.min() >= 0 and loc.max() <= 1
        assert np.allclose(loc[:, 4], (loc[:, 2] - loc[:, 0]) * (loc[:, 3] - loc[:, 1]), atol=1e-5)
    # the stored action feature is the net's feature of that clip (float16 on disk)
    first = next(c for c in stream_video(corpus / "vid_a.mp4", SPEC) if isinstance(c, Clip))
    assert np.allclose(store["vid_a"].action[0], net.embed(first.frames[None])[0], rtol=1e-2, atol=1e-2)


def test_shards_split_the_corpus_without_overlap(corpus, models, tmp_path):
    net, extractor, _ = models
    paths = list_videos(corpus)
    assert {p.name for p in paths} == {"vid_a.mp4", "vid_b.mp4", "vid_c.mp4", "vid_d.mp4", "empty.mp4",
                                       "corrupt.mkv"}
    assert shard_of("vid_a", 3) == shard_of("vid_a", 3)  # stable: sha1, not Python's salted hash()
    done = []
    for i in range(3):
        s = extract_features(paths, tmp_path / "store", net, extractor, SPEC, num_shards=3, shard_index=i,
                             progress=False)
        done += s.done
        assert s.other_shards == len(paths) - len(s.done) - len(s.failed)
        assert all(shard_of(v, 3) == i for v in s.done)
    assert sorted(done) == sorted(LENGTHS)
    assert sorted(FeatureStore(tmp_path / "store").video_ids()) == sorted(LENGTHS)


def test_resume_after_exception_equals_clean_run(corpus, models, tmp_path, monkeypatch):
    net, extractor, _ = models
    extract_features(corpus, tmp_path / "clean", net, extractor, SPEC, progress=False, shard_videos=1)
    real, calls = extract_mod._extract_one, []

    def crash_on_third(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(extract_mod, "_extract_one", crash_on_third)
    with pytest.raises(RuntimeError, match="simulated crash"):
        extract_features(corpus, tmp_path / "resumed", net, extractor, SPEC, progress=False, shard_videos=1)
    monkeypatch.setattr(extract_mod, "_extract_one", real)
    again = extract_features(corpus, tmp_path / "resumed", net, extractor, SPEC, progress=False, shard_videos=1)
    assert sorted(again.already_done) == sorted(calls[:2]) and len(again.done) == 2
    stores_equal(tmp_path / "clean", tmp_path / "resumed")


KILL_SCRIPT = textwrap.dedent("""
    import os, sys
    import torch
    torch.set_num_threads(1)
    from actbert.data import store as store_mod
    from actbert.cli.main import main
    real, n = store_mod.atomic_write_bytes, [0]

    def die_mid_write(path, data):  # the 2nd shard: half its bytes reach the temp file, then the process dies
        n[0] += 1
        if n[0] == 2:
            with open(path.parent / f".{path.name}.crash.tmp", "wb") as f:
                f.write(data[: len(data) // 2])
            os._exit(9)
        real(path, data)

    store_mod.atomic_write_bytes = die_mid_write
    sys.exit(main(sys.argv[1:]))
""")


def test_cli_hard_kill_mid_shard_then_resume(corpus, models, tmp_path):
    """A process killed while writing a shard leaves a half-written temp file; the re-run repairs and finishes."""
    net, extractor, model_dir = models
    args = ["extract", str(corpus), "--out", str(tmp_path / "killed"), "--action-net", str(model_dir / "action"),
            "--detector", str(model_dir / "detector"), "--fps", "4", "--stride", "1", "--keyframe-every", "1",
            "--shard-videos", "1", "--no-progress"]
    env = {"PYTHONPATH": str(ROOT / "src") + ":" + str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert list((tmp_path / "killed" / "shards").glob(".*.tmp")), "the crash should leave a partial temp file"
    assert len(FeatureStore(tmp_path / "killed").video_ids()) == 1
    from actbert.cli.main import main

    assert main(args) == 1  # 1: finished, but two inputs failed (empty, corrupt)
    assert not list((tmp_path / "killed" / "shards").glob(".*.tmp"))
    spec = DecodeSpec(fps=4, clip_frames=4, stride_s=1.0, resize=36, crop=32, keyframe_every_s=1.0)
    extract_features(corpus, tmp_path / "clean", net, extractor, spec, progress=False)
    stores_equal(tmp_path / "clean", tmp_path / "killed")


def test_video_list_file(corpus, tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text(f"# my videos\n{corpus / 'vid_a.mp4'}\n\nrelative.mp4\n")
    assert list_videos(lst) == [corpus / "vid_a.mp4", tmp_path / "relative.mp4"]
    assert list_videos(corpus / "vid_b.mp4") == [corpus / "vid_b.mp4"]
    with pytest.raises(FileNotFoundError):
        list_videos(tmp_path / "nope")


def test_same_named_videos_in_different_folders_get_distinct_ids(tmp_path):
    a, b, c = tmp_path / "x" / "a" / "cook.mp4", tmp_path / "x" / "b" / "cook.mp4", tmp_path / "x" / "soup.mp4"
    ids = video_ids([a, b, c, c])  # a file listed twice is one video
    assert ids == {a.resolve(): "a__cook", b.resolve(): "b__cook", c.resolve(): "soup"}
    same_folder = video_ids([tmp_path / "cook.mp4", tmp_path / "cook.mkv"])
    assert sorted(same_folder.values()) == ["cook.mkv", "cook.mp4"]
    assert all(p.is_absolute() for p in ids)
