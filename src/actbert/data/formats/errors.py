"""Errors and shared parsing helpers of the benchmark-format readers.

Every reader raises `FormatError(path, line, message)` for malformed input so that a user who runs
`actbert data check` on a download learns *where* the file is broken, not just that it is.
"""
from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from actbert.errors import ActbertError


class FormatError(ActbertError, ValueError):
    """A malformed benchmark file: `path`, 1-based `line` (None when the whole file is at fault), `message`."""

    def __init__(self, path: str | Path, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


@dataclass
class ReadReport:
    """Counted, non-fatal problems met while reading (e.g. ASR captions with no text).

    Readers skip such items instead of failing a long job, and count every skip here by reason so
    that nothing is dropped silently; `examples` keeps the first few locations for the user.
    """

    counts: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    max_examples: int = 10

    def add(self, reason: str, where: str) -> None:
        self.counts[reason] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(f"{reason}: {where}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def read_csv_rows(path: str | Path, required: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield `(line_number, row)` of a csv with a header that must contain the `required` columns.

    Line numbers are the physical line where the row starts (the header is line 1), which is what a
    user sees in an editor. A row with the wrong number of fields is a FormatError.
    """
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise FormatError(path, 1, "empty file, expected a csv header") from None
        header = [h.strip().lstrip("\ufeff") for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise FormatError(path, 1, f"header {header} lacks column(s) {missing}")
        line = reader.line_num + 1
        for fields in reader:
            start_line = line
            line = reader.line_num + 1
            if not fields or all(not x.strip() for x in fields):
                continue  # blank lines (e.g. a trailing newline) carry no row
            if len(fields) != len(header):
                raise FormatError(path, start_line, f"expected {len(header)} fields {header}, got {len(fields)}: {fields}")
            yield start_line, dict(zip(header, fields))


def to_float(value, path: str | Path, line: int | None, what: str) -> float:
    """Parse a finite number or raise FormatError naming the field."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise FormatError(path, line, f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise FormatError(path, line, f"{what} must be finite, got {value!r}")
    return x


def to_int(value, path: str | Path, line: int | None, what: str) -> int:
    """Parse an integer (also from a string such as "113") or raise FormatError."""
    if isinstance(value, bool):
        raise FormatError(path, line, f"{what} must be an integer, got {value!r}")
    try:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError
            return int(value)
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise FormatError(path, line, f"{what} must be an integer, got {value!r}") from None


def load_json(path: str | Path):
    """Parse a json file; a syntax error becomes a FormatError with the decoder's line."""
    import json

    path = Path(path)
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise FormatError(path, e.lineno, f"invalid json: {e.msg} (column {e.colno})") from None


def line_of(path: str | Path, needle: str) -> int | None:
    """1-based line of the first occurrence of `needle` in a text file (None if absent).

    Json records carry no line numbers once parsed; when a record is malformed we re-scan the file
    for its key (only on the error path, so big files cost nothing extra when they are well formed).
    """
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, text in enumerate(f, start=1):
            if needle in text:
                return i
    return None


def json_error(path: str | Path, key: str, message: str) -> FormatError:
    """FormatError for a malformed json record whose (unique) key is `key`; the line is looked up."""
    import json

    # `"key":` finds the key itself rather than the same string as a value (e.g. a caption "b")
    quoted = json.dumps(key)
    line = line_of(path, quoted + ":")
    return FormatError(path, line if line is not None else line_of(path, quoted), message)
