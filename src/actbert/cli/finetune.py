"""`actbert finetune TASK ...`: fine-tune on a downstream task, then evaluate on its held-out split.

Thin: sub-parsers and work come from the task modules of `actbert.tasks.registry` (see `actbert.cli.evaluate`).
Zero-shot tasks (localization, qa) explain this and exit with status 2.
"""
from __future__ import annotations

import argparse

from actbert.cli.evaluate import add_task_subparsers, run_task

DESCRIPTION = "Fine-tune a checkpoint on a downstream task and evaluate it on the task's held-out split."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_subparsers(parser, "finetune")


def run(args: argparse.Namespace) -> int:
    return run_task(args, "finetune")
