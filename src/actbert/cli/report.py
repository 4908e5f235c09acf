"""`actbert report RUN...`: compare the results.json of several evaluation runs side by side."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = (
    "Print a Markdown table comparing evaluation runs: one column per run, one row per metric, headed by "
    "what each run measured (task, dataset, protocol, split, checkpoint). Each RUN is a run directory "
    "holding results.json, or a results.json file."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run directory (holding results.json) or path to a results.json")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="also write the table to this Markdown file")


def run(args: argparse.Namespace) -> int:
    from actbert.tasks.results import compare_runs

    try:
        table = compare_runs(args.runs)
    except (FileNotFoundError, ValueError) as exc:
        print(f"actbert report: {exc}", file=sys.stderr)
        return 2
    print(table, end="")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table, encoding="utf-8")
    return 0
