"""Ground truth written in the real benchmark formats (see shared/data/README.md), so the demo reads
the world with the same readers as real data.

Every writer takes the `world.json` dictionary (`generate.build_world_json`) and writes one file
(or folder) under the world directory; none of them draws anything random except the multiple
choice questions, which take their own seeded stream.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from actbert.world.catalog import CATEGORY_ID, OBJECTS, RECIPE_BY_ID
from actbert.world.plan import rng_for
from actbert.world.render import RenderedFrame

NUM_OPTIONS = 5


def _dump_json(path: Path, data, indent: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent, sort_keys=False) + "\n", encoding="utf-8")


def _test_ids(world: dict) -> list[str]:
    return [vid for vid, v in world["videos"].items() if v["split"] == "test"]


def write_narration(path: Path, world: dict) -> None:
    """HowTo100M raw_caption.json: {video_id: {"start": [...], "end": [...], "text": [...]}}."""
    out = {vid: {"start": [line["start"] for line in v["narration"]],
                 "end": [line["end"] for line in v["narration"]],
                 "text": [line["text"] for line in v["narration"]]} for vid, v in world["videos"].items()}
    _dump_json(path, out)


def whole_second_segment(start: float, end: float) -> list[int]:
    """YouCook2 segments are whole seconds; idle gaps of >= 1 s guarantee rounded steps never overlap."""
    s = int(round(start))
    return [s, max(s + 1, int(round(end)))]


def write_youcook2(path: Path, world: dict) -> None:
    """YouCook2 annotations json; test videos are the "validation" subset."""
    database = {}
    for vid, v in world["videos"].items():
        database[vid] = {
            "duration": v["duration"],
            "subset": "validation" if v["split"] == "test" else "training",
            "recipe_type": str(v["task_id"]),
            "annotations": [{"segment": whole_second_segment(s["start"], s["end"]), "id": k, "sentence": s["description"]}
                            for k, s in enumerate(v["steps"])],
            "video_url": "",
        }
    _dump_json(path, {"database": database})


def write_youcook2_val_csv(path: Path, world: dict) -> None:
    """HowTo100M / MIL-NCE retrieval csv (end,start,task,text,video_id): one row per step of each test video."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["end", "start", "task", "text", "video_id"])
    for vid in _test_ids(world):
        v = world["videos"][vid]
        for s in v["steps"]:
            start, end = whole_second_segment(s["start"], s["end"])
            writer.writerow([end, start, v["task_id"], s["description"], vid])
    path.write_text(buf.getvalue(), encoding="utf-8")


def coin_class(title: str) -> str:
    """COIN class names are CamelCase task names: "a tomato salad" -> "MakeATomatoSalad"."""
    return "Make" + "".join(w.capitalize() for w in title.split())


def write_coin(path: Path, world: dict) -> None:
    """COIN.json; step ids are the world's global step ids (1-based), subsets training/testing."""
    database = {}
    for vid, v in world["videos"].items():
        recipe = RECIPE_BY_ID[v["recipe_id"]]
        database[vid] = {
            "duration": v["duration"],
            "class": coin_class(recipe.title),
            "recipe_type": v["task_id"],
            "subset": "testing" if v["split"] == "test" else "training",
            "annotation": [{"id": str(s["global_step_id"]), "segment": [s["start"], s["end"]], "label": s["description"]}
                           for s in v["steps"]],
            "video_url": "",
        }
    _dump_json(path, {"database": database})


