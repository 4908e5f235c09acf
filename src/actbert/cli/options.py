"""The flags every command shares, spelled and explained once, so `actbert COMMAND --help` reads as one tool.

- `--model DIR`: a model folder, in the one convention `resolve_checkpoint` reads (a checkpoint folder, or a
  run folder holding `model/` or `checkpoints/step-*`);
- `--out DIR`: the one output folder of a command;
- `--no-progress`: hide progress bars;
- `--device`: torch device, default cuda when available, else cpu (`resolve_device`);
- `--val-fraction`: share held out for evaluation.

Old spellings (`--checkpoint`, `--output`, `--quiet`, `--held-out`, ...) still parse, hidden from `--help`,
and print a one-line deprecation warning naming the new flag.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

DEVICE_HELP = "torch device: cpu, cuda or cuda:K (default: cuda when available, else cpu)"


class HelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" only where it tells something: not on required flags, not for None / False
    defaults, and not when the help text already states its default. Hides retired spellings."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.required or not action.option_strings or action.default is None or action.default is False
                or action.default == argparse.SUPPRESS or "default" in text.lower()):
            return text
        return text + " (default: %(default)s)"

    def _format_action_invocation(self, action: argparse.Action) -> str:
        old = getattr(action, "retired", ())
        if not old:
            return super()._format_action_invocation(action)
        shown = action.option_strings
        action.option_strings = [o for o in shown if o not in old]
        try:
            return super()._format_action_invocation(action)
        finally:
            action.option_strings = shown


def _warn(parser, old: str, new: str) -> None:
    print(f"{parser.prog}: warning: {old} is deprecated and will be removed; use {new}", file=sys.stderr)


class _RetiredSpellings:
    """Mixin of an argparse action that also answers to old spellings (`retired`), with a warning."""

    retired: frozenset = frozenset()

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string in self.retired:
            _warn(parser, option_string, self.option_strings[0])
        super().__call__(parser, namespace, values, option_string)


class _StoreWithRetired(_RetiredSpellings, argparse._StoreAction):
    pass


class _StoreTrueWithRetired(_RetiredSpellings, argparse._StoreTrueAction):
    pass


def flag(parser, name: str, *retired: str, **kwargs: Any) -> argparse.Action:
    """`parser.add_argument(name, ...)` that also accepts the `retired` spellings: hidden from --help, and
    a one-line warning naming `name` when used. The same argparse action, so `required` still holds."""
    cls = _StoreTrueWithRetired if kwargs.pop("action", None) == "store_true" else _StoreWithRetired
    action = parser.add_argument(name, *retired, action=cls, **kwargs)
    action.retired = frozenset(retired)
    return action


class _RetiredOption(argparse.Action):
    """An old flag whose values differ from its replacement's (e.g. `--index faiss` -> `--faiss`)."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        self.new = new
        kwargs.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        _warn(parser, option_string, self.new)
        setattr(namespace, self.dest, values)


def deprecated(parser, old: str, new: str, dest: str, **kwargs: Any) -> None:
    """A hidden `old` option stored into `dest` (read by the command) with a warning pointing to `new`."""
    parser.add_argument(old, dest=dest, action=_RetiredOption, new=new, **kwargs)


def add_model(parser, required: bool = True, what: str = "ActBERT model",
              help: str | None = None) -> None:  # noqa: A002 - argparse's own name
    flag(parser, "--model", "--checkpoint", required=required, metavar="DIR", help=help or (
        f"{what}: a checkpoint folder, or a run folder holding its model/ or checkpoints/step-* "
        "(as `actbert pretrain --out` and `actbert finetune --out` write)"))


def add_out(parser, help: str, required: bool = True, metavar: str = "DIR", **kwargs: Any) -> None:  # noqa: A002
    flag(parser, "--out", "--output", required=required, metavar=metavar, help=help, **kwargs)


def add_no_progress(parser, help: str = "hide progress bars") -> None:  # noqa: A002
    flag(parser, "--no-progress", "--quiet", action="store_true", help=help)


def add_device(parser) -> None:
    parser.add_argument("--device", default=None, help=DEVICE_HELP)


def resolve_device(device: str | None) -> str:
    """`--device` as given, or cuda when available, else cpu."""
    if device and device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def add_val_fraction(parser, default: float, what: str = "videos") -> None:
    flag(parser, "--val-fraction", "--held-out", type=float, default=default,
         help=f"share of {what} held out for evaluation")


def add_regions_per_frame(parser, default: int | None, help: str) -> None:  # noqa: A002
    flag(parser, "--regions-per-frame", "--top-k", type=int, default=default, metavar="K", help=help)
