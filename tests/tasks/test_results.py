"""results.json / results.md round trip, run comparison, and `actbert report`, on hand-made results."""
from __future__ import annotations

import json

import numpy as np
import pytest

from actbert.tasks.results import compare_runs, format_value, load_results, write_results


def _write_two_runs(tmp_path):
    a = write_results(tmp_path / "zero_shot", task="retrieval", dataset="youcook2", protocol="reference ties",
                      split="val", metrics={"t2v": {"R1": 9.6, "MedR": np.float64(19.0)},
                                            "v2t": {"R1": np.float32(8.5)}},
                      checkpoint="ckpt/pretrain", config={"batch": 32, "out": tmp_path / "x"})
    b = write_results(tmp_path / "finetuned", task="retrieval", dataset="youcook2", protocol="reference ties",
                      split="val", metrics={"t2v": {"R1": 16.25, "MedR": 12.5, "MeanR": 40.0}},
                      checkpoint=None, config={})
    return a, b


def test_round_trip(tmp_path):
    path = write_results(tmp_path / "run", task="segmentation", dataset="coin", protocol="per-second",
                         split="test", metrics={"frame_acc": np.float64(57.0), "nonbg_acc": float("nan"),
                                                "n_seconds": np.int64(15)},
                         checkpoint="ckpt", config={"window": 32, "stride": 16, "classes": (0, 1)},
                         extra={"timing_s": 1.5})
    assert path == tmp_path / "run" / "results.json"
    raw = json.loads(path.read_text())          # strict JSON: NaN became null
    assert raw["metrics"] == {"frame_acc": 57.0, "nonbg_acc": None, "n_seconds": 15}
    rec = load_results(tmp_path / "run")        # a directory or the file itself
    assert rec == load_results(path)
    assert (rec["task"], rec["dataset"], rec["protocol"], rec["split"]) == ("segmentation", "coin", "per-second", "test")
    assert rec["checkpoint"] == "ckpt" and rec["config"] == {"window": 32, "stride": 16, "classes": [0, 1]}
    assert rec["extra"] == {"timing_s": 1.5} and rec["schema_version"] == 1
    assert rec["actbert_version"] and rec["timestamp"].endswith("+00:00")
    md = (tmp_path / "run" / "results.md").read_text()
    assert "| frame_acc | 57.00 |" in md and "| nonbg_acc | n/a |" in md and "| n_seconds | 15 |" in md
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]  # no leftovers


def test_format_value_by_hand():
    assert format_value(9.6) == "9.60"
    assert format_value(0.6512) == "0.6512"      # CIDEr-sized values keep 4 decimals
    assert format_value(0.0) == "0.00"
    assert format_value(3) == "3" and format_value(None) == "n/a" and format_value("a|b") == "a\\|b"


def test_compare_runs_side_by_side(tmp_path):
    a, b = _write_two_runs(tmp_path)
    table = compare_runs([a, tmp_path / "finetuned"])
    lines = table.strip().splitlines()
    assert lines[0] == "| metric | zero_shot | finetuned |"
    assert "| *task* | retrieval | retrieval |" in lines
    assert "| *checkpoint* | ckpt/pretrain | – |" in lines
    # metrics in order of first appearance; a metric one run lacks shows –
    metric_rows = [ln for ln in lines if not ln.startswith("| *")][2:]
    assert metric_rows == ["| t2v.R1 | 9.60 | 16.25 |", "| t2v.MedR | 19.00 | 12.50 |",
                           "| v2t.R1 | 8.50 | – |", "| t2v.MeanR | – | 40.00 |"]


def test_compare_runs_names_clash_and_errors(tmp_path):
    for parent in ("x", "y"):
        write_results(tmp_path / parent / "run", task="qa", dataset="msrvtt-mc", protocol="argmax first",
                      split="test", metrics={"accuracy": 85.7}, checkpoint=None, config={})
    header = compare_runs([tmp_path / "x" / "run", tmp_path / "y" / "run"]).splitlines()[0]
    assert header == "| metric | x/run | y/run |"
    with pytest.raises(FileNotFoundError):
        load_results(tmp_path / "missing")
    (tmp_path / "bad.json").write_text('{"task": "qa"}')
    with pytest.raises(ValueError, match="missing"):
        load_results(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="paths is empty"):
        compare_runs([])
    with pytest.raises(ValueError, match="metrics must be"):
        write_results(tmp_path / "r", "qa", "d", "p", "s", {}, None, {})
    with pytest.raises(ValueError, match="config.obj"):
        write_results(tmp_path / "r", "qa", "d", "p", "s", {"a": 1}, None, {"obj": object()})


def test_report_cli(tmp_path, capsys):
    from actbert.cli.main import main

    _write_two_runs(tmp_path)
    out = tmp_path / "cmp" / "table.md"
    assert main(["report", str(tmp_path / "zero_shot"), str(tmp_path / "finetuned"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("| metric | zero_shot | finetuned |") and out.read_text() == printed
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "no results file" in capsys.readouterr().err
