"""`actbert` command line: one sub-module of `actbert.cli` per command.

Each command module defines `add_arguments(parser)` and `run(args) -> int`. Modules are imported only
for the command that runs, so `actbert --help` stays fast and one broken optional dependency does not
take every command down.

Errors: an expected failure (an `actbert.errors.ActbertError` - bad file, bad config, corrupt store or
index, refused pickle - or an OSError such as a full disk) is printed as ONE line naming the file and the
problem, with exit status 2; `--debug` (or ACTBERT_DEBUG=1) shows the traceback instead. Any other
exception is a bug and keeps its traceback (docs/errors.md lists what each kind of bad input gets).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Callable

EXIT_ERROR = 2  # an expected failure, reported in one line (1 stays "finished, but some items failed")
DEBUG_HELP = "show the full traceback of an error instead of the one-line message (also ACTBERT_DEBUG=1)"

from actbert.cli.options import HelpFormatter

# command name -> (module, one-line help). Order is the order of a typical workflow.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("actbert.cli.demo", "run the whole pipeline on a generated world of narrated videos"),
    "world": ("actbert.cli.world", "generate the synthetic narrated-video world (videos + annotations)"),
    "data": ("actbert.cli.data", "check a benchmark / corpus file before a long job"),
    "transcribe": ("actbert.cli.transcribe", "narration captions from videos: subtitles, else offline speech recognition"),
    "vocab": ("actbert.cli.vocab", "mine verbs from narration and build the action vocabulary"),
    "train-action-net": ("actbert.cli.train_action_net", "train the 3D CNN on (clip, verb) pairs"),
    "train-detector": ("actbert.cli.train_detector", "train / fine-tune the Faster R-CNN region detector"),
    "extract": ("actbert.cli.extract", "decode videos and write action + region features to a store"),
    "pretrain": ("actbert.cli.pretrain", "pre-train ActBERT with the four objectives (torchrun for DDP)"),
    "finetune": ("actbert.cli.finetune", "fine-tune on a downstream task"),
    "evaluate": ("actbert.cli.evaluate", "evaluate a downstream task with its standard metrics"),
    "report": ("actbert.cli.report", "compare results.json of several runs side by side"),
    "index": ("actbert.cli.index", "build a search index of clips from videos or a feature store"),
    "search": ("actbert.cli.search", "search an index with a text query"),
    "convert": ("actbert.cli.convert", "convert PaddleVideo's ActBERT weights (.pdparams) to a checkpoint folder"),
    "serve": ("actbert.cli.serve", "local web page to search an index and watch the clips it finds"),
    "bench": ("actbert.cli.bench", "benchmarks (train-step, data loading, store, retrieval, search)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="actbert",
        description="ActBERT: global-local video-text representations, from raw video to downstream metrics.",
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _version() -> str:
    from actbert import __version__

    return f"actbert {__version__}"


def run_reporting_errors(prog: str, fn: Callable[[], int | None], debug: bool = False) -> int:
    """Run `fn`; an expected failure becomes one line on stderr and exit status EXIT_ERROR.

    `debug` (or ACTBERT_DEBUG=1) re-raises, so the traceback is shown. Used by `main` and by the worker
    processes `actbert pretrain --nproc` spawns, so every process reports errors the same way.
    """
    from actbert.errors import describe

    try:
        return int(fn() or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        line = describe(exc)
        if line is None or debug or os.environ.get("ACTBERT_DEBUG", "") not in ("", "0"):
            raise
        print(f"{prog}: error: {line}", file=sys.stderr)
        return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = False
    while argv and argv[0] == "--debug":  # `actbert --debug COMMAND ...`
        debug, argv = True, argv[1:]
    parser = build_parser()
    if not argv or argv[0] in {"-h", "--help", "--version"} or argv[0] not in COMMANDS:
        parser.parse_args(argv or ["--help"])
        return 0
    name, rest = argv[0], argv[1:]
    module, sub = command_parser(name)
    args = sub.parse_args(rest)
    return run_reporting_errors(f"actbert {name}", lambda: module.run(args), debug or args.debug)


def command_parser(name: str):
    """`(module, parser)` of command `name`: the parser `actbert NAME` parses with (and prints as help)."""
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    sub = argparse.ArgumentParser(prog=f"actbert {name}", description=getattr(module, "DESCRIPTION", help_text),
                                  formatter_class=HelpFormatter)
    module.add_arguments(sub)
    sub.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    return module, sub


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
