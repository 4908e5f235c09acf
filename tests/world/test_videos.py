"""Videos decode as planned, boxes match what is drawn, and verbs leave a motion signature."""
from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from actbert.world import get_world_config
from actbert.world.catalog import RECIPE_BY_ID, VERB_BY_NAME
from actbert.world.plan import plan_video, rng_for
from actbert.world.render import render_frames, rgb_to_yuv420p
from actbert.world.scene import Scene


def test_videos_decode_with_planned_frames_size_and_fps(tiny_world):
    for vid, truth in tiny_world.videos.items():
        with av.open(str(tiny_world.video_path(vid))) as container:
            stream = container.streams.video[0]
            assert stream.average_rate == Fraction(truth.fps)
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert len(frames) == truth.num_frames
        assert frames[0].shape == (*truth.size, 3)


def test_decoded_frames_are_close_to_rendered_ones(tiny_world):
    vid = tiny_world.split("train")[0]
    truth = tiny_world.videos[vid]
    plan = plan_video(int(vid[3:]), RECIPE_BY_ID[truth.recipe_id], truth.split, tiny_world.config, tiny_world.seed)
    rendered = [f.image for f in render_frames(plan, tiny_world.config, tiny_world.seed)]
    with av.open(str(tiny_world.video_path(vid))) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    err = np.mean([np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(rendered, decoded)])
    assert err < 12, f"mean abs error {err:.1f}: colour conversion or frame order is wrong"


def test_yuv_conversion_of_pure_colours():
    img = np.zeros((4, 4, 3), dtype=np.uint8)
    img[:] = (255, 255, 255)
    yuv = rgb_to_yuv420p(img)
    assert yuv.shape == (6, 4) and yuv[:4].min() == 235 and abs(int(yuv[4, 0]) - 128) <= 1


def test_coco_boxes_cover_drawn_pixels(tiny_dir, tiny_world):
    coco = json.loads((tiny_dir / "detection" / "coco.json").read_text())
    images = {im["id"]: im for im in coco["images"]}
    backgrounds = {}
    touching, total = 0, 0
    for a in coco["annotations"]:
        im = images[a["image_id"]]
        vid = im["video_id"]
        if vid not in backgrounds:
            truth = tiny_world.videos[vid]
            plan = plan_video(int(vid[3:]), RECIPE_BY_ID[truth.recipe_id], truth.split, tiny_world.config, tiny_world.seed)
            backgrounds[vid] = Scene(plan, tiny_world.config, rng_for(tiny_world.seed, plan.index, "scene")).background
        frame = np.asarray(Image.open(tiny_dir / "detection" / im["file_name"]).convert("RGB"))
        changed = np.any(frame != backgrounds[vid], axis=-1)
        x, y, w, h = a["bbox"]
        inside = changed[y:y + h, x:x + w]
        assert inside.any(), f"box {a['id']} holds no drawn pixel"
        total += 1
        touching += bool(inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any())
    assert total > 20 and touching / total > 0.9, "boxes should be tight around the drawn objects"


def _motion(frames: list[np.ndarray], lo: int, hi: int) -> float:
    return float(np.mean([np.abs(frames[i + 1].astype(int) - frames[i].astype(int)).mean() for i in range(lo, hi - 1)]))


@pytest.mark.parametrize("recipe_id", ["tomato_salad", "carrot_soup", "flatbread", "lemonade", "fried_egg"])
def test_every_step_moves_more_than_idle_time(recipe_id):
    cfg = get_world_config("tiny", skip_optional_prob=0.0)
    plan = plan_video(0, RECIPE_BY_ID[recipe_id], "train", cfg, seed=5)
    frames = [f.image for f in render_frames(plan, cfg, seed=5)]
    fps = plan.fps
    idle = _motion(frames, 0, int(plan.steps[0].start * fps))
    for step in plan.steps:
        lo, hi = int(round(step.start * fps)), int(round(step.end * fps))
        # the verb-specific middle part (not the shared carry-in / carry-out)
        middle = _motion(frames, lo + fps // 2 + 1, hi - fps // 2 - 1)
        assert middle > idle + 0.3, f"{step.verb} {step.object}: motion {middle:.2f} vs idle {idle:.2f}"


def test_cut_frames_in_the_decoded_video_differ_more_than_idle_frames(tiny_world):
    vid = next((v for v, t in tiny_world.videos.items() if any(s.verb == "cut" for s in t.steps)), None)
    if vid is None:
        pytest.skip("no cut step in this tiny world")
    truth = tiny_world.videos[vid]
    with av.open(str(tiny_world.video_path(vid))) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    cut = next(s for s in truth.steps if s.verb == "cut")
    fps = truth.fps
    idle_frames = range(0, int(truth.steps[0].start * fps) - 1)
    idle_diff = max(np.abs(frames[i + 1].astype(int) - frames[i].astype(int)).mean() for i in idle_frames)
    ref = frames[0].astype(int)
    cut_diff = np.mean([np.abs(frames[i].astype(int) - ref).mean()
                        for i in range(int(cut.start * fps) + fps // 2, int(cut.end * fps) - fps // 2)])
    assert cut_diff > 3 * idle_diff + 0.5


def test_verbs_have_distinct_motion_profiles():
    """Where the frame changes during a step (an 8x8 map of motion energy) differs between verbs.

    cut, peel, wash and roll all happen on the board, so their maps are the most alike (cut vs wash
    reaches about 0.97); what tells them apart beyond location is appearance (knife vs drops)."""
    cfg = get_world_config("tiny", skip_optional_prob=0.0)
    profiles = {}
    for recipe_id in ("carrot_soup", "flatbread", "lemonade", "fried_egg", "tomato_salad"):
        plan = plan_video(1, RECIPE_BY_ID[recipe_id], "train", cfg, seed=2)
        frames = np.stack([f.image for f in render_frames(plan, cfg, seed=2)]).astype(np.int16)
        for step in plan.steps:
            lo, hi = int(step.start * plan.fps) + 5, int(step.end * plan.fps) - 5
            energy = np.abs(np.diff(frames[lo:hi], axis=0)).mean(axis=(0, 3))
            h, w = energy.shape
            grid = energy.reshape(8, h // 8, 8, w // 8).mean(axis=(1, 3)).ravel()
            profiles[(recipe_id, step.verb)] = grid / (np.linalg.norm(grid) + 1e-9)
    keys = list(profiles)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            if a[1] != b[1]:
                assert profiles[a] @ profiles[b] < 0.985, f"{a} and {b} move the same way"
    assert set(VERB_BY_NAME) >= {k[1] for k in keys}
