"""`generate_world`: plan, render, encode, narrate and write every annotation file of a world.

The world is built in a sibling temp folder and renamed into place at the end, so a crash never
leaves a half-written world behind; a world already on disk with the same seed and config is
reused (reruns of the demo cost nothing).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from actbert.world.catalog import catalog_json
from actbert.world.config import WorldConfig, get_world_config
from actbert.world.narration import NarrationLine, narrate_video
from actbert.world.plan import VideoPlan, plan_world
from actbert.world.render import RenderedFrame, render_video
from actbert.world.world import FILES, WORLD_FORMAT, WORLD_VERSION
from actbert.world import writers


@dataclass(frozen=True)
class WorldSummary:
    """What a `generate_world` call produced (or found already on disk)."""

    root: Path
    seed: int
    num_videos: int
    num_train: int
    num_test: int
    total_seconds: float       # of video
    num_steps: int
    num_narration_lines: int
    num_detection_images: int
    num_boxes: int
    seconds_taken: float       # wall time of this call
    reused: bool               # True when an identical world was already there

    def table(self) -> str:
        """A small two-column table for the CLI."""
        rows = [("world", str(self.root)), ("seed", str(self.seed)),
                ("videos (train / test)", f"{self.num_videos} ({self.num_train} / {self.num_test})"),
                ("video seconds", f"{self.total_seconds:.1f}"), ("steps", str(self.num_steps)),
                ("narration lines", str(self.num_narration_lines)),
                ("detection frames / boxes", f"{self.num_detection_images} / {self.num_boxes}"),
                ("generation time", "reused existing world" if self.reused else f"{self.seconds_taken:.1f} s")]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def build_world_json(config: WorldConfig, seed: int, plans: list[VideoPlan],
                     narrations: list[list[NarrationLine]]) -> dict:
    """The content of world.json: seed, config, catalog and per-video ground truth."""
    videos = {}
    for plan, lines in zip(plans, narrations):
        videos[plan.video_id] = {
            "recipe_id": plan.recipe.recipe_id, "task_id": plan.recipe.task_id, "split": plan.split,
            "duration": plan.duration, "fps": plan.fps, "size": [config.height, config.width],
            "num_frames": plan.num_frames,
            "steps": [s.to_json() for s in plan.steps],
            "narration": [line.to_json() for line in lines],
        }
    return {"format": WORLD_FORMAT, "version": WORLD_VERSION, "seed": seed,
            "config": json.loads(json.dumps(config.to_dict())), "catalog": catalog_json(),
            "splits": {name: [v for v, d in videos.items() if d["split"] == name] for name in ("train", "test")},
            "files": FILES, "videos": videos}


def detection_frame_indices(plan: VideoPlan, interval: float) -> set[int]:
    """Frames sampled for detector training: one every `interval` seconds of TRAIN videos only."""
    if plan.split != "train":
        return set()
    step = max(1, int(round(interval * plan.fps)))
    return set(range(step // 2, plan.num_frames, step))


def _existing(out: Path, config: WorldConfig, seed: int) -> dict | None:
    """world.json of an identical, complete world at `out`, else None."""
    path = out / FILES["world"]
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    same = (data.get("format") == WORLD_FORMAT and data.get("version") == WORLD_VERSION and data.get("seed") == seed
            and data.get("config") == json.loads(json.dumps(config.to_dict())))
    complete = same and all((out / "videos" / f"{vid}.mp4").is_file() for vid in data.get("videos", {}))
    return data if complete else None


def _summary(out: Path, data: dict, taken: float, reused: bool) -> WorldSummary:
    videos = data["videos"].values()
    det = data.get("detection", {})
    return WorldSummary(root=out, seed=data["seed"], num_videos=len(data["videos"]),
                        num_train=sum(v["split"] == "train" for v in videos),
                        num_test=sum(v["split"] == "test" for v in videos),
                        total_seconds=sum(v["duration"] for v in videos),
                        num_steps=sum(len(v["steps"]) for v in videos),
                        num_narration_lines=sum(len(v["narration"]) for v in videos),
                        num_detection_images=det.get("images", 0), num_boxes=det.get("annotations", 0),
                        seconds_taken=taken, reused=reused)


def generate_world(out_dir: str | Path, config: WorldConfig | None = None, seed: int = 0,
                   progress: bool = True) -> WorldSummary:
    """Generate a world into `out_dir` (see docs/world.md for its files), or reuse an identical one.

    `out_dir` belongs to the generator: it is replaced as a whole. To protect user data, a
    non-empty `out_dir` that is not a world (no world.json) is refused.
    """
    began = time.perf_counter()
    config = config or get_world_config("quick")
    out = Path(out_dir)
    found = _existing(out, config, seed)
    if found is not None:
        return _summary(out, found, time.perf_counter() - began, reused=True)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / FILES["world"]).exists())):
        raise FileExistsError(f"{out}: exists and is not a generated world; choose another --out")

    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "videos").mkdir(parents=True)
    try:
        plans = plan_world(config, seed)
        detection_frames: list[tuple[str, RenderedFrame]] = []
        for plan in tqdm(plans, desc="world: render + encode", unit="video", disable=not progress):
            kept = render_video(plan, config, seed, tmp / "videos" / f"{plan.video_id}.mp4",
                                detection_frame_indices(plan, config.detection_interval))
            detection_frames.extend((plan.video_id, kept[i]) for i in sorted(kept))
        narrations = [narrate_video(plan, config.narration, seed) for plan in plans]
        world = build_world_json(config, seed, plans, narrations)
        writers.write_narration(tmp / FILES["narration"], world)
        writers.write_youcook2(tmp / FILES["youcook2"], world)
        writers.write_youcook2_val_csv(tmp / FILES["youcook2_val"], world)
        writers.write_coin(tmp / FILES["coin"], world)
        writers.write_crosstask(tmp / FILES["crosstask"], world)
        writers.write_msrvtt_mc(tmp / FILES["msrvtt_mc"], world, seed)
        world["detection"] = writers.write_detection(tmp / "detection", detection_frames)
        # world.json last: its presence marks a complete world
        (tmp / FILES["world"]).write_text(json.dumps(world, indent=1) + "\n", encoding="utf-8")
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _summary(out, world, time.perf_counter() - began, reused=False)
