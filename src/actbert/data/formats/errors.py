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

from actbert.errors import ActbertError, InputError, loads_json, read_json


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


def utf8_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """`(line number, text with its line ending)` of a UTF-8 file; a line that is not UTF-8 is a FormatError
    naming that line (Python's own UnicodeDecodeError gives a byte offset into a buffer, no line)."""
    path = Path(path)
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise FormatError(path, lineno, f"not valid UTF-8 (byte {raw[e.start:e.start + 1]!r} at column "
                                                f"{e.start + 1}); save the file as UTF-8") from None


def csv_records(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """`(line where the record starts, fields)` of a csv file; csv errors (an unclosed quote, a field over
    the csv module's size limit, a NUL byte) and invalid UTF-8 are FormatErrors naming the line."""
    path = Path(path)
    lines = utf8_lines(path)
    # strict: a quote left open at the end of the file is an error, not a last field that swallowed the rest
    reader = csv.reader((text for _, text in lines), strict=True)
    start = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise FormatError(path, start, f"csv: {e} (an unclosed quote runs to the end of the file)"
                              if "unexpected end of data" in str(e) or "EOF" in str(e) else f"csv: {e}") from None
        yield start, fields
        start = reader.line_num + 1


def read_csv_rows(path: str | Path, required: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield `(line_number, row)` of a csv with a header that must contain the `required` columns.

    Line numbers are the physical line where the row starts (the header is line 1), which is what a
    user sees in an editor. A row with the wrong number of fields is a FormatError.
    """
    path = Path(path)
    records = csv_records(path)
    first = next(records, None)
    if first is None:
        raise FormatError(path, 1, "empty file, expected a csv header")
    header = [h.strip().lstrip("\ufeff") for h in first[1]]
    missing = [c for c in required if c not in header]
    if missing:
        raise FormatError(path, 1, f"header {header} lacks column(s) {missing}")
    for start_line, fields in records:
        if not fields or all(not x.strip() for x in fields):
            continue  # blank lines (e.g. a trailing newline) carry no row
        if len(fields) != len(header):
            raise FormatError(path, start_line, f"expected {len(header)} fields {header}, got {len(fields)}: "
                                                f"{clip_repr(fields)}")
        yield start_line, dict(zip(header, fields))


def clip_repr(value, limit: int = 200) -> str:
    """repr of a value cut to `limit` characters: a 50 MB field must not become a 50 MB error line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def to_float(value, path: str | Path, line: int | None, what: str) -> float:
    """Parse a finite number or raise FormatError naming the field."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise FormatError(path, line, f"{what} must be a number, got {clip_repr(value)}") from None
    if not math.isfinite(x):
        raise FormatError(path, line, f"{what} must be finite, got {clip_repr(value)}")
    return x


def to_int(value, path: str | Path, line: int | None, what: str) -> int:
    """Parse an integer (also from a string such as "113") or raise FormatError."""
    if isinstance(value, bool):
        raise FormatError(path, line, f"{what} must be an integer, got {clip_repr(value)}")
    try:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError
            return int(value)
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise FormatError(path, line, f"{what} must be an integer, got {clip_repr(value)}") from None


def load_json(path: str | Path):
    """Parse a json file; invalid UTF-8, syntax errors, too-deep nesting and duplicate keys are FormatErrors
    with the line (see `actbert.errors.read_json`)."""
    try:
        return read_json(path)
    except InputError as e:
        raise FormatError(e.path, e.line, e.problem) from None


def load_json_line(path: str | Path, lineno: int, text: str):
    """One record of a JSON-lines file, with the same checks as `load_json`."""
    try:
        return loads_json(text, path, lineno)
    except InputError as e:
        raise FormatError(e.path, e.line, e.problem) from None


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
