"""Typed, read-only access to a generated world (`load_world(dir)`), for the demo and the tests."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from actbert.world.config import WorldConfig

WORLD_FORMAT = "actbert-world"
WORLD_VERSION = 1

# names of the files a world directory holds (relative to it): a contract the demo relies on
FILES = {
    "world": "world.json",
    "videos": "videos",
    "narration": "narration.json",
    "youcook2": "youcook2.json",
    "youcook2_val": "youcook2_val.csv",
    "coin": "coin.json",
    "crosstask": "crosstask",
    "msrvtt_mc": "msrvtt_mc.jsonl",
    "detection": "detection/coco.json",
}


@dataclass(frozen=True)
class StepTruth:
    """A step as it happens in a video; times in seconds."""

    step_index: int          # 0-based within the recipe
    verb: str
    object: str
    target: str | None
    start: float
    end: float
    description: str
    global_step_id: int      # 1-based id shared by identical steps of all recipes (the COIN "id")


@dataclass(frozen=True)
class NarrationTruth:
    start: float
    end: float
    text: str
    step_index: int | None   # the step this line narrates; None for chatter / intro / outro
    kind: str


@dataclass(frozen=True)
class VideoTruth:
    video_id: str
    recipe_id: str
    task_id: int
    split: str               # "train" | "test"
    duration: float
    fps: int
    size: tuple[int, int]    # (height, width)
    num_frames: int
    steps: tuple[StepTruth, ...]
    narration: tuple[NarrationTruth, ...]

    def step_at(self, t: float) -> StepTruth | None:
        """The step happening at time t, or None during idle time."""
        return next((s for s in self.steps if s.start <= t < s.end), None)


@dataclass(frozen=True)
class RecipeTruth:
    recipe_id: str
    task_id: int
    title: str
    steps: tuple[dict, ...]  # {step_index, verb, object, target, optional, description, global_step_id}


@dataclass(frozen=True)
class World:
    """A generated world on disk."""

    root: Path
    seed: int
    config: WorldConfig
    verbs: dict[str, tuple[str, ...]]        # verb -> synonyms
    objects: dict[str, int]                  # object / category name -> COCO category id
    recipes: dict[str, RecipeTruth]
    videos: dict[str, VideoTruth]
    step_names: dict[int, str]               # global step id -> description

    def path(self, key: str) -> Path:
        """Path of one of the world's files by its key in `FILES` ("coin", "crosstask", ...)."""
        return self.root / FILES[key]

    def video_path(self, video_id: str) -> Path:
        return self.root / "videos" / f"{video_id}.mp4"

    def split(self, name: str) -> list[str]:
        """Video ids of a split ("train" or "test"), in id order."""
        if name not in {"train", "test"}:
            raise ValueError(f"unknown split {name!r}")
        return [vid for vid, v in self.videos.items() if v.split == name]


def load_world(root: str | Path) -> World:
    """Read `root/world.json`; a missing or foreign file gives an error naming it."""
    root = Path(root)
    path = root / FILES["world"]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no world here (generate one with `actbert world --out {root}`)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if data.get("format") != WORLD_FORMAT or data.get("version") != WORLD_VERSION:
        raise ValueError(f"{path}: format {data.get('format')!r} v{data.get('version')!r}, "
                         f"expected {WORLD_FORMAT!r} v{WORLD_VERSION}")
    catalog = data["catalog"]
    videos = {}
    for vid, v in data["videos"].items():
        videos[vid] = VideoTruth(
            video_id=vid, recipe_id=v["recipe_id"], task_id=v["task_id"], split=v["split"], duration=v["duration"],
            fps=v["fps"], size=tuple(v["size"]), num_frames=v["num_frames"],  # type: ignore[arg-type]
            steps=tuple(StepTruth(**s) for s in v["steps"]),
            narration=tuple(NarrationTruth(**n) for n in v["narration"]))
    recipes = {r["recipe_id"]: RecipeTruth(r["recipe_id"], r["task_id"], r["title"], tuple(r["steps"]))
               for r in catalog["recipes"]}
    step_names = {s["global_step_id"]: s["description"] for r in catalog["recipes"] for s in r["steps"]}
    return World(root=root, seed=data["seed"], config=WorldConfig.from_dict(data["config"]),
                 verbs={v["name"]: tuple(v["synonyms"]) for v in catalog["verbs"]},
                 objects={o["name"]: o["category_id"] for o in catalog["objects"]},
                 recipes=recipes, videos=videos, step_names=dict(sorted(step_names.items())))
