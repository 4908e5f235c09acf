"""Benchmark-format readers: real files of ../shared/data with their documented counts, and small
written files (documented format, plus malformed variants whose error must name file and line)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from actbert.data import formats as F
from actbert.data.formats import FormatError


def _expect_error(path: Path, line: int | None, fn, *args):
    with pytest.raises(FormatError) as info:
        fn(*args)
    assert info.value.path == str(path) and info.value.line == line, str(info.value)
    assert str(path) in str(info.value)
    return info.value


# ------------------------------------------------------------------ YouCook2
def test_youcook2_json_real_counts(shared_data):
    videos = F.read_youcook2(shared_data / "youcook2/youcookii_annotations_trainval.json")
    train = [v for v in videos.values() if v.subset == "training"]
    val = [v for v in videos.values() if v.subset == "validation"]
    assert (len(train), sum(len(v.clips) for v in train)) == (1333, 10337)
    assert (len(val), sum(len(v.clips) for v in val)) == (457, 3492)
    assert len({v.recipe_type for v in videos.values()}) == 89
    first = videos["GLd3aX16zBg"]
    assert first.recipe_type == "113" and first.duration == pytest.approx(241.62)
    assert (first.clips[0].start, first.clips[0].end) == (90, 102)
    assert first.clips[0].sentence == "spread margarine on two slices of white bread"
    assert len(F.read_youcook2(shared_data / "youcook2/youcookii_annotations_trainval.json", "validation")) == 457


def test_youcook2_csv_real_rows_in_file_order(shared_data):
    rows = F.read_youcook2_csv(shared_data / "youcook2/validation_youcook.sample.csv")
    assert len(rows) == 40
    assert rows[0] == F.RetrievalClip("xHr8X2Wpmno", 47.0, 60.0, "226", "pick the ends off the verdalago")
    assert rows[1].text.startswith("combine lemon juice")


def test_youcook2_malformed(tmp_path):
    p = tmp_path / "yc.json"
    good = {"duration": 10.0, "subset": "training", "recipe_type": "1", "annotations": []}
    bad = {"duration": 10.0, "subset": "training", "recipe_type": "1",
           "annotations": [{"segment": [5], "id": 0, "sentence": "cut"}]}
    p.write_text(json.dumps({"database": {"a": good, "b": bad}}, indent=1))
    err = _expect_error(p, F.errors.line_of(p, '"b":'), F.read_youcook2, p)
    assert "segment" in err.message and err.line > 1
    p.write_text('{"database": {"a": ')
    _expect_error(p, 1, F.read_youcook2, p)
    c = tmp_path / "val.csv"
    c.write_text("end,start,task,text,video_id\n60,47,226,pick the ends,xHr8X2Wpmno\n60,abc,226,x,y\n")
    _expect_error(c, 3, F.read_youcook2_csv, c)
    c.write_text("start,text,video_id\n1,a,b\n")
    _expect_error(c, 1, F.read_youcook2_csv, c)


# ------------------------------------------------------------------ MSR-VTT
def test_msrvtt_real_files(shared_data):
    pairs = F.read_msrvtt_csv(shared_data / "msrvtt/MSRVTT_JSFUSION_test.csv")
    assert len(pairs) == 1000
    assert pairs[0] == F.MsrvttPair("ret0", "msr9770", "video9770", "a person is connecting something to system")
    ids = F.read_msrvtt_ids(shared_data / "msrvtt/MSRVTT_train.9k.csv")
    assert len(ids) == 9000 and ids[0] == "video0"
    assert not set(ids) & {p.video_id for p in pairs}  # 9k train and 1k-A test are disjoint
    qs = F.read_msrvtt_mc(shared_data / "msrvtt/msrvtt_mc_test.sample.jsonl")
    assert len(qs) == 40 and all(len(q.options) == 5 for q in qs)
    assert (qs[0].qid, qs[0].clip_name, qs[0].answer) == ("mc0", "video9770", 0)
    assert qs[1].answer == 2 and all(isinstance(q.answer, int) for q in qs)


def test_msrvtt_ids_plain_and_malformed(tmp_path):
    p = tmp_path / "ids.txt"
    p.write_text("video1\nvideo2\n\nvideo3\n")
    assert F.read_msrvtt_ids(p) == ["video1", "video2", "video3"]
    p.write_text("video_id\nvideo1\nvideo2\nvideo1\n")
    _expect_error(p, 4, F.read_msrvtt_ids, p)
    p.write_text("video1\nvideo 2\n")
    _expect_error(p, 2, F.read_msrvtt_ids, p)


def _msrvtt_text(videos, sents) -> str:
    # one record per line, as in a pretty-printed download, so that the reported line can be checked
    return ('{"videos": [\n' + ",\n".join(json.dumps(v) for v in videos) + '],\n"sentences": [\n'
            + ",\n".join(json.dumps(x) for x in sents) + "]}\n")


def test_msrvtt_json_and_mc_malformed(tmp_path):
    p = tmp_path / "MSRVTT_data.json"
    videos = [{"category": 9, "url": "u", "video_id": "video0", "start time": 1.0, "end time": 5.0, "split": "train", "id": 0},
              {"category": 3, "url": "u", "video_id": "video1", "split": "test", "id": 1}]
    sents = [{"caption": "a man is cooking", "video_id": "video0", "sen_id": 0},
             {"caption": "a cat plays", "video_id": "video1", "sen_id": 1},
             {"caption": "a man cooks", "video_id": "video0", "sen_id": 2}]
    p.write_text(_msrvtt_text(videos, sents))
    data = F.read_msrvtt_json(p)
    assert list(data.videos) == ["video0", "video1"] and data.videos["video0"].start_time == 1.0
    assert data.captions_by_video() == {"video0": ["a man is cooking", "a man cooks"], "video1": ["a cat plays"]}
    sents[2]["video_id"] = "video7"
    p.write_text(_msrvtt_text(videos, sents))
    err = _expect_error(p, 7, F.read_msrvtt_json, p)
    assert "sentences[2]" in err.message
    m = tmp_path / "mc.jsonl"
    q = {"qid": "mc0", "clip_name": "video9770", "answer": "1", "options": ["a", "b", "c", "d", "e"]}
    m.write_text(json.dumps(q) + "\n" + json.dumps({**q, "answer": "5"}) + "\n")
    _expect_error(m, 2, F.read_msrvtt_mc, m)
    m.write_text(json.dumps(q) + "\n{not json\n")
    _expect_error(m, 2, F.read_msrvtt_mc, m)


# ------------------------------------------------------------------ COIN
def test_coin_taxonomy_real(shared_data):
    tax = F.read_coin_taxonomy(shared_data / "coin")
    assert len(tax.domains) == 12 and len(tax.targets) == 180 and len(tax.steps) == 778
    assert (min(tax.targets), max(tax.targets)) == (0, 179) and (min(tax.steps), max(tax.steps)) == (1, 778)
    assert sum(len(t) for t in tax.domains.values()) == 180
    assert tax.targets[0] == "UseAnalyticalBalance" and tax.steps[65].target_id == 0
    assert tax.domain_of(0) is not None and all(s.target_id == 0 for s in tax.steps_of(0))


def _coin_json(path: Path, annotation) -> None:
    db = {"vid_ok": {"duration": 5.5, "class": "UseAnalyticalBalance", "recipe_type": 0, "subset": "testing",
                     "annotation": [{"id": "65", "segment": [0.6, 2.2], "label": "clean"},
                                    {"id": "66", "segment": [3.0, 4.0], "label": "place"}], "video_url": "u"},
          "vid_bad": {"duration": 9.0, "class": "x", "recipe_type": 0, "subset": "training",
                      "annotation": annotation, "video_url": "u"}}
    path.write_text(json.dumps({"database": db}, indent=2))


def test_coin_json_and_second_labels(tmp_path, shared_data):
    p = tmp_path / "COIN.json"
    _coin_json(p, [{"id": "67", "segment": [1, 3], "label": "zero"}])
    tax = F.read_coin_taxonomy(shared_data / "coin")
    videos = F.read_coin(p, tax)
    v = videos["vid_ok"]
    assert v.target_id == 0 and [s.step_id for s in v.segments] == [65, 66]
    # 6 seconds (ceil 5.5); [floor(0.6), ceil(2.2)) = [0, 3) -> 65; [3, 4) -> 66; the rest background
    np.testing.assert_array_equal(F.coin_second_labels(v), [65, 65, 65, 66, 0, 0])
    np.testing.assert_array_equal(F.coin_second_labels(v, duration=3.2), [65, 65, 65, 66])
    _coin_json(p, [{"id": "999", "segment": [1, 3], "label": "no such step"}])
    err = _expect_error(p, F.errors.line_of(p, '"vid_bad":'), F.read_coin, p, tax)
    assert "999" in err.message
    _coin_json(p, [{"id": "67", "segment": [3, 1], "label": "backwards"}])
    _expect_error(p, F.errors.line_of(p, '"vid_bad":'), F.read_coin, p)


def test_coin_taxonomy_malformed(tmp_path):
    (tmp_path / F.coin.ACTION_CSV).write_text("Target Id,Target Label,Action Id,Action Label\n0,A,1,x\n0,A,1,y\n")
    (tmp_path / F.coin.DOMAIN_CSV).write_text("Domains,Targets\nD,A\n")
    _expect_error(tmp_path / F.coin.ACTION_CSV, 3, F.read_coin_taxonomy, tmp_path)


# ------------------------------------------------------------------ CrossTask
def write_crosstask(root: Path, n_videos: int = 40) -> Path:
    """A small release in the documented layout: 2 primary tasks (one with n_videos), 1 related."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "tasks_primary.txt").write_text(
        "23521\nMake Jello Shots\nhttp://w/1\n6\npour water,pour juice,pour jello powder,pour alcohol,stir mixture,"
        "pour mixture into cup\n\n40567\nMake Pancakes\nhttp://w/2\n2\nmix batter,pour batter\n\n")
    (root / "tasks_related.txt").write_text("11111\nMake Tea\nhttp://w/3\n1\nboil water\n\n")
    vids = [("23521", f"v_{i:02d}") for i in range(n_videos)] + [("40567", "pan_a"), ("11111", "tea_a")]
    (root / "videos.csv").write_text("".join(f"{t},{v},https://youtu.be/{v}\n" for t, v in vids))
    (root / "videos_val.csv").write_text("23521,v_00,https://youtu.be/v_00\n")
    ann = root / "annotations"
    ann.mkdir(exist_ok=True)
    for t, v in vids:
        if t != "11111":
            (ann / f"{t}_{v}.csv").write_text("1,3.5,7.0\n2,8.0,12.25\n")
    return root


