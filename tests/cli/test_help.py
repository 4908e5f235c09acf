"""`--help` explains every flag of every command (and of every task's evaluate / finetune parser)."""
from __future__ import annotations

import argparse
import importlib

import pytest

from actbert.cli.main import COMMANDS
from actbert.tasks.registry import TASKS


def _undocumented(parser: argparse.ArgumentParser) -> list[str]:
    missing = []
    for action in parser._actions:  # argparse keeps no public list of actions
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += [f"{name} {m}" for m in _undocumented(sub)]
        elif not isinstance(action, argparse._HelpAction) and not action.help:
            missing.append("/".join(action.option_strings) or action.dest)
    return missing


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flag_of_every_command_has_help(command):
    parser = argparse.ArgumentParser()
    importlib.import_module(COMMANDS[command][0]).add_arguments(parser)
    assert _undocumented(parser) == []


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("kind", ["evaluate", "finetune"])
def test_every_task_flag_has_help(task, kind):
    module = importlib.import_module(TASKS[task][0])
    parser = argparse.ArgumentParser()
    getattr(module, f"add_{kind}_arguments")(parser)
    assert _undocumented(parser) == []


def test_python_dash_m_actbert_is_the_command():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "actbert", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "convert" in out.stdout and "usage: actbert" in out.stdout
