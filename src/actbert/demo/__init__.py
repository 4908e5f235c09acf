"""`actbert demo`: the whole system on a world generated on the spot, with evidence that the model learns.

    from actbert.demo import run_demo, run_demos
    result = run_demo("demo_out", quick=True)     # -> DemoResult: report.md, results.json, plots
    many = run_demos("demo_seeds", [0, 1, 2, 3, 4])  # one world per seed + summary.md / summary.json

Stages (each cached under `<out>/stages/`, so a rerun skips what finished): generate the world -> mine
verbs from the TRAIN narration -> train the action network (tiny3d) -> train the region detector (tiny)
-> extract features of all videos -> pre-train ActBERT `tiny` and its ablations on TRAIN narration ->
evaluate all five tasks on the TEST videos -> write the report. See docs/demo.md.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from actbert.demo.config import PRESETS, DemoConfig, get_demo_config

__all__ = ["DemoConfig", "DemoResult", "MultiDemoResult", "PRESETS", "get_demo_config", "run_demo", "run_demos"]


@dataclass
class DemoResult:
    out_dir: Path
    report: Path
    results_json: Path
    results: dict
    timings: list = field(default_factory=list)   # StageRecord per stage, in order
    seconds: float = 0.0


def run_demo(out_dir: str | Path = "demo_out", quick: bool = False, seed: int = 0, progress: bool = True,
             force: bool = False, config: DemoConfig | None = None) -> DemoResult:
    """Run (or resume) the demo into `out_dir`; `force` redoes every stage; `config` overrides the preset."""
    import torch

    from actbert.demo.evaluate import eval_stages
    from actbert.demo.report import write_report
    from actbert.demo.steps import Stages, run_all

    cfg = config or get_demo_config(quick)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)  # same thread count -> same float reductions -> same numbers
    t0 = time.perf_counter()
    try:
        stages = Stages(out, seed, force=force, progress=progress)
        results = run_all(stages, cfg, eval_stages)
        report, rjson = write_report(out, cfg, seed, results, stages.records, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return DemoResult(out, report, rjson, results, stages.records, time.perf_counter() - t0)


@dataclass
class MultiDemoResult:
    out_dir: Path
    summary: Path          # summary.md
    summary_json: Path
    runs: dict = field(default_factory=dict)   # seed -> DemoResult
    data: dict = field(default_factory=dict)   # what summary.json holds


def run_demos(out_dir: str | Path, seeds: list[int], quick: bool = False, progress: bool = True, force: bool = False,
              config: DemoConfig | None = None) -> MultiDemoResult:
    """`run_demo` once per seed into `out_dir/seed-<n>` (each cached and resumable), then the summary table."""
    import json

    from actbert.demo.summary import seed_dir, write_summary

    if not seeds:
        raise ValueError("run_demos needs at least one seed")
    runs = {}
    for s in seeds:
        if progress:
            print(f"[demo] === world of seed {s} ({seeds.index(s) + 1} of {len(seeds)}) ===", flush=True)
        runs[s] = run_demo(seed_dir(out_dir, s), quick=quick, seed=s, progress=progress, force=force, config=config)
    md, js, data = write_summary(Path(out_dir), {s: json.loads(r.results_json.read_text()) for s, r in runs.items()},
                                 {s: r.results for s, r in runs.items()})
    return MultiDemoResult(Path(out_dir), md, js, runs, data)