def test_crosstask_release_and_split(tmp_path):
    rel = F.read_crosstask(write_crosstask(tmp_path / "ct"))
    assert rel.primary_tasks == ["23521", "40567"] and not rel.tasks["11111"].primary
    assert rel.tasks["23521"].steps[5] == "pour mixture into cup"
    assert len(rel.videos) == 42 and len(rel.videos_val) == 1
    assert rel.annotations[("23521", "v_01")][1] == F.CrossTaskStep(2, 8.0, 12.25)  # "_" in a video id is kept
    split = F.crosstask_split(rel, n_train=30, seed=0)
    # 40 videos, 1 is in videos_val -> 39 -> 30 train + 9 test; small tasks train only
    assert len(split.train["23521"]) == 30 and len(split.test["23521"]) == 9
    assert not set(split.train["23521"]) & set(split.test["23521"]) and "v_00" not in split.train["23521"] + split.test["23521"]
    assert split.train["40567"] == ["pan_a"] and "40567" not in split.test and split.train["11111"] == ["tea_a"]
    assert F.crosstask_split(rel, seed=0).test == split.test and F.crosstask_split(rel, seed=1).test != split.test


def test_crosstask_malformed(tmp_path):
    root = write_crosstask(tmp_path / "ct", n_videos=2)
    p = root / "tasks_primary.txt"
    p.write_text(p.read_text().replace("\n2\nmix batter", "\n3\nmix batter"))
    err = _expect_error(p, 11, F.read_crosstask, root)
    assert "3 steps declared" in err.message
    root = write_crosstask(tmp_path / "ct2", n_videos=2)
    a = root / "annotations" / "23521_v_01.csv"
    a.write_text("1,3.5,7.0\n9,8.0,12.0\n")
    _expect_error(a, 2, F.read_crosstask, root)
    a.write_text("1,3.5\n")
    _expect_error(a, 1, F.read_crosstask, root)


