"""Every annotation file of a world parses per its documented real format (plain json/csv here)."""
from __future__ import annotations

import csv
import json
import math

import pytest


def test_howto100m_narration(tiny_dir, tiny_world):
    data = json.loads((tiny_dir / "narration.json").read_text())
    assert set(data) == set(tiny_world.videos)
    for vid, cap in data.items():
        assert set(cap) == {"start", "end", "text"}
        assert len(cap["start"]) == len(cap["end"]) == len(cap["text"]) >= len(tiny_world.videos[vid].steps)
        assert cap["start"] == sorted(cap["start"])
        duration = tiny_world.videos[vid].duration
        for s, e, t in zip(cap["start"], cap["end"], cap["text"]):
            assert 0 <= s < e <= duration + 1e-6 and t.strip()


def test_youcook2_json(tiny_dir, tiny_world):
    db = json.loads((tiny_dir / "youcook2.json").read_text())["database"]
    assert set(db) == set(tiny_world.videos)
    for vid, v in db.items():
        truth = tiny_world.videos[vid]
        assert set(v) == {"duration", "subset", "recipe_type", "annotations", "video_url"}
        assert v["subset"] == ("validation" if truth.split == "test" else "training")
        assert v["recipe_type"] == str(truth.task_id)
        assert [a["id"] for a in v["annotations"]] == list(range(len(truth.steps)))
        prev_end = -1
        for a, step in zip(v["annotations"], truth.steps):
            s, e = a["segment"]
            assert isinstance(s, int) and isinstance(e, int) and prev_end <= s < e <= math.ceil(v["duration"])
            assert abs(s - step.start) <= 0.5 and a["sentence"] == step.description
            prev_end = e


def test_youcook2_json_matches_the_real_files_keys(tiny_dir, shared_data):
    real = json.loads((shared_data / "youcook2" / "youcookii_annotations_trainval.json").read_text())["database"]
    ours = json.loads((tiny_dir / "youcook2.json").read_text())["database"]
    real_entry, our_entry = next(iter(real.values())), next(iter(ours.values()))
    assert set(real_entry) == set(our_entry)
    assert set(real_entry["annotations"][0]) == set(our_entry["annotations"][0])
    real_header = (shared_data / "youcook2" / "validation_youcook.sample.csv").read_text().splitlines()[0]
    assert (tiny_dir / "youcook2_val.csv").read_text().splitlines()[0] == real_header


def test_youcook2_retrieval_csv(tiny_dir, tiny_world):
    with open(tiny_dir / "youcook2_val.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    test = set(tiny_world.split("test"))
    assert len(rows) == sum(len(tiny_world.videos[v].steps) for v in test)
    for row in rows:
        assert list(row) == ["end", "start", "task", "text", "video_id"]
        assert row["video_id"] in test and int(row["start"]) < int(row["end"])
        assert int(row["task"]) == tiny_world.videos[row["video_id"]].task_id and row["text"]


def test_coin_json(tiny_dir, tiny_world):
    db = json.loads((tiny_dir / "coin.json").read_text())["database"]
    assert set(db) == set(tiny_world.videos)
    for vid, v in db.items():
        truth = tiny_world.videos[vid]
        assert v["subset"] == ("testing" if truth.split == "test" else "training")
        assert isinstance(v["recipe_type"], int) and v["class"].startswith("Make")
        assert len(v["annotation"]) == len(truth.steps)
        for a in v["annotation"]:
            assert a["id"].isdigit() and tiny_world.step_names[int(a["id"])] == a["label"]
            assert 0 <= a["segment"][0] < a["segment"][1] <= v["duration"]


def test_crosstask_release(tiny_dir, tiny_world):
    root = tiny_dir / "crosstask"
    blocks = root.joinpath("tasks_primary.txt").read_text().strip("\n").split("\n\n")
    tasks = {}
    for block in blocks:
        lines = block.split("\n")
        assert len(lines) == 5, block
        steps = lines[4].split(",")
        assert int(lines[3]) == len(steps)
        tasks[lines[0]] = steps
    assert set(tasks) == {str(r.task_id) for r in tiny_world.recipes.values()}
    rows = [line.split(",") for line in root.joinpath("videos.csv").read_text().splitlines()]
    val = [line.split(",") for line in root.joinpath("videos_val.csv").read_text().splitlines()]
    assert all(len(r) == 3 for r in rows + val)
    assert {r[1] for r in rows} == set(tiny_world.videos) and {r[1] for r in val} == set(tiny_world.split("test"))
    for task, vid, _url in rows:
        ann = root / "annotations" / f"{task}_{vid}.csv"
        lines = [line.split(",") for line in ann.read_text().splitlines()]
        assert len(lines) == len(tiny_world.videos[vid].steps)
        for step, start, end in lines:
            assert 1 <= int(step) <= len(tasks[task]) and float(start) < float(end)
            assert tasks[task][int(step) - 1] == tiny_world.videos[vid].steps[[l[0] for l in lines].index(step)].description


def test_msrvtt_multiple_choice(tiny_dir, tiny_world):
    questions = [json.loads(line) for line in (tiny_dir / "msrvtt_mc.jsonl").read_text().splitlines()]
    assert [q["clip_name"] for q in questions] == tiny_world.split("test")
    for q in questions:
        assert {"qid", "clip_name", "answer", "options"} <= set(q)
        options, answer = q["options"], int(q["answer"])
        assert len(options) == 5 == len(set(options)) and 0 <= answer < 5
        title = tiny_world.recipes[tiny_world.videos[q["clip_name"]].recipe_id].title
        own = f"making {title}:"
        assert options[answer].startswith(own)
        assert not any(o.startswith(own) for i, o in enumerate(options) if i != answer)
        steps = {s.description for s in tiny_world.videos[q["clip_name"]].steps}
        assert all(part in steps for part in options[answer][len(own) + 1:].split(" and then "))


def test_msrvtt_mc_keys_match_the_real_file(tiny_dir, shared_data):
    real = json.loads((shared_data / "msrvtt" / "msrvtt_mc_test.sample.jsonl").read_text().splitlines()[0])
    ours = json.loads((tiny_dir / "msrvtt_mc.jsonl").read_text().splitlines()[0])
    assert set(ours) <= set(real) and isinstance(ours["answer"], str) == isinstance(real["answer"], str)


def test_coco_detection(tiny_dir, tiny_world):
    coco = json.loads((tiny_dir / "detection" / "coco.json").read_text())
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    assert sorted(cats) == list(range(1, len(cats) + 1)) and set(cats.values()) == set(tiny_world.objects)
    images = {im["id"]: im for im in coco["images"]}
    assert images and all((tiny_dir / "detection" / im["file_name"]).is_file() for im in images.values())
    assert {im["video_id"] for im in images.values()} <= set(tiny_world.split("train"))
    ids = [a["id"] for a in coco["annotations"]]
    assert len(ids) == len(set(ids))
    for a in coco["annotations"]:
        im = images[a["image_id"]]
        x, y, w, h = a["bbox"]
        assert a["category_id"] in cats and a["iscrowd"] == 0 and a["area"] == w * h
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= im["width"] and y + h <= im["height"]
    assert coco["info"]["annotations"] == len(coco["annotations"])


@pytest.mark.parametrize("name", ["youcook2.json", "coin.json", "narration.json", "world.json"])
def test_files_are_valid_utf8_json(tiny_dir, name):
    json.loads((tiny_dir / name).read_bytes().decode("utf-8"))
