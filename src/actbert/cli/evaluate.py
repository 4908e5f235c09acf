"""`actbert evaluate TASK ...`: evaluate a downstream task with its standard metrics (results.json + .md).

Thin: the sub-parser and the work come from the task module named in `actbert.tasks.registry`, which is
imported only for the task that runs.
"""
from __future__ import annotations

import argparse
import sys

DESCRIPTION = "Evaluate a checkpoint on a downstream task; writes results.json and results.md to --out."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_subparsers(parser, "evaluate")


def add_task_subparsers(parser: argparse.ArgumentParser, action: str) -> None:
    """One sub-parser per task; its options are added only when that task is chosen (lazy import)."""
    from actbert.tasks.registry import TASKS

    parser.add_argument("task", choices=list(TASKS), metavar="TASK",
                        help="; ".join(f"{n}: {h}" for n, (_, h) in TASKS.items()))
    parser.add_argument("task_args", nargs=argparse.REMAINDER, help="the task's options (actbert %s TASK --help)" % action)


def run_task(args: argparse.Namespace, action: str) -> int:
    from actbert.tasks.registry import TASKS, load_task

    try:
        module = load_task(args.task)
    except ImportError as exc:
        print(f"actbert {action} {args.task}: the task module cannot be imported ({exc})", file=sys.stderr)
        return 2
    sub = argparse.ArgumentParser(prog=f"actbert {action} {args.task}", description=TASKS[args.task][1],
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    getattr(module, f"add_{action}_arguments")(sub)
    if action == "finetune" and not getattr(module, "HAS_FINETUNE", True) and "-h" not in args.task_args \
            and "--help" not in args.task_args:
        print(sub.description, file=sys.stderr)  # a zero-shot task: say why, whatever options were given
        return int(module.run_finetune(argparse.Namespace(task=args.task)))
    task_args = sub.parse_args(args.task_args)
    task_args.task = args.task
    return int(getattr(module, f"run_{action}")(task_args) or 0)


def run(args: argparse.Namespace) -> int:
    return run_task(args, "evaluate")
