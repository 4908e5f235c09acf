"""`actbert data check` and `actbert vocab`, called in-process through actbert.cli.main.main."""
from __future__ import annotations

import json

import pytest

from actbert.cli.main import main


def _check(capsys, fmt, path):
    rc = main(["data", "check", fmt, str(path), "--compact"])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("fmt, rel, expected", [
    ("youcook2", "youcook2/youcookii_annotations_trainval.json",
     {"videos": 1790, "clips": 13829, "recipe_types": 89, "training": {"videos": 1333, "clips": 10337},
      "validation": {"videos": 457, "clips": 3492}}),
    ("youcook2-csv", "youcook2/validation_youcook.sample.csv", {"clips": 40, "captions": 40}),
    ("msrvtt-csv", "msrvtt/MSRVTT_JSFUSION_test.csv", {"captions": 1000, "videos": 1000}),
    ("msrvtt-ids", "msrvtt/MSRVTT_train.9k.csv", {"videos": 9000}),
    ("msrvtt-mc", "msrvtt/msrvtt_mc_test.sample.jsonl", {"questions": 40, "options": [5]}),
    ("coin-taxonomy", "coin", {"domains": 12, "tasks": 180, "steps": 778}),
])
def test_check_real_files(capsys, shared_data, fmt, rel, expected):
    rc, out, err = _check(capsys, fmt, shared_data / rel)
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["format"] == fmt
    assert {k: summary[k] for k in expected} == expected


def test_check_malformed_names_file_and_line(capsys, tmp_path):
    bad = tmp_path / "msrvtt.csv"
    bad.write_text("key,vid_key,video_id,sentence\nret0,msr1,video1,a man cooks\nret1,msr2\n")
    rc, out, err = _check(capsys, "msrvtt-csv", bad)
    assert rc != 0 and out == ""
    assert f"{bad}:3:" in err
    rc, _, err = _check(capsys, "msrvtt-mc", tmp_path / "missing.jsonl")
    assert rc != 0 and "missing.jsonl" in err


def test_check_written_formats(capsys, tmp_path):
    from tests.data.test_formats import write_crosstask

    rc, out, err = _check(capsys, "crosstask", write_crosstask(tmp_path / "ct"))
    assert rc == 0, err
    s = json.loads(out)
    assert (s["tasks"], s["videos"], s["videos_val"], s["clips"]) == (3, 42, 1, 82)
    caps = tmp_path / "caption.json"
    caps.write_text('{"v1": {"start": [0, 4], "end": [3, 6], "text": ["cut the onion", NaN]}}')
    rc, out, err = _check(capsys, "howto100m-captions", caps)
    s = json.loads(out)
    assert rc == 0 and (s["videos"], s["captions"], s["skipped"]) == (1, 1, {"missing_text": 1})
    rc, _, err = _check(capsys, "coin", tmp_path / "ct")  # a folder where a file is expected
    assert rc != 0 and "expects a file" in err


def test_formats_listing(capsys):
    assert main(["data", "formats"]) == 0
    assert "howto100m-captions" in capsys.readouterr().out


def test_vocab_cli_on_text_and_youcook2(capsys, tmp_path, shared_data):
    texts = tmp_path / "captions.txt"
    texts.write_text("cut the onion\nnow we are going to fry it\nfry the garlic\n\nsay hello\n")
    out = tmp_path / "vocab.json"
    assert main(["vocab", "--captions", str(texts), "--format", "text", "--num-verbs", "5", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["verbs"] == ["fry", "cut"] and data["counts"] == {"fry": 2, "cut": 1}
    printed = capsys.readouterr().out
    assert "fry" in printed and "wrote 2 verbs" in printed
    assert main(["vocab", "--captions", str(texts), "--num-verbs", "5", "--out", str(out),
                 "--stop-verbs", "--add-stop-verbs", "fry"]) == 0
    assert json.loads(out.read_text())["verbs"] == ["cut", "go", "say"]
    sample = shared_data / "youcook2/validation_youcook.sample.csv"
    assert main(["vocab", "--captions", str(sample), "--format", "youcook2-csv", "--num-verbs", "3", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["verbs"][0] == "add"
