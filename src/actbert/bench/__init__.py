"""Benchmarks behind `actbert bench NAME`; results and commands are in docs/performance.md."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def write_bench_outputs(out: str | Path, result: dict[str, Any], markdown: str) -> None:
    """`out` gets the JSON result and a `.md` table beside it, both written atomically."""
    from actbert.utils import atomic_write_json, atomic_write_text

    atomic_write_json(out, result)
    atomic_write_text(Path(out).with_suffix(".md"), markdown)