def write_crosstask(folder: Path, world: dict) -> None:
    """CrossTask release: tasks_primary.txt, videos.csv (all videos), videos_val.csv (the test videos),
    annotations/<task>_<video>.csv with 1-based step numbers in the task's order."""
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    blocks = []
    for recipe in world["catalog"]["recipes"]:
        steps = [s["description"] for s in recipe["steps"]]
        if any("," in s for s in steps):
            raise ValueError(f"recipe {recipe['recipe_id']}: a step description contains a comma")
        # line 3 is the wikiHow url in the real release; the world has none, so it names the recipe
        blocks.append(f"{recipe['task_id']}\nMake {recipe['title']}\nworld:{recipe['recipe_id']}\n"
                      f"{len(steps)}\n{','.join(steps)}\n")
    (folder / "tasks_primary.txt").write_text("\n".join(blocks) + "\n", encoding="utf-8")
    all_rows, val_rows = [], []
    for vid, v in world["videos"].items():
        row = f"{v['task_id']},{vid},videos/{vid}.mp4\n"
        all_rows.append(row)
        if v["split"] == "test":
            val_rows.append(row)
        lines = [f"{s['step_index'] + 1},{s['start']:.2f},{s['end']:.2f}\n" for s in v["steps"]]
        (folder / "annotations" / f"{v['task_id']}_{vid}.csv").write_text("".join(lines), encoding="utf-8")
    (folder / "videos.csv").write_text("".join(all_rows), encoding="utf-8")
    (folder / "videos_val.csv").write_text("".join(val_rows), encoding="utf-8")


def recipe_caption(title: str, descriptions: list[str]) -> str:
    """A one-sentence summary of a video: the dish and two of its steps in order."""
    return f"making {title}: {descriptions[0]} and then {descriptions[1]}"


def write_msrvtt_mc(path: Path, world: dict, seed: int) -> None:
    """MSR-VTT multiple choice jsonl: one question per test video (the clip is the whole video).

    The true caption names the video's dish and two of the steps it shows; each of the 4 distractors
    does the same for a different recipe (different dish, its own steps), so no distractor is true.
    """
    recipes = world["catalog"]["recipes"]
    if len(recipes) < NUM_OPTIONS:
        raise ValueError(f"multiple choice needs {NUM_OPTIONS} recipes, the catalog has {len(recipes)}")
    lines = []
    for q, vid in enumerate(_test_ids(world)):
        v = world["videos"][vid]
        rng = rng_for(seed, q, "questions")
        own = [s["description"] for s in v["steps"]]
        pick = sorted(rng.choice(len(own), size=2, replace=False))
        options = [recipe_caption(RECIPE_BY_ID[v["recipe_id"]].title, [own[i] for i in pick])]
        others = [r for r in recipes if r["recipe_id"] != v["recipe_id"]]
        for j in rng.choice(len(others), size=NUM_OPTIONS - 1, replace=False):
            r = others[int(j)]
            steps = [s["description"] for s in r["steps"] if not s["optional"]]
            pick = sorted(rng.choice(len(steps), size=2, replace=False))
            options.append(recipe_caption(r["title"], [steps[i] for i in pick]))
        order = rng.permutation(NUM_OPTIONS)
        answer = int(np.flatnonzero(order == 0)[0])
        lines.append(json.dumps({"qid": f"mc{q}", "clip_name": vid, "answer": str(answer),
                                 "options": [options[int(i)] for i in order]}) + "\n")
    path.write_text("".join(lines), encoding="utf-8")


def write_detection(folder: Path, frames: list[tuple[str, RenderedFrame]], min_side: int = 2) -> dict:
    """COCO-style boxes on frames of the training videos; frames saved as PNG under folder/frames.

    Boxes thinner than `min_side` pixels (an object almost entirely out of the frame) are left out
    and counted in the returned stats (also stored in coco.json's "info")."""
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    skipped = 0
    for image_id, (vid, frame) in enumerate(frames, start=1):
        name = f"frames/{vid}_{frame.index:05d}.png"
        Image.fromarray(frame.image).save(folder / name, compress_level=6)
        h, w = frame.image.shape[:2]
        images.append({"id": image_id, "file_name": name, "width": w, "height": h,
                       "video_id": vid, "frame_index": frame.index, "time": frame.time})
        for obj, (x0, y0, x1, y1) in sorted(frame.boxes.items()):
            if x1 - x0 < min_side or y1 - y0 < min_side:
                skipped += 1
                continue
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": CATEGORY_ID[obj],
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    stats = {"images": len(images), "annotations": len(annotations), "skipped_tiny_boxes": skipped}
    _dump_json(folder / "coco.json", {
        "info": {"description": "actbert synthetic world: every visible object boxed", **stats},
        "images": images, "annotations": annotations,
        "categories": [{"id": CATEGORY_ID[o.name], "name": o.name, "supercategory": o.role} for o in OBJECTS],
    })
    return stats
