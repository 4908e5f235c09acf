"""Feature store: round trip, resume after a killed writer, corruption reports, rank/worker splits."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal

import numpy as np
import pytest

from actbert.bench.store import make_synthetic_video
from actbert.data.store import FeatureStore, ShardCorruptError, StoreError, StoreWriter, reindex

DIMS = dict(action_dim=16, region_dim=24, num_classes=7, num_frames=3, boxes=4)


def vids(n, seed=0, prefix="v", **kw):
    rng = np.random.default_rng(seed)
    return [make_synthetic_video(f"{prefix}{i:03d}", rng, num_clips=int(rng.integers(0, 6)), **{**DIMS, **kw})
            for i in range(n)]


def write(root, videos, part="part000", shard_videos=4):
    with StoreWriter(root, part=part, shard_videos=shard_videos, meta={"extractor": "test"}) as w:
        for v in videos:
            w.add(v)
    return w


def test_round_trip_float16_on_disk(tmp_path):
    videos = vids(10)
    write(tmp_path, videos)
    store = FeatureStore(tmp_path)
    assert len(store) == 10 and store.video_ids() == [v.video_id for v in videos]
    assert len(store.shards()) == 3 and "v003" in store and "nope" not in store
    assert store.meta["action_feat_dim"] == 16 and store.meta["extractor"] == "test"
    for v in videos:
        got = store[v.video_id]
        assert got.action.dtype == np.float32 and got.action.shape == v.action.shape
        np.testing.assert_allclose(got.action, v.action, rtol=1e-3, atol=1e-3)  # float16 on disk
        np.testing.assert_array_equal(got.action_times, v.action_times)        # float32 stays exact
        np.testing.assert_array_equal(got.region_boxes, v.region_boxes)
        np.testing.assert_array_equal(got.region_valid, v.region_valid)
        assert got.image_size == v.image_size and got.duration == v.duration
    raw = store.read("v000", ("region", "frame_times"))
    assert raw["region"].dtype == np.float16 and raw["frame_times"].dtype == np.float32
    with pytest.raises(KeyError, match=r"'nope'.*feature store"):
        store["nope"]
    assert store.verify()["errors"] == []


def test_empty_streams_allowed(tmp_path):
    v = make_synthetic_video("empty", np.random.default_rng(0), num_clips=0, **{**DIMS, "num_frames": 0})
    write(tmp_path, [v])
    got = FeatureStore(tmp_path)["empty"]
    assert got.action.shape == (0, 16) and got.region.shape == (0, 4, 24)


@pytest.mark.parametrize("field,value,msg", [
    ("action", np.nan, "non-finite"), ("region_cls", None, "sums to"), ("frame_times", None, "not increasing"),
    ("action", 1e6, "overflows float16")])
def test_bad_values_name_video_and_field(tmp_path, field, value, msg):
    v = vids(1)[0]
    arr = getattr(v, field)
    if field == "frame_times":
        arr[:] = arr[::-1].copy()
    elif field == "region_cls":
        arr[0, 0] *= 3
        v.region_valid[0, 0] = True
    else:
        arr.flat[0] = value
    with StoreWriter(tmp_path) as w, pytest.raises(ValueError, match=rf"'v000', field '{field}'.*{msg}"):
        w.add(v)


def test_dimension_mismatch_raises_naming_field(tmp_path):
    write(tmp_path, vids(1))
    other = vids(1, prefix="w", region_dim=32)[0]
    with StoreWriter(tmp_path, part="p1") as w, pytest.raises(ValueError, match=r"field 'region'.*region_feat_dim"):
        w.add(other)
    with pytest.raises(StoreError, match="extractor"):
        StoreWriter(tmp_path, part="p2", meta={"extractor": "other"})


def _killed_writer(root, n):
    w = StoreWriter(root, part="part000", shard_videos=4)
    for v in vids(n):
        w.add(v)
    with open(os.path.join(root, "shards", ".part000-00009.safetensors.x.tmp"), "wb") as f:
        f.write(b"half a shard")  # what a kill in the middle of a shard write leaves behind
    os.kill(os.getpid(), signal.SIGKILL)


def test_resume_after_kill(tmp_path):
    p = mp.get_context("fork").Process(target=_killed_writer, args=(str(tmp_path), 10))
    p.start()
    p.join()
    assert p.exitcode == -signal.SIGKILL
    store = FeatureStore(tmp_path)  # the two finished shards are readable, the buffer of 2 is lost
    assert len(store) == 8
    w = StoreWriter(tmp_path, part="part000", shard_videos=4)
    assert any("unfinished" in r for r in w.repairs)
    assert not list((tmp_path / "shards").glob(".*.tmp"))
    done = w.done_ids()
    assert done == {f"v{i:03d}" for i in range(8)}
    w.record_failure("v008", "/videos/v008.mp4", "decode error")
    for v in vids(10):
        if v.video_id not in done:
            w.add(v)
    assert w.add(vids(1)[0]) is False and w.stats["duplicates_skipped"] == 1
    w.close()
    store = FeatureStore(tmp_path)
    assert len(store) == 10 and store.failures() == []  # v008 failed once, then succeeded


def test_failures_reported_and_retried(tmp_path):
    with StoreWriter(tmp_path) as w:
        w.record_failure("bad", "/x/bad.mp4", "no video stream")
        assert "bad" not in w.done_ids() and w.failed_ids() == {"bad"}
    with open(tmp_path / "failures-part000.jsonl", "a") as f:
        f.write('{"video_id": "cut')  # a record cut short by a kill is skipped, not fatal
    assert [r["reason"] for r in FeatureStore(tmp_path).failures()] == ["no video stream"]


def test_one_writer_per_part(tmp_path):
    with StoreWriter(tmp_path, part="a"):
        with pytest.raises(StoreError, match="another process"):
            StoreWriter(tmp_path, part="a")
        StoreWriter(tmp_path, part="b").close()  # other parts never wait


def test_parts_write_independently_and_done_ids_see_all(tmp_path):
    write(tmp_path, vids(5, prefix="a"), part="r0")
    write(tmp_path, vids(5, prefix="b"), part="r1")
    assert len(StoreWriter(tmp_path, part="r2").done_ids()) == 10
    assert len(FeatureStore(tmp_path)) == 10


def test_truncated_shard_names_file_and_video(tmp_path):
    write(tmp_path, vids(8))
    shard = tmp_path / "shards" / "part000-00001.safetensors"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) - 100])
    with pytest.raises(ShardCorruptError, match=r"part000-00001.*'v00[4-7]'.*truncated"):
        FeatureStore(tmp_path)
    store = FeatureStore(tmp_path, on_corrupt="skip")
    assert len(store) == 4 and store.problems[0]["file"].endswith("part000-00001.safetensors")
    w = StoreWriter(tmp_path)  # the owning writer moves it aside so its videos get re-extracted
    assert any("corrupt" in r for r in w.repairs) and len(w.done_ids()) == 4
    w.close()


def test_bitflip_found_by_verify(tmp_path):
    write(tmp_path, vids(4))
    shard = tmp_path / "shards" / "part000-00000.safetensors"
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0xFF
    shard.write_bytes(bytes(data))
    reindex(tmp_path)
    report = FeatureStore(tmp_path).verify()
    assert len(report["errors"]) == 1 and "CRC32" in report["errors"][0]["error"]
    with pytest.raises(ShardCorruptError, match="part000-00000"):
        FeatureStore(tmp_path).verify(raise_on_error=True)


def test_stale_index_rebuilt_and_duplicates_counted(tmp_path):
    late = StoreWriter(tmp_path, part="late")  # opened before part000 wrote: a concurrent writer
    write(tmp_path, vids(4))
    (tmp_path / "index" / "part000.json").write_text("{not json")
    assert len(FeatureStore(tmp_path)) == 4
    for v in vids(2):  # the same ids written again by the other part
        late.add(v)
    late.close()
    store = FeatureStore(tmp_path)
    assert len(store) == 4 and len(store.duplicates) == 2
    assert sum(1 for _ in store.iter_videos()) == 4
    json.loads((tmp_path / "index" / "late.json").read_text())


def test_split_over_ranks_and_workers_is_disjoint_and_complete(tmp_path):
    write(tmp_path, vids(23), shard_videos=2)
    store = FeatureStore(tmp_path)
    for seed in (None, 3):
        seen = [v.video_id for r in range(2) for k in range(3)
                for v in store.iter_videos(rank=r, world_size=2, worker=k, num_workers=3, seed=seed)]
        assert sorted(seen) == sorted(store.video_ids())


def test_iter_videos_picks_dataloader_worker(tmp_path):
    import torch

    write(tmp_path, vids(9), shard_videos=2)

    class DS(torch.utils.data.IterableDataset):
        def __iter__(self):
            return (v.video_id for v in FeatureStore(tmp_path).iter_videos())

    got = list(torch.utils.data.DataLoader(DS(), num_workers=2, batch_size=None))
    assert sorted(got) == [f"v{i:03d}" for i in range(9)]
