"""The demo end to end: `run_demo(quick=True)` once (the suite's one slow smoke test), then checks of
what it wrote, of the stage cache (a rerun is fast and gives identical results) and of the CLI.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time

import pytest

from actbert.demo import run_demo
from actbert.demo.report import without_timings

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

TASKS = {"zero_shot_retrieval", "zero_shot_qa", "zero_shot_localization", "masked_action", "finetuned_retrieval",
         "captioning", "segmentation"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    t0 = time.perf_counter()
    result = run_demo(out, quick=True, seed=0, progress=False)
    # kept now: a rerun rewrites results.json in place
    return out, result, time.perf_counter() - t0, json.loads(result.results_json.read_text())


def test_the_spoken_experiment_reuses_the_demos_first_stages(demo, monkeypatch):
    """`actbert demo --spoken` starts from the demo's world, action net, detector and features: the same
    stage keys, so on a finished demo they are all cache hits (a copy of the settings once drifted apart
    and crashed the spoken run before its first own stage). Stopped where speaking would begin."""
    from actbert.demo import get_demo_config, spoken
    from actbert.demo.steps import Stages

    class Stop(Exception):
        pass

    def stop(*_args):
        raise Stop

    monkeypatch.setattr(spoken, "_speak", stop)
    stages = Stages(demo[0], 0, progress=False)
    with pytest.raises(Stop):
        spoken.run_spoken(stages, get_demo_config(quick=True))
    assert [(r.name, r.cached) for r in stages.records] == [(n, True) for n in
                                                             ("world", "vocab", "action_net", "detector", "extract")]


def test_report_results_and_plots_exist(demo):
    out, result, *_ = demo
    assert result.report == out / "report.md" and result.report.is_file()
    assert result.results_json == out / "results.json"
    data = json.loads(result.results_json.read_text())
    assert data["preset"] == "quick" and data["seed"] == 0
    for name in ("pretrain_curves", "retrieval_ranks", "segmentation_timeline", "attention"):
        p = out / data["plots"][name]
        assert p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    text = result.report.read_text()
    for words in ("Learning targets", "no_pretrain", "chance", "Stage timings", "Quick preset"):
        assert words in text


def test_every_task_has_a_metric_and_a_chance_level(demo):
    data = json.loads(demo[1].results_json.read_text())
    assert set(data["tasks"]) == TASKS
    for name, t in data["tasks"].items():
        assert t["metric"], name
        assert t["chance"] is not None and math.isfinite(t["chance"]), name
        assert {"actbert", "no_pretrain"} <= set(t["values"]), name
        assert all(v is not None and math.isfinite(v) for v in t["values"].values()), name
    zs = data["tasks"]["zero_shot_retrieval"]["values"]
    assert {"kv_add", "no_action", "no_region"} <= set(zs)  # ablations on the zero-shot tasks
    assert data["tasks"]["zero_shot_qa"]["chance"] == pytest.approx(20.0)


def test_targets_are_judged_plainly(demo):
    data = json.loads(demo[1].results_json.read_text())
    assert len(data["targets"]) == 5
    report = demo[1].report.read_text()
    for t in data["targets"]:
        assert isinstance(t["met"], bool) and t["detail"]
        assert t["target"] in report
        # met means: the bar is cleared and every interval the target names lies above zero
        assert t["met"] == (t["bar_met"] and all(c["low"] > 0 for c in t["intervals"].values()))


def test_paired_intervals_for_every_task(demo):
    data = json.loads(demo[1].results_json.read_text())
    assert set(data["paired"]) == TASKS
    for task, c in data["paired"].items():
        assert c["low"] <= c["diff"] <= c["high"], task
        assert c["diff"] == pytest.approx(data["tasks"][task]["values"]["actbert"] - data["tasks"][task]["values"]["no_pretrain"],
                                          abs=0.01), task
        assert c["supported"] == (c["low"] > 0)
    assert {k.split(": ")[1] for k in data["ablations"]} == {"actbert - kv_add", "actbert - no_action", "actbert - no_region"}
    assert "Paired statistics" in demo[1].report.read_text()


def test_evaluation_is_on_test_videos_only(demo):
    out = demo[0]
    from actbert.world import load_world

    world = load_world(out / "world")
    train, test = set(world.split("train")), set(world.split("test"))
    narration = json.loads((out / "data" / "narration_train.json").read_text())
    assert set(narration) == train  # pre-training never sees a test video's narration
    data = json.loads(demo[1].results_json.read_text())
    assert data["attention"]["video_id"] in test
    seg = json.loads((out / "stages" / "finetune_actbert.json").read_text())["result"]["segmentation"]
    assert seg["predictions"] and set(seg["predictions"]) <= test


def test_rerun_is_cached_fast_and_identical(demo):
    out, first, first_s, first_json = demo
    t0 = time.perf_counter()
    second = run_demo(out, quick=True, seed=0, progress=False)
    took = time.perf_counter() - t0
    assert all(r.cached for r in second.timings), [r.name for r in second.timings if not r.cached]
    assert took < max(0.5 * first_s, 5.0), (took, first_s)
    b = second.results
    assert json.loads(second.results_json.read_text())["tasks"] == first_json["tasks"]
    assert b["zero_shot"]["actbert"]["retrieval"]["t2v"] == first.results["zero_shot"]["actbert"]["retrieval"]["t2v"]


def test_same_numbers_beside_busy_processes(demo, tmp_path):
    """No stage stops on the clock (issue 13): a second run of the seed beside two CPU-burning processes
    writes the same results.json, timings apart. The world is copied (its generator's determinism is
    tested in tests/world); every training and evaluation stage reruns under the load."""
    out, _, _, first_json = demo
    busy = tmp_path / "busy"
    shutil.copytree(out / "world", busy / "world")
    (busy / "stages").mkdir()
    shutil.copyfile(out / "stages" / "world.json", busy / "stages" / "world.json")
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        second = run_demo(busy, quick=True, seed=0, progress=False)
    finally:
        for b in burners:
            b.kill()
            b.wait()
    assert [r.name for r in second.timings if r.cached] == ["world"]
    second_json = json.loads(second.results_json.read_text())
    assert without_timings(second_json) == without_timings(first_json)
    assert second_json["timings"] != first_json["timings"]  # the timings did change: the comparison drops them


def test_cli_flags_have_help():
    from actbert.cli import demo as cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    flags = {a.dest: a for a in parser._actions if a.dest != "help"}
    assert set(flags) == {"quick", "out", "seed", "seeds", "no_progress", "spoken", "force", "processes", "variants"}
    assert all(a.help for a in flags.values())
    args = parser.parse_args([])
    assert args.out == "demo_out" and args.seed is None and args.seeds is None and not args.quick
    assert args.processes is None
    with pytest.raises(SystemExit, match="not both"):
        cli.run(parser.parse_args(["--seed", "1", "--seeds", "0-4"]))
    with pytest.raises(SystemExit, match="increasing range"):
        cli.run(parser.parse_args(["--seeds", "4-0"]))
    with pytest.raises(SystemExit, match="not --seeds"):
        cli.run(parser.parse_args(["--spoken", "--seeds", "0-1"]))
    from actbert.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown variant 'vilbert'"):  # one line through cli.main
        cli.run(parser.parse_args(["--variants", "actbert,vilbert"]))


def test_every_task_can_be_tried_on_what_the_demo_keeps(demo):
    """README's "Try every task": the pre-trained run folder, its fine-tuned heads and the store are kept."""
    import actbert
    from actbert.world import load_world

    out = demo[0]
    run = out / "runs" / "actbert"
    pipe = actbert.Pipeline(str(run), captioner=str(run / "captioning"), segmenter=str(run / "segmentation"))
    pipe.index(out / "store", out=out / "index", progress=False)
    hit = pipe.search("cut the tomato", top_k=1)[0]
    assert isinstance(pipe.caption(hit.video, 0, 4), str)
    steps = set(load_world(out / "world").step_names.values()) | {"background"}
    assert set(pipe.segment(hit.video)) <= steps