# ------------------------------------------------------------------ HowTo100M
def test_howto100m_captions_with_counted_problems(tmp_path):
    p = tmp_path / "raw_caption.json"
    p.write_text('{"v1": {"start": [0, 2.5, 4, 6, 8], "end": [3, 5, 6, 7, 7.5],'
                 ' "text": ["now we cut", NaN, "", null, "then fry"]},\n "v2": {"start": [1], "end": [2], "text": [2020]}}')
    report = F.ReadReport()
    caps = F.read_captions(p, report)
    assert caps["v1"] == [F.Caption(0.0, 3.0, "now we cut")] and caps["v2"] == [F.Caption(1.0, 2.0, "2020")]
    assert dict(report.counts) == {"missing_text": 2, "empty_text": 1, "negative_duration": 1, "non_string_text": 1}
    p.write_text('{"v1": {"start": [0], "end": [1], "text": ["a"]},\n "v2": {"start": [0, 1], "end": [1], "text": ["a", "b"]}}')
    err = _expect_error(p, 2, F.read_captions, p)
    assert "lengths differ" in err.message


def test_howto100m_csv(tmp_path):
    p = tmp_path / "HowTo100M_v1.csv"
    p.write_text("video_id,category_1,category_2,rank,task_id\nnVbIUDjzWY4,Cars & Other Vehicles,Motorcycles,27,52907\n"
                 "abc,Food and Entertaining,Drinks,x,1\n")
    _expect_error(p, 3, F.read_howto100m_csv, p)
    p.write_text(p.read_text().replace(",x,", ",3,"))
    rows = F.read_howto100m_csv(p)
    assert rows[0] == F.HowTo100MVideo("nVbIUDjzWY4", "Cars & Other Vehicles", "Motorcycles", 27, "52907")


def test_registry_summaries(shared_data, tmp_path):
    assert set(F.FORMATS) == {"youcook2", "youcook2-csv", "msrvtt-csv", "msrvtt-ids", "msrvtt-json", "msrvtt-mc",
                              "coin", "coin-taxonomy", "crosstask", "howto100m-captions", "howto100m-csv"}
    s = F.summarize("youcook2", shared_data / "youcook2/youcookii_annotations_trainval.json")
    assert s["training"] == {"videos": 1333, "clips": 10337} and s["recipe_types"] == 89
    assert F.summarize("coin-taxonomy", shared_data / "coin")["steps"] == 778
    s = F.summarize("crosstask", write_crosstask(tmp_path / "ct"))
    assert (s["primary_tasks"], s["related_tasks"], s["steps"], s["annotated_videos"]) == (2, 1, 8, 41)
