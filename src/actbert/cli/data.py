"""`actbert data check FORMAT PATH`: read a benchmark / corpus file and print a JSON summary.

Run it on a download before a long job: a malformed file exits with status 2 and a message naming
the file and line, instead of failing hours into training or evaluation.
"""
from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = ("Check benchmark and corpus files. `actbert data check FORMAT PATH` reads PATH with the "
               "FORMAT reader and prints a JSON summary (videos, clips, captions, questions, tasks, steps, "
               "seconds annotated); a malformed file exits non-zero naming the file and line.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from actbert.data.formats import FORMATS

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="read PATH as FORMAT and print a JSON summary",
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog="formats:\n" + "\n".join(f"  {n:<20} {f.path_is}" for n, f in FORMATS.items()))
    check.add_argument("format", metavar="FORMAT", choices=list(FORMATS), help="one of: " + ", ".join(FORMATS))
    check.add_argument("path", metavar="PATH", help="the file (or folder for coin-taxonomy / crosstask) to check")
    check.add_argument("--compact", action="store_true", help="print the summary on one line instead of indented")
    sub.add_parser("formats", help="list the FORMAT names and what PATH each expects")


def run(args: argparse.Namespace) -> int:
    from actbert.data.formats import FORMATS, FormatError, summarize

    if args.action == "formats":
        for name, fmt in FORMATS.items():
            print(f"{name:<20} {fmt.path_is}")
        return 0
    try:
        summary = summarize(args.format, args.path)
    except FormatError as e:
        print(f"actbert data check: malformed {args.format} input: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, UnicodeDecodeError) as e:
        print(f"actbert data check: cannot read {args.path}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=None if args.compact else 2))
    return 0
