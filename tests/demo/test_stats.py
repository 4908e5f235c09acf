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


def test_pooled_compare_is_one_bootstrap_over_all_worlds_items():
    from actbert.demo.stats import pooled_compare
    from actbert.metrics.bootstrap import paired_bootstrap

    w0 = _res([1] * 6 + [0] * 4, [0] * 10, [0.0] * 10, [5.0] * 10)
    w1 = _res([1] * 2 + [0] * 8, [1] * 3 + [0] * 7, [0.0] * 10, [5.0] * 10)
    pooled = pooled_compare({0: w0, 1: w1}, "zero_shot_qa")
    naive = paired_bootstrap([100.0] * 6 + [0.0] * 4 + [100.0] * 2 + [0.0] * 8, [0.0] * 10 + [100.0] * 3 + [0.0] * 7)
    assert pooled["diff"] == pytest.approx(25.0) and pooled["n_items"] == 20 and pooled["worlds"] == 2
    assert (pooled["low"], pooled["high"]) == (round(naive["low"], 4), round(naive["high"], 4))
    # a world that did not run the comparison: no pooled interval rather than one over fewer worlds
    assert pooled_compare({0: w0, 1: w1}, "zero_shot_qa", baseline="kv_add") is None


def test_pooled_localization_keeps_each_worlds_tasks_apart():
    from actbert.demo.stats import pooled_compare

    def world(hits):  # one CrossTask task "t" per world, two videos of 2 steps each
        rows = [{"task": "t", "video": f"v{i}", "hits": h, "baseline_hits": 0, "steps": 2} for i, h in enumerate(hits)]
        return {"zero_shot": {m: {"localization": {"per_video": rows if m == "actbert" else
                                                   [{**r, "hits": 0} for r in rows]}}
                              for m in ("actbert", "no_pretrain")}}
    # world 0: 4 of 4 steps hit; world 1: 0 of 4. Averaged over the two (world, task) groups: 50 %
    c = pooled_compare({0: world([2, 2]), 1: world([0, 0])}, "zero_shot_localization")
    assert c["a"] == pytest.approx(50.0) and c["b"] == 0.0 and c["n_items"] == 4


def test_summary_pools_items_when_stage_results_are_given():
    def one(diff):
        return {"preset": "full", "total_seconds": 1.0, "stages": {"action_net": {"held_out_accuracy": 0.3}},
                "targets": [], "paired": {"zero_shot_qa": {"items": "questions", "diff": diff, "supported": True}},
                "ablations": {}}
    w = _res([1] * 10, [0] * 10, [0.0] * 10, [0.0] * 10)
    s = summarize({0: one(100.0), 1: one(100.0)}, {0: w, 1: w})
    p = s["paired"]["zero_shot_qa"]["pooled"]
    assert p["diff"] == 100.0 and p["n_items"] == 20 and p["supported"]
    assert "+100.0 [+100.0, +100.0] over 20 questions (above 0)" in summary_markdown(s)


def test_parse_variants():
    from actbert.demo.config import parse_variants
    from actbert.errors import ConfigError

    assert parse_variants("actbert, coattention") == ("actbert", "coattention")
    for bad, why in (("actbert,vilbert", "unknown variant 'vilbert'"), ("actbert,kv_add,kv_add", "twice"),
                     ("kv_add", "must include actbert")):
        with pytest.raises(ConfigError, match=why):
            parse_variants(bad)
