"""Narration is ASR-like but always carries each step's verb where the step happens."""
from __future__ import annotations

import numpy as np

from actbert.world.config import NarrationConfig
from actbert.world.narration import _asr_noise, gerund, narrate_video


def _verb_forms(world, verb: str) -> set[str]:
    words = {verb, *world.verbs[verb]}
    return words | {gerund(w) for w in words}


def test_every_step_is_narrated_with_its_verb_or_a_synonym_while_it_happens(tiny_world):
    for vid, video in tiny_world.videos.items():
        for step in video.steps:
            forms = _verb_forms(tiny_world, step.verb)
            overlapping = [n for n in video.narration if n.start < step.end and n.end > step.start]
            assert any(forms & set(n.text.split()) for n in overlapping), (vid, step.description)
            assert any(n.step_index == step.step_index and n.kind == "step" for n in overlapping)


def test_narration_is_asr_like(tiny_world):
    lines = [n for v in tiny_world.videos.values() for n in v.narration]
    kinds = {n.kind for n in lines}
    assert {"step", "chatter"} <= kinds
    starts_before = [n for v in tiny_world.videos.values() for n in v.narration
                     if n.kind == "step" and n.start < v.steps[[s.step_index for s in v.steps].index(n.step_index)].start]
    assert starts_before, "some lines should start before their step (timing jitter)"
    for v in tiny_world.videos.values():  # caption lines last 2-5 s unless cut by the end of the video
        assert all(1.98 <= n.end - n.start <= 5.02 for n in v.narration if n.kind == "step" and n.end < v.duration)


def test_gerunds():
    assert [gerund(v) for v in ("cut", "slice", "fry", "stir", "rinse", "peel")] == \
        ["cutting", "slicing", "frying", "stirring", "rinsing", "peeling"]


def test_asr_noise_never_touches_the_protected_verb():
    cfg = NarrationConfig(word_error_prob=1.0, filler_prob=1.0)
    rng = np.random.default_rng(0)
    words = "now slice the tomato into the bowl".split()
    for _ in range(200):
        assert "slice" in _asr_noise(words, 1, rng, cfg).split()


def test_narration_is_deterministic(tiny_world):
    from actbert.world.catalog import RECIPE_BY_ID
    from actbert.world.plan import plan_video

    vid, truth = next(iter(tiny_world.videos.items()))
    plan = plan_video(int(vid[3:]), RECIPE_BY_ID[truth.recipe_id], truth.split, tiny_world.config, tiny_world.seed)
    a = narrate_video(plan, tiny_world.config.narration, tiny_world.seed)
    b = narrate_video(plan, tiny_world.config.narration, tiny_world.seed)
    assert a == b and [n.text for n in a] == [n.text for n in truth.narration]
