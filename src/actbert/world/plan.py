"""Video plans: which recipe each video shows, its split, and the timeline of its steps.

Every random choice comes from `rng_for(seed, video_index, purpose)`, an independent stream per
(video, purpose), so changing how narration is drawn never changes the videos and vice versa.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actbert.world.catalog import RECIPES, Recipe, global_step_ids
from actbert.world.config import WorldConfig

PURPOSES = {"plan": 1, "scene": 2, "frames": 3, "narration": 4, "questions": 5, "split": 6}


def rng_for(seed: int, index: int, purpose: str) -> np.random.Generator:
    """An independent, reproducible random stream for one (video, purpose)."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.default_rng([int(seed), int(index) + 1, PURPOSES[purpose]])  # index -1 = world-level


@dataclass(frozen=True)
class PlannedStep:
    """One step as it happens in one video (times in seconds, on the frame grid)."""

    step_index: int          # 0-based index within the recipe (skipped optional steps leave gaps)
    verb: str
    object: str
    target: str | None
    start: float
    end: float
    description: str
    global_step_id: int

    def to_json(self) -> dict:
        return {"step_index": self.step_index, "verb": self.verb, "object": self.object, "target": self.target,
                "start": self.start, "end": self.end, "description": self.description,
                "global_step_id": self.global_step_id}


@dataclass(frozen=True)
class VideoPlan:
    """What one video shows, before it is rendered."""

    index: int
    video_id: str
    recipe: Recipe
    split: str               # "train" | "test"
    fps: int
    num_frames: int
    steps: tuple[PlannedStep, ...]

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


def video_id_for(index: int) -> str:
    """Video ids have no underscore, so `<task>_<video>.csv` (CrossTask) splits unambiguously."""
    return f"vid{index:04d}"


def assign_recipes(config: WorldConfig, seed: int) -> list[Recipe]:
    """Recipes in round-robin over a seeded order, so every recipe gets nearly as many videos."""
    rng = rng_for(seed, -1, "plan")
    order = [RECIPES[i] for i in rng.permutation(len(RECIPES))]
    return [order[i % len(order)] for i in range(config.num_videos)]


def assign_splits(recipes: list[Recipe], config: WorldConfig, seed: int) -> list[str]:
    """About `test_fraction` of the videos go to test, spread over as many recipes as possible,
    never taking a recipe's last training video (so every tested recipe was also seen in training)."""
    rng = rng_for(seed, -1, "split")
    n = len(recipes)
    n_test = max(1, int(round(config.test_fraction * n)))
    by_recipe: dict[str, list[int]] = {}
    for i, recipe in enumerate(recipes):
        by_recipe.setdefault(recipe.recipe_id, []).append(i)
    pools = [list(rng.permutation(v)) for _, v in sorted(by_recipe.items())]
    order = list(rng.permutation(len(pools)))
    test: set[int] = set()
    while len(test) < n_test:
        progressed = False
        for p in order:
            if len(test) < n_test and len(pools[p]) >= 2:
                test.add(int(pools[p].pop()))
                progressed = True
        if not progressed:  # every recipe is down to one video: allow recipes seen only in test
            rest = [int(i) for pool in pools for i in pool if int(i) not in test]
            test.update(rest[: n_test - len(test)])
            break
    return ["test" if i in test else "train" for i in range(n)]


def plan_video(index: int, recipe: Recipe, split: str, config: WorldConfig, seed: int) -> VideoPlan:
    """Choose the optional steps, the video length, step lengths and idle gaps."""
    rng = rng_for(seed, index, "plan")
    chosen = [(i, s) for i, s in enumerate(recipe.steps)
              if not (s.optional and rng.random() < config.skip_optional_prob)]
    k = len(chosen)
    fps = config.fps
    target = rng.uniform(config.min_duration, config.max_duration)
    steps_len = rng.uniform(config.step_seconds[0], config.step_seconds[1], size=k)
    gap_min = config.min_idle_seconds
    budget = target - (k + 1) * gap_min
    if steps_len.sum() > budget:  # the recipe is long for this duration: shorten steps, keep gaps
        steps_len *= max(budget, 2.0 * k) / steps_len.sum()
    spare = max(0.0, target - steps_len.sum() - (k + 1) * gap_min)
    gaps = gap_min + rng.dirichlet(np.full(k + 1, 2.0)) * spare
    step_ids = global_step_ids()
    steps = []
    frame = 0
    for (i, step), length, gap in zip(chosen, steps_len, gaps[:-1]):
        # align every boundary to the frame grid so frame-level and second-level truth agree
        start_f = frame + max(int(round(gap * fps)), int(np.ceil(gap_min * fps)))
        end_f = start_f + max(int(round(length * fps)), 2 * fps)
        steps.append(PlannedStep(i, step.verb, step.object, step.target, start_f / fps, end_f / fps,
                                 step.description, step_ids[step.key]))
        frame = end_f
    num_frames = frame + max(int(round(gaps[-1] * fps)), int(np.ceil(gap_min * fps)))
    return VideoPlan(index, video_id_for(index), recipe, split, fps, num_frames, tuple(steps))


def plan_world(config: WorldConfig, seed: int) -> list[VideoPlan]:
    """Plans of all videos of a world."""
    recipes = assign_recipes(config, seed)
    splits = assign_splits(recipes, config, seed)
    return [plan_video(i, r, s, config, seed) for i, (r, s) in enumerate(zip(recipes, splits))]
