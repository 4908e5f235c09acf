"""Results files of every evaluation: `results.json` (machine-readable) + `results.md` (a Markdown table).

A run directory holds one evaluation. `results.json` says what was measured and how (task, dataset,
protocol, split), with which weights (checkpoint) and settings (config), when, and by which version of
actbert, so that numbers from different runs are never compared without knowing what they are.
Both files are written atomically (temporary file + `os.replace`), `results.json` last, so a run
directory with a `results.json` always holds a complete pair, even if the job was killed mid-write.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from actbert.utils import new_file_mode

__all__ = ["SCHEMA", "SCHEMA_VERSION", "write_results", "load_results", "flatten_metrics", "compare_runs",
           "format_value"]

SCHEMA = "actbert.results"
SCHEMA_VERSION = 1
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
_REQUIRED = ("schema_version", "task", "dataset", "protocol", "split", "metrics")
_META_ROWS = ("task", "dataset", "protocol", "split", "checkpoint")
_MISSING = "–"


def _jsonable(value: Any, where: str) -> Any:
    """Plain-JSON copy of `value`: numpy → Python, Path → str, NaN/inf → null (strict JSON has no NaN)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), where)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(v, where) for v in value)
    raise ValueError(f"{where} holds a {type(value).__name__}, which results.json cannot store: {value!r}")


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, new_file_mode())  # mkstemp's 0o600 would make the file private
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def flatten_metrics(metrics: Mapping, prefix: str = "") -> dict[str, Any]:
    """Nested metric dicts → one level with dotted names (``{"t2v": {"R1": 9.6}}`` → ``{"t2v.R1": 9.6}``)."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def format_value(value: Any) -> str:
    """Table cell: floats with 2 decimals (4 below 1, where CIDEr and fractions live), `n/a` for null."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.2f}" if value == 0 or abs(value) >= 1 else f"{value:.4f}"
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    esc = [h.replace("|", "\\|") for h in header]
    lines = ["| " + " | ".join(esc) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _markdown(record: dict) -> str:
    title = f"# {record['task']} on {record['dataset']} ({record['split']})\n\n"
    meta = [(k, format_value(record.get(k))) for k in (*_META_ROWS, "timestamp", "actbert_version")]
    body = _table(["field", "value"], meta) + "\n"
    flat = flatten_metrics(record["metrics"])
    body += _table(["metric", "value"], [(name, format_value(v)) for name, v in flat.items()])
    return title + body


def write_results(out_dir, task: str, dataset: str, protocol: str, split: str, metrics: Mapping,
                  checkpoint: str | None, config: Mapping, extra: Mapping | None = None) -> Path:
    """Write `out_dir/results.json` and `out_dir/results.md`; return the path of `results.json`.

    `metrics` may nest (``{"t2v": {...}, "v2t": {...}}``); numpy values are converted and NaN is stored
    as null. `config` is the run's settings (any JSON-able mapping); `extra` holds anything else worth
    keeping (timings, sample counts, per-item outputs).
    """
    for name, value in (("task", task), ("dataset", dataset), ("protocol", protocol), ("split", split)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if not isinstance(metrics, Mapping) or not metrics:
        raise ValueError(f"metrics must be a non-empty mapping, got {metrics!r}")
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise ValueError(f"checkpoint must be a path string or None, got {checkpoint!r}")
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a mapping, got {type(config).__name__}")
    from actbert import __version__

    record = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "task": task,
        "dataset": dataset,
        "protocol": protocol,
        "split": split,
        "metrics": _jsonable(metrics, "metrics"),
        "checkpoint": None if checkpoint is None else os.fspath(checkpoint),
        "config": _jsonable(config, "config"),
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "actbert_version": __version__,
        "extra": _jsonable(extra or {}, "extra"),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / RESULTS_MD, _markdown(record))
    path = out / RESULTS_JSON
    _atomic_write(path, json.dumps(record, indent=2, allow_nan=False) + "\n")
    return path


def load_results(path_or_dir) -> dict:
    """Read a `results.json` (or the one inside a run directory) and check its schema."""
    path = Path(path_or_dir)
    if path.is_dir():
        path = path / RESULTS_JSON
    if not path.is_file():
        raise FileNotFoundError(f"no results file at {path}")
    from actbert.errors import InputError, read_json

    record = read_json(path)
    if not isinstance(record, dict):
        raise InputError(path, f"{path} must hold a JSON object, got {type(record).__name__}")
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        raise ValueError(f"{path} is not an actbert results file: missing {missing}")
    version = record["schema_version"]
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ValueError(f"{path} has schema_version {version!r}; this actbert reads versions <= {SCHEMA_VERSION}")
    if not isinstance(record["metrics"], dict):
        raise ValueError(f"{path}: metrics must be an object, got {type(record['metrics']).__name__}")
    record["path"] = str(path)
    return record


def _run_names(paths: Sequence[Path]) -> list[str]:
    """Column names: the run directory's name, made unique with its parent folders when needed."""
    dirs = [p if p.is_dir() else p.parent for p in paths]
    depth = 1
    while True:
        names = ["/".join(d.resolve().parts[-depth:]) or str(d) for d in dirs]
        if len(set(names)) == len(names) or depth > max(len(d.resolve().parts) for d in dirs):
            break
        depth += 1
    if len(set(names)) != len(names):  # the same run given twice
        names = [f"{n} ({i + 1})" for i, n in enumerate(names)]
    return names


def compare_runs(paths: Sequence) -> str:
    """Markdown table of several runs side by side: one column per run, one row per metric.

    The first rows say what each run measured (task, dataset, protocol, split, checkpoint); then every
    metric that any run has, in order of first appearance, `–` where a run does not have it.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("paths is empty: give at least one run directory or results.json")
    records = [load_results(p) for p in paths]
    names = _run_names(paths)
    flats = [flatten_metrics(r["metrics"]) for r in records]
    order: dict[str, None] = {}
    for flat in flats:
        order.update(dict.fromkeys(flat))
    rows = [[f"*{key}*"] + [format_value(r.get(key)) if r.get(key) is not None else _MISSING for r in records]
            for key in _META_ROWS]
    rows += [[name.replace("|", "\\|")] + [format_value(f[name]) if name in f else _MISSING for f in flats]
             for name in order]
    return _table(["metric", *names], rows)
