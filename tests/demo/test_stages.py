"""`Stages.run_parallel`: independent stages in spawned processes, cached like `Stages.run`, keyed by the
thread count, and a failing stage keeps the others' finished results."""
from __future__ import annotations

import functools
import json
import os

import pytest

from actbert.demo.steps import Stages


def _job(value: int, fail: bool = False, delay: float = 0.0, progress: bool = True) -> dict:
    import time

    import torch

    time.sleep(delay)
    if fail:
        raise RuntimeError(f"stage {value} failed")
    return {"value": value, "pid": os.getpid(), "threads": torch.get_num_threads(), "draw": float(torch.rand(1)),
            "progress": progress}


def _jobs(fail_second: bool = False):
    # when the second stage fails, the first one finishes after it: its result must still be kept
    return [("a", {"n": 1}, [], functools.partial(_job, 1, delay=1.0 if fail_second else 0.0)),
            ("b", {"n": 2}, [], functools.partial(_job, 2, fail_second))]


def test_parallel_stages_run_in_processes_and_cache(tmp_path):
    stages = Stages(tmp_path, seed=5, progress=False)
    a, b = stages.run_parallel(_jobs(), processes=2, threads=1)
    assert (a["value"], b["value"]) == (1, 2) and a["threads"] == b["threads"] == 1
    assert os.getpid() not in (a["pid"], b["pid"])
    assert not a["progress"] and not b["progress"]  # bars of side-by-side stages would interleave
    assert a["draw"] == b["draw"]  # each stage is seeded alike, whichever process runs it
    for name in "ab":
        assert json.loads((tmp_path / "stages" / f"{name}.json").read_text())["result"]["value"] == (name == "b") + 1
    again = Stages(tmp_path, seed=5, progress=False)
    assert again.run_parallel(_jobs(), processes=2, threads=1) == [a, b]
    assert all(r.cached for r in again.records)
    # the thread count is part of the key: one process, other threads -> both rerun, in this process
    other = Stages(tmp_path, seed=5, progress=False)
    a2, _ = other.run_parallel(_jobs(), processes=1, threads=2)
    assert not any(r.cached for r in other.records) and a2["pid"] == os.getpid() and a2["threads"] == 2
    assert not a2["progress"]  # Stages(progress=False)
    assert a2["draw"] == a["draw"]


def test_failed_parallel_stage_keeps_the_finished_one(tmp_path):
    stages = Stages(tmp_path, seed=0, progress=False)
    with pytest.raises(RuntimeError, match="stage 2 failed") as info:
        stages.run_parallel(_jobs(fail_second=True), processes=2, threads=1)
    assert "the stages that finished were kept (a)" in "".join(getattr(info.value, "__notes__", []))
    assert (tmp_path / "stages" / "a.json").is_file() and not (tmp_path / "stages" / "b.json").exists()
