"""What a run leaves for people to read: metrics.jsonl (+ metrics.csv), TensorBoard events, curves.png,
and a final summary table. Only rank 0 creates a MetricsLog.

Each JSONL record is `{"step": n, "split": "train"|"eval", "time": s, <metric>: value, ...}`. On resume,
records after the resumed step (written by the killed run after its last checkpoint) are dropped so the
log reads as one uninterrupted run; TensorBoard gets the same treatment through `purge_step`.
"""
from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Any

from actbert.utils import atomic_path, atomic_write_text

JSONL, CSV, PLOT, TB_DIR = "metrics.jsonl", "metrics.csv", "curves.png", "tensorboard"


class MetricsLog:
    def __init__(self, out_dir: str | Path, resume_step: int | None = None, tensorboard: bool = True):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / JSONL
        self.records: list[dict[str, Any]] = []
        if resume_step is not None and self.path.is_file():
            self.records = [r for r in read_jsonl(self.path) if r.get("step", 0) <= resume_step]
        with atomic_path(self.path) as tmp:  # rewrite what survives, then append from here
            tmp.write_text("".join(json.dumps(r) + "\n" for r in self.records))
        self._file = open(self.path, "a", buffering=1)
        self._start = time.time()
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.dir / TB_DIR), purge_step=resume_step + 1 if resume_step else None)

    def log(self, step: int, split: str, metrics: dict[str, float]) -> dict[str, Any]:
        record = {"step": step, "split": split, "time": round(time.time() - self._start, 3)}
        record.update({k: _clean(v) for k, v in metrics.items()})
        self.records.append(record)
        self._file.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in metrics.items():
                if value is not None and math.isfinite(value):
                    self.writer.add_scalar(f"{split}/{key}", value, step)
        return record

    def close(self) -> None:
        self._file.close()
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None

    def finish(self) -> dict[str, Path]:
        """Write metrics.csv and curves.png from the records; returns their paths."""
        self.close()
        return {"csv": write_csv(self.records, self.dir / CSV), "plot": plot_curves(self.records, self.dir / PLOT)}


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf; keep the fact that it happened as a string
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of a metrics log; a torn last line (a kill mid-write) is skipped, other bad lines raise."""
    path = Path(path)
    lines = path.read_text().splitlines()
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if i == len(lines):
                break
            raise ValueError(f"{path}:{i}: not a JSON record ({exc})") from None
    return out


def write_csv(records: list[dict[str, Any]], path: Path) -> Path:
    keys: list[str] = []
    for r in records:
        keys += [k for k in r if k not in keys]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(records)
    return path


def plot_curves(records: list[dict[str, Any]], path: Path) -> Path:
    """Three panels against the step: training losses, held-out losses, held-out accuracies and R@1 (percent)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    train = [r for r in records if r.get("split") == "train"]
    held = [r for r in records if r.get("split") == "eval"]
    panels = [
        ("training losses", train, lambda k: k == "loss" or k.startswith("loss_"), 1.0),
        ("held-out losses", held, lambda k: k.startswith("loss_"), 1.0),
        ("held-out accuracy / R@1 (%)", held, lambda k: k.endswith("_acc"), 100.0),
        (None, held, lambda k: k in ("t2v_R1", "t2v_chance_R1"), 1.0),  # already percent: same panel
    ]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.5))
    for i, (title, rows, keep, scale) in enumerate(panels):
        ax = axes[min(i, 2)]
        names = sorted({k for r in rows for k, v in r.items() if keep(k) and _number(v)})
        for name in names:
            pts = [(r["step"], r[name] * scale) for r in rows if _number(r.get(name))]
            style = "--" if "majority" in name or "chance" in name else "-"
            ax.plot(*zip(*pts), style, marker="o" if len(pts) < 30 else None, markersize=3, label=name)
        if title:
            ax.set_title(title)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:  # below the panel: a legend inside would hide the curves
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def summary_table(summary: dict[str, Any]) -> str:
    """A two-column plain-text table of the final summary (printed at the end of a run)."""
    rows = [(k, _fmt(v)) for k, v in summary.items()]
    width = max((len(k) for k, _ in rows), default=0)
    line = "-" * (width + 2 + max((len(v) for _, v in rows), default=0))
    return "\n".join([line, *(f"{k.ljust(width)}  {v}" for k, v in rows), line])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_summary(summary: dict[str, Any], out_dir: Path) -> Path:
    return atomic_write_text(Path(out_dir) / "summary.json", json.dumps(summary, indent=2, default=str))
