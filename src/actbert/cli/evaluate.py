"""`actbert evaluate TASK ...`: evaluate a downstream task with its standard metrics (results.json + .md).

Thin: the sub-parser and the work come from the task module named in `actbert.tasks.registry`, which is
imported only for the task that runs.
"""
from __future__ import annotations

import argparse
import sys

from actbert.cli.options import HelpFormatter, resolve_device

DESCRIPTION = "Evaluate a checkpoint on a downstream task; writes results.json and results.md to --out."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_subparsers(parser, "evaluate")


def add_task_subparsers(parser: argparse.ArgumentParser, action: str) -> None:
    """One sub-parser per task; its options are added only when that task is chosen (lazy import)."""
    from actbert.tasks.registry import TASKS, finetune_task_names

    names = finetune_task_names() if action == "finetune" else list(TASKS)
    note = " (the other tasks are zero-shot: `actbert evaluate TASK`)" if action == "finetune" else ""
    # choices stay every task, so `actbert finetune qa` reaches the task's own explanation of why not
    parser.add_argument("task", choices=list(TASKS), metavar="TASK",
                        help="; ".join(f"{n}: {TASKS[n][1]}" for n in names) + note)
    parser.add_argument("task_args", nargs=argparse.REMAINDER, help="the task's options (actbert %s TASK --help)" % action)


def run_task(args: argparse.Namespace, action: str) -> int:
    from actbert.tasks.registry import TASKS, load_task

    try:
        module = load_task(args.task)
    except ImportError as exc:
        print(f"actbert {action} {args.task}: the task module cannot be imported ({exc})", file=sys.stderr)
        return 2
    sub = task_parser(module, args.task, action)
    if action == "finetune" and not getattr(module, "HAS_FINETUNE", True) and "-h" not in args.task_args \
            and "--help" not in args.task_args:
        print(sub.description, file=sys.stderr)  # a zero-shot task: say why, whatever options were given
        return int(module.run_finetune(argparse.Namespace(task=args.task)))
    task_args = sub.parse_args(args.task_args)
    task_args.task = args.task
    if hasattr(task_args, "device"):
        task_args.device = resolve_device(task_args.device)
    return int(getattr(module, f"run_{action}")(task_args) or 0)


def task_parser(module, task: str, action: str) -> argparse.ArgumentParser:
    """The parser of `actbert ACTION TASK` (what it parses and prints as help)."""
    from actbert.tasks.registry import TASKS

    sub = argparse.ArgumentParser(prog=f"actbert {action} {task}", description=TASKS[task][1],
                                  formatter_class=HelpFormatter)
    getattr(module, f"add_{action}_arguments")(sub)
    return sub


def run(args: argparse.Namespace) -> int:
    return run_task(args, "evaluate")
