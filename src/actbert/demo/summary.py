"""Many worlds: `actbert demo --seeds 0-4` runs one demo per seed and writes one summary table.

Per task: on how many seeds the target is met (judged by intervals, `stats.judge_targets`), and the
pre-trained minus no-pre-training difference over seeds (mean, standard deviation, range) with the
number of seeds whose own interval lies above zero; per ablation and zero-shot task the same for
`actbert` minus the ablation. Files: `<out>/summary.md`, `<out>/summary.json`; each world in `<out>/seed-<n>/`.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from actbert.utils import atomic_write_json, atomic_write_text

SEEDS_HELP = "seeds as a range and/or list: 0-4, 0,2,7 or 0-2,5"


def parse_seeds(spec: str) -> list[int]:
    """'0-4' -> [0, 1, 2, 3, 4]; '0,2,7' and '0-2,5' work too; duplicates and bad parts are errors."""
    seeds: list[int] = []
    for part in spec.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise ValueError(f"--seeds {spec!r}: {part.strip()!r} is not a seed or an increasing range ({SEEDS_HELP})")
        lo = int(m.group(1))
        seeds += range(lo, int(m.group(2) or lo) + 1)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {spec!r} names a seed twice")
    return seeds


def seed_dir(out: Path, seed: int) -> Path:
    return Path(out) / f"seed-{seed}"


def _spread(values: list[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max())}


def summarize(results: dict[int, dict], stage_results: dict[int, dict] | None = None) -> dict:
    """`results[seed]` = a demo's results.json -> per-task counts and spreads over the seeds. With
    `stage_results[seed]` (a demo's per-item stage results, `DemoResult.results`) each difference also gets
    one interval over the pooled test items of all worlds (`stats.pooled_compare`)."""
    from actbert.demo.stats import pooled_compare

    seeds = sorted(results)
    targets: dict = {}
    for s in seeds:
        for t in results[s]["targets"]:
            row = targets.setdefault(t["task"], {"target": t["target"], "met_seeds": []})
            if t["met"]:
                row["met_seeds"].append(s)
    paired: dict = {}
    for s in seeds:
        for task, c in results[s]["paired"].items():
            row = paired.setdefault(task, {"items": c["items"], "diffs": [], "supported_seeds": []})
            row["diffs"].append(c["diff"])
            if c["supported"]:
                row["supported_seeds"].append(s)
    for task, row in paired.items():
        row.update(_spread(row["diffs"]))
        if stage_results:
            row["pooled"] = pooled_compare(stage_results, task)
    ablations: dict = {}
    for s in seeds:
        for key, c in results[s].get("ablations", {}).items():
            row = ablations.setdefault(key, {"diffs": [], "better_seeds": [], "worse_seeds": []})
            row["diffs"].append(c["diff"])
            if c["low"] > 0:
                row["better_seeds"].append(s)
            if c["high"] < 0:
                row["worse_seeds"].append(s)
    for key, row in ablations.items():
        row.update(_spread(row["diffs"]))
        if stage_results:
            task, pair = key.split(": ", 1)
            model, baseline = pair.split(" - ", 1)
            row["pooled"] = pooled_compare(stage_results, task, baseline=baseline, model=model)
    all_met = [s for s in seeds if all(t["met"] for t in results[s]["targets"])]
    return {"format": "actbert-demo-summary/1", "seeds": seeds, "preset": results[seeds[0]]["preset"],
            "targets": targets, "all_targets_met_seeds": all_met, "paired": paired, "ablations": ablations,
            "action_net_held_out": {s: results[s]["stages"]["action_net"]["held_out_accuracy"] for s in seeds},
            "total_seconds": {s: results[s]["total_seconds"] for s in seeds}}


def summary_markdown(summary: dict) -> str:
    seeds = summary["seeds"]
    n = len(seeds)
    L = [f"# ActBERT demo over {n} worlds ({summary['preset']} preset, seeds {', '.join(map(str, seeds))})", "",
         "Each world is generated from its seed and evaluated on its own test videos (`seed-<n>/report.md`). "
         "A target is met when its point estimate clears the bar and each of its 95 % bootstrap intervals lies "
         "above zero.", "", "## Targets", "", "| task | target | seeds met |", "|---|---|---|"]
    for task, row in summary["targets"].items():
        L.append(f"| {task} | {row['target']} | {len(row['met_seeds'])} of {n} ({', '.join(map(str, row['met_seeds'])) or 'none'}) |")
    met = summary["all_targets_met_seeds"]
    L += ["", f"**All five targets met on {len(met)} of {n} seeds** ({', '.join(map(str, met)) or 'none'}).", "",
          "## Pre-trained minus no pre-training, over seeds", "",
          "Difference of the task's headline metric (points; CIDEr for captioning) on each world's test items; "
          "mean and standard deviation over seeds, range, and the seeds whose own 95 % interval lies above zero.", "",
          "The last column pools the test items of all worlds into one paired bootstrap (the worlds taken as "
          "fixed): what all the items together support.", "",
          "| task | items | mean difference | std over seeds | range | seeds with interval > 0 | pooled items, 95 % interval |",
          "|---|---|---|---|---|---|---|"]
    for task, row in summary["paired"].items():
        L.append(f"| {task} | {row['items']} | {row['mean']:+.1f} | {row['std']:.1f} | [{row['min']:+.1f}, {row['max']:+.1f}] | "
                 f"{len(row['supported_seeds'])} of {n} | {_pooled(row)} |")
    if summary["ablations"]:
        L += ["", "## Ablations: `actbert` minus each variant (zero-shot tasks), over seeds", "",
              "| comparison | mean difference | std over seeds | range | seeds better (interval > 0) | seeds worse (interval < 0) "
              "| pooled items, 95 % interval |", "|---|---|---|---|---|---|---|"]
        for key, row in summary["ablations"].items():
            L.append(f"| {key} | {row['mean']:+.1f} | {row['std']:.1f} | [{row['min']:+.1f}, {row['max']:+.1f}] | "
                     f"{len(row['better_seeds'])} of {n} | {len(row['worse_seeds'])} of {n} | {_pooled(row)} |")
    acc = summary["action_net_held_out"]
    L += ["", "Action network held-out clip accuracy (held-out train videos): " +
          ", ".join(f"seed {s} {100 * a:.1f} %" for s, a in acc.items()) + ".",
          "Wall time per world: " + ", ".join(f"seed {s} {t:.0f} s" for s, t in summary["total_seconds"].items()) +
          " (load-dependent; the numbers above are not).", ""]
    return "\n".join(L)


def _pooled(row: dict) -> str:
    c = row.get("pooled")
    if not c:
        return "–"
    verdict = "above 0" if c["low"] > 0 else "below 0" if c["high"] < 0 else "spans 0"
    return f"{c['diff']:+.1f} [{c['low']:+.1f}, {c['high']:+.1f}] over {c['n_items']} {c['items']} ({verdict})"


def write_summary(out: Path, results: dict[int, dict], stage_results: dict[int, dict] | None = None
                  ) -> tuple[Path, Path, dict]:
    summary = summarize(results, stage_results)
    js = atomic_write_json(Path(out) / "summary.json", summary)
    md = atomic_write_text(Path(out) / "summary.md", summary_markdown(summary))
    return Path(md), Path(js), summary
