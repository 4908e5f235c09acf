"""`actbert` command line: one sub-module of `actbert.cli` per command.

Each command module defines `add_arguments(parser)` and `run(args) -> int`. Modules are imported only
for the command that runs, so `actbert --help` stays fast and one broken optional dependency does not
take every command down.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# command name -> (module, one-line help). Order is the order of a typical workflow.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("actbert.cli.demo", "run the whole pipeline on a generated world of narrated videos"),
    "world": ("actbert.cli.world", "generate the synthetic narrated-video world (videos + annotations)"),
    "data": ("actbert.cli.data", "check a benchmark / corpus file before a long job"),
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
    "bench": ("actbert.cli.bench", "benchmarks (train-step, data loading, store, retrieval, search)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="actbert",
        description="ActBERT: global-local video-text representations, from raw video to downstream metrics.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _version() -> str:
    from actbert import __version__

    return f"actbert {__version__}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in {"-h", "--help", "--version"} or argv[0] not in COMMANDS:
        parser.parse_args(argv or ["--help"])
        return 0
    name, rest = argv[0], argv[1:]
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    sub = argparse.ArgumentParser(prog=f"actbert {name}", description=getattr(module, "DESCRIPTION", help_text),
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    module.add_arguments(sub)
    args = sub.parse_args(rest)
    return int(module.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
