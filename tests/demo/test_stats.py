"""The demo's paired statistics and the many-worlds summary, on hand-made results (no pipeline run)."""
from __future__ import annotations

import pytest

from actbert.demo.stats import compare, judge_targets
from actbert.demo.summary import parse_seeds, summarize, summary_markdown


def _res(main_correct, scratch_correct, main_ranks, scratch_ranks):
    def zs(correct, ranks):
        return {"qa": {"correct": correct, "chance": 20.0},
                "retrieval": {"ranks": ranks, "n_queries": len(ranks)}}
    return {"zero_shot": {"actbert": zs(main_correct, main_ranks), "no_pretrain": zs(scratch_correct, scratch_ranks)},
            "finetuned": {}}


def test_compare_pairs_items_and_judges_by_the_lower_bound():
    res = _res([1] * 12 + [0] * 8, [0] * 20, [0.0] * 10 + [5.0] * 10, [0.0] * 9 + [5.0] * 11)
    qa = compare(res, "zero_shot_qa")
    assert (qa["a"], qa["b"], qa["diff"]) == (60.0, 0.0, 60.0) and qa["supported"] and qa["items"] == "questions"
    r = compare(res, "zero_shot_retrieval")  # one query of twenty more: not supported by the items
    assert r["diff"] == pytest.approx(5.0) and r["low"] <= 0 < r["high"] and not r["supported"]
    vs_chance = compare(res, "zero_shot_qa", "chance")
    assert vs_chance["b"] == 20.0 and vs_chance["diff"] == 40.0
    assert compare(res, "captioning") is None  # not run


def test_targets_not_met_without_intervals_and_not_run_is_a_miss():
    res = _res([1] * 12 + [0] * 8, [0] * 20, [0.0] * 20, [5.0] * 20)
    tasks = {"zero_shot_qa": {"values": {"actbert": 60.0}, "chance": 20.0},
             "zero_shot_retrieval": {"values": {"actbert": 100.0}, "chance": 5.0}}
    t = {x["task"]: x for x in judge_targets(res, tasks)}
    assert t["zero_shot_qa"]["met"] and t["zero_shot_retrieval"]["met"]
    assert "vs no pre-training +60.0 [" in t["zero_shot_qa"]["detail"]
    assert not t["segmentation"]["met"] and t["segmentation"]["detail"] == "not run"
    same = _res([1, 0] * 10, [1, 0] * 10, [0.0] * 20, [5.0] * 20)
    assert not {x["task"]: x for x in judge_targets(same, tasks)}["zero_shot_qa"]["met"]  # difference 0


def test_parse_seeds():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0-2,5") == [0, 1, 2, 5] and parse_seeds("7") == [7]
    for bad in ("4-0", "a", "1,1", "", "1-"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


def test_summary_counts_seeds_and_spreads():
    def one(met, diff, supported):
        return {"preset": "full", "total_seconds": 300.0, "stages": {"action_net": {"held_out_accuracy": 0.3}},
                "targets": [{"task": "zero_shot_qa", "target": "QA", "met": met}],
                "paired": {"zero_shot_qa": {"items": "questions", "diff": diff, "supported": supported}},
                "ablations": {"zero_shot_qa: actbert - kv_add": {"diff": diff, "low": diff - 1, "high": diff + 1}}}
    s = summarize({0: one(True, 10.0, True), 1: one(False, 2.0, False), 2: one(True, 6.0, True)})
    assert s["targets"]["zero_shot_qa"]["met_seeds"] == [0, 2] and s["all_targets_met_seeds"] == [0, 2]
    p = s["paired"]["zero_shot_qa"]
    assert p["mean"] == pytest.approx(6.0) and p["std"] == pytest.approx(4.0) and p["supported_seeds"] == [0, 2]
    assert s["ablations"]["zero_shot_qa: actbert - kv_add"]["better_seeds"] == [0, 1, 2]
    md = summary_markdown(s)
    assert "| zero_shot_qa | QA | 2 of 3 (0, 2) |" in md and "**All five targets met on 2 of 3 seeds**" in md
