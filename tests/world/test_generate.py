"""Determinism, reuse, atomic replacement and the typed loader."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import pytest

from actbert.world import WorldConfig, generate_world, get_world_config, load_world


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(tiny_dir, tiny_config, tmp_path):
    again = tmp_path / "again"
    generate_world(again, tiny_config, seed=0, progress=False)
    first, second = _digests(tiny_dir), _digests(again)
    assert first.keys() == second.keys()
    differing = [k for k in first if first[k] != second[k]]
    assert differing == []
    assert any(k.startswith("videos/") for k in first)


def test_different_seed_gives_a_different_world(tiny_dir, tiny_config, tmp_path):
    other = tmp_path / "other"
    generate_world(other, tiny_config, seed=1, progress=False)
    a, b = _digests(tiny_dir), _digests(other)
    assert a["world.json"] != b["world.json"]
    shared_videos = [k for k in a if k.startswith("videos/") and k in b]
    assert shared_videos and all(a[k] != b[k] for k in shared_videos)


def test_rerun_with_same_seed_and_config_is_reused(tiny_dir, tiny_config):
    before = (tiny_dir / "world.json").stat().st_mtime_ns
    began = time.perf_counter()
    summary = generate_world(tiny_dir, tiny_config, seed=0, progress=False)
    assert summary.reused and time.perf_counter() - began < 1.0
    assert (tiny_dir / "world.json").stat().st_mtime_ns == before
    assert summary.num_videos == tiny_config.num_videos and summary.num_boxes > 0


def test_changed_config_regenerates_in_place(tmp_path):
    cfg = dataclasses.replace(get_world_config("tiny"), num_videos=2, min_duration=8.0, max_duration=9.0)
    out = tmp_path / "w"
    generate_world(out, cfg, seed=3, progress=False)
    summary = generate_world(out, dataclasses.replace(cfg, num_videos=3), seed=3, progress=False)
    assert not summary.reused and summary.num_videos == 3
    assert len(list((out / "videos").glob("*.mp4"))) == 3
    assert not list(tmp_path.glob(".w.*")), "temp folders must be cleaned up"


def test_refuses_to_replace_a_folder_that_is_not_a_world(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not a generated world"):
        generate_world(tmp_path / "mine", get_world_config("tiny"), progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"


def test_config_validation_and_round_trip():
    cfg = get_world_config("default")
    assert WorldConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="even sides"):
        WorldConfig(height=111)
    with pytest.raises(ValueError, match="unknown WorldConfig fields"):
        WorldConfig.from_dict({"num_vidoes": 3})
    with pytest.raises(KeyError, match="unknown world preset"):
        get_world_config("huge")


def test_presets_have_about_70_30_splits():
    from actbert.world.plan import plan_world

    for name, (lo, hi) in {"quick": (20, 30), "default": (30, 45)}.items():
        plans = plan_world(get_world_config(name), seed=0)
        test = sum(p.split == "test" for p in plans)
        assert 0.2 <= test / len(plans) <= 0.4, name
        assert all(lo - 1 <= p.duration <= hi + 2 for p in plans), name
        # every recipe that is tested was also seen in training
        train_recipes = {p.recipe.recipe_id for p in plans if p.split == "train"}
        assert {p.recipe.recipe_id for p in plans if p.split == "test"} <= train_recipes


def test_load_world_gives_typed_truth(tiny_world, tiny_config):
    assert tiny_world.seed == 0 and tiny_world.config == tiny_config
    assert set(tiny_world.split("train")) | set(tiny_world.split("test")) == set(tiny_world.videos)
    assert tiny_world.split("test") and tiny_world.split("train")
    for vid, video in tiny_world.videos.items():
        assert tiny_world.video_path(vid).is_file()
        assert video.num_frames == round(video.duration * video.fps)
        assert video.size == (tiny_config.height, tiny_config.width)
        indices = [s.step_index for s in video.steps]
        assert indices == sorted(indices) and len(set(indices)) == len(indices)
        for a, b in zip(video.steps, video.steps[1:]):
            assert b.start - a.end >= tiny_config.min_idle_seconds - 1e-9
        first = video.steps[0]
        assert video.step_at((first.start + first.end) / 2) == first
        assert video.step_at(first.start - 0.5) is None
        recipe = tiny_world.recipes[video.recipe_id]
        assert all(recipe.steps[s.step_index]["verb"] == s.verb for s in video.steps)
    assert tiny_world.step_names and min(tiny_world.step_names) == 1


def test_load_world_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="world.json"):
        load_world(tmp_path)
    (tmp_path / "world.json").write_text("{not json")
    with pytest.raises(ValueError, match="world.json"):
        load_world(tmp_path)
