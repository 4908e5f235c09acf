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


# --- one tool: the same flag for the same thing, and help text that says each default once -----------------
from actbert.cli.evaluate import task_parser  # noqa: E402
from actbert.cli.main import command_parser, main  # noqa: E402
from actbert.cli.options import DEVICE_HELP, HelpFormatter  # noqa: E402
from actbert.tasks.registry import ZERO_SHOT, finetune_task_names, load_task  # noqa: E402

# old spellings: still parsed (hidden, with a warning) but never offered by --help
RETIRED = {"--output", "--quiet", "--checkpoint", "--held-out", "--k"}
# flag -> the only commands where it may appear (one meaning per name)
ONLY_IN = {"--top-k": {"search", "serve"}, "--index": {"search"}}


def _all_parsers():
    for name in sorted(COMMANDS):
        yield name, command_parser(name)[1]
    for task in TASKS:
        module = load_task(task)
        for action in ("evaluate", "finetune"):
            if action == "finetune" and task in ZERO_SHOT:
                continue
            yield f"{action} {task}", task_parser(module, task, action)


def _visible(parser):
    for action in parser._actions:
        if action.help != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction):
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from _visible(sub)
            else:
                yield action


def test_help_reads_as_one_tool():
    problems = []
    for where, parser in _all_parsers():
        fmt = HelpFormatter(parser.prog)
        for action in _visible(parser):
            flag = "/".join(action.option_strings) or action.dest
            text = fmt._expand_help(action) if action.help else ""
            if "(default: None)" in text:
                problems.append(f"{where} {flag}: prints (default: None)")
            if action.required and "(default" in text.lower():
                problems.append(f"{where} {flag}: required, yet its help names a default")
            if text.lower().count("default:") > 1:
                problems.append(f"{where} {flag}: default stated twice: {text!r}")
            for opt in set(action.option_strings) - getattr(action, "retired", set()):
                if opt in RETIRED:
                    problems.append(f"{where}: offers the retired spelling {opt}")
                if opt in ONLY_IN and where.split()[0] not in ONLY_IN[opt]:
                    problems.append(f"{where}: {opt} means something else than in {sorted(ONLY_IN[opt])}")
                if opt == "--device" and (action.help != DEVICE_HELP or action.default is not None):
                    problems.append(f"{where} --device: help/default differ from every other command's")
    assert problems == []


def test_every_help_prints_and_finetune_lists_only_trainable_tasks(capsys):
    for argv in [[c] for c in COMMANDS] + [[a, t] for t in TASKS for a in ("evaluate", "finetune")
                                              if not (a == "finetune" and t in ZERO_SHOT)]:
        with pytest.raises(SystemExit) as exit_:
            main([*argv, "--help"])
        assert exit_.value.code == 0, argv
        out = capsys.readouterr().out
        assert "(default: None)" not in out and out.startswith(f"usage: actbert {' '.join(argv)}"), argv
        if argv == ["finetune"]:
            listed = out.split("TASK", 2)[2]
            assert all(f"{t}:" in listed for t in finetune_task_names())
            assert not any(f"{t}:" in listed for t in ZERO_SHOT)


def test_zero_shot_set_matches_the_task_modules():
    assert {t for t in TASKS if not getattr(load_task(t), "HAS_FINETUNE", True)} == set(ZERO_SHOT)


def test_retired_spellings_still_work_with_a_warning(capsys):
    _, parser = command_parser("extract")
    args = parser.parse_args(["v", "--out", "s", "--action-net", "a", "--detector", "d", "--quiet", "--top-k", "3"])
    assert args.no_progress is True and args.regions_per_frame == 3
    err = capsys.readouterr().err
    assert "--quiet is deprecated" in err and "use --no-progress" in err and "use --regions-per-frame" in err
    args = parser.parse_args(["v", "--out", "s", "--action-net", "a", "--detector", "d"])
    assert args.no_progress is False and args.regions_per_frame is None and capsys.readouterr().err == ""
    _, parser = command_parser("train-action-net")
    args = parser.parse_args(["--videos", "v", "--captions", "c", "--vocab", "x", "--output", "o", "--held-out", "0.3"])
    assert args.out == "o" and args.val_fraction == 0.3
    task = task_parser(load_task("retrieval"), "retrieval", "evaluate")
    args = task.parse_args(["--checkpoint", "m", "--store", "s", "--out", "o", "--dataset", "youcook2",
                            "--annotations", "a", "--k", "7"])
    assert args.model == "m" and args.rerank == 7


def test_python_dash_m_actbert_is_the_command():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "actbert", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "convert" in out.stdout and "usage: actbert" in out.stdout
