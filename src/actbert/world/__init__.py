"""The embedded world: deterministic, narrated instructional cooking videos with ground truth.

    from actbert.world import generate_world, get_world_config, load_world
    summary = generate_world("out/world", get_world_config("quick"), seed=0)
    world = load_world("out/world")

See docs/world.md for what a world contains and the files it writes.
"""
from __future__ import annotations

from actbert.world.config import PRESETS, NarrationConfig, WorldConfig, get_world_config
from actbert.world.generate import WorldSummary, generate_world
from actbert.world.world import FILES, NarrationTruth, RecipeTruth, StepTruth, VideoTruth, World, load_world

__all__ = ["PRESETS", "NarrationConfig", "WorldConfig", "get_world_config", "WorldSummary", "generate_world",
           "FILES", "NarrationTruth", "RecipeTruth", "StepTruth", "VideoTruth", "World", "load_world"]
