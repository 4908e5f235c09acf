"""The one error surface of actbert: expected failures are named, one line, and never a traceback.

Every error a user can cause with a bad file or a bad setting derives from :class:`ActbertError`
(format, config, checkpoint, store, index, video errors); `actbert.cli.main` prints such an error as one
line naming the file and the problem and exits non-zero. Anything else is a bug and keeps its traceback.

This module also holds the guarded readers every loader uses, so that the classes of bad input that
Python reports without a file name (invalid UTF-8, JSON nested past the recursion limit, duplicate JSON
keys, a pickle in a `.bin`, a full disk) are turned into named errors in one place:

* :func:`read_json` / :func:`loads_json` - UTF-8 with a line number, too-deep nesting and duplicate keys
  refused with the file's name;
* :func:`read_text` - UTF-8 with a line number;
* :func:`torch_load_weights` - ``torch.load(weights_only=True)``; a refused or garbled pickle names the
  file and never suggests ``weights_only=False``;
* :func:`naming_file` - gives an ``OSError`` raised while writing a file (``ENOSPC``: disk full) the
  file's name, which ``write()`` errors lack.
"""
from __future__ import annotations

import contextlib
import errno
import json
from pathlib import Path
from typing import Any, Iterator

__all__ = ["ActbertError", "InputError", "ConfigError", "read_json", "loads_json", "read_text", "utf8_error",
           "torch_load_weights", "read_safetensors", "naming_file", "describe"]

# A JSON file we read in full (configs, index and store metadata, caption files) is refused above this:
# the biggest real one (HowTo100M's caption.json) is ~2.6 GB, so the limit only stops /dev/zero-like input.
MAX_JSON_BYTES = 8 << 30


class ActbertError(Exception):
    """Base of every expected, user-caused failure: the CLI prints ``str(error)`` as one line."""


class InputError(ActbertError, ValueError):
    """A bad input file: ``path``, optional 1-based ``line``, ``problem``."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None):
        self.path, self.line, self.problem = str(path), line, problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class ConfigError(ActbertError, ValueError):
    """A config (ActBERT, BERT, action net, detector, training) that cannot describe a model we can build.

    Raised before anything is allocated; loaders prefix the file's name (``ConfigError(f"{path}: ...")``).
    """


def machine_memory_bytes() -> int | None:
    """Physical memory of this machine (None where the OS does not say)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def check_fits_in_memory(what: str, n_params: int, bytes_per_param: int = 4) -> None:
    """ConfigError when `n_params` parameters alone would exceed this machine's memory (checked before building)."""
    need = n_params * bytes_per_param
    have = machine_memory_bytes()
    if have is not None and need > have:
        raise ConfigError(f"{what} would have ~{n_params:.3g} parameters ({need / 2**30:.1f} GiB), more than this "
                          f"machine's {have / 2**30:.1f} GiB of memory: check the sizes in the config")


def utf8_error(path: str | Path, data: bytes | None = None) -> InputError:
    """InputError naming the first line of `path` that is not valid UTF-8 (only called on the error path)."""
    if data is None:
        data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return InputError(path, f"not valid UTF-8 (byte {data[exc.start:exc.start + 1]!r} at column {col}); "
                                "save the file as UTF-8", line)
    return InputError(path, "not valid UTF-8")


def read_text(path: str | Path) -> str:
    """The file's text, decoded as UTF-8; invalid bytes raise InputError with their line number."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise utf8_error(path, data) from None


def _refuse_duplicates(path: Path, line: int | None):
    def hook(pairs: list[tuple[str, Any]]) -> dict:
        out = dict(pairs)
        if len(out) < len(pairs):  # only then look for the key (keeps the well-formed path fast)
            seen: set[str] = set()
            k = next(k for k, _ in pairs if k in seen or seen.add(k))
            where = line if line is not None else _line_of_second(path, json.dumps(k) + ":")
            raise InputError(path, f"duplicate JSON key {k!r} (the second value would silently win)", where)
        return out
    return hook


def _line_of_second(path: Path, needle: str) -> int | None:
    """1-based line of the second occurrence of `needle` (the duplicate key), scanning only on this error path."""
    seen = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, text in enumerate(f, start=1):
            seen += text.count(needle)
            if seen >= 2:
                return i
    return None


def loads_json(text: str, path: str | Path, line: int | None = None, allow_duplicate_keys: bool = False) -> Any:
    """`json.loads` of `text` read from `path` (at `line` for JSON lines); every failure is an InputError."""
    path = Path(path)
    hook = None if allow_duplicate_keys else _refuse_duplicates(path, line)
    try:
        return json.loads(text, object_pairs_hook=hook)
    except json.JSONDecodeError as exc:
        where = exc.lineno if line is None else line
        raise InputError(path, f"not valid JSON: {exc.msg} (column {exc.colno})", where) from None
    except RecursionError:
        pass
    # only on the failure path: a cheap scan tells the user how deep it went
    raise InputError(path, f"JSON nested {_depth(text)} levels deep (Python's parser stops near 1000)", line)


def _depth(text: str) -> int:
    """Maximum bracket nesting of JSON text (strings skipped), computed without recursion."""
    depth = best = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    return best


def read_json(path: str | Path, *, allow_duplicate_keys: bool = False) -> Any:
    """Parse a JSON file or raise InputError naming it (with the line where the decoder knows it).

    Refused: invalid UTF-8 (with its line), syntax errors, nesting so deep that Python's parser would
    raise RecursionError, duplicate keys (unless allowed), files over MAX_JSON_BYTES.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise InputError(path, f"{size} bytes is too large for a JSON file we read whole (limit {MAX_JSON_BYTES})")
    return loads_json(read_text(path), path, allow_duplicate_keys=allow_duplicate_keys)


def torch_load_weights(path: str | Path, what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only, never arbitrary objects.

    A pickle that asks for anything else, or a file that is no torch checkpoint at all, raises InputError
    naming the file. Torch's own message is not passed on: it suggests ``weights_only=False``, i.e. running
    the file's code, which is exactly what must not happen with a file from the internet.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} file not found")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's text: "Weights only load failed. ... weights_only=False ... WeightsUnpickler error: <why> ..."
        tail = str(exc).split("WeightsUnpickler error:", 1)[-1]
        why = next((ln.strip() for ln in tail.splitlines()
                    if ln.strip() and not ln.strip().startswith(("Check the documentation", "Weights only"))),
                   "unpickling failed")
        raise InputError(path, f"refused to load {what}: not a plain tensor checkpoint ({why[:200]}); objects are "
                               "never unpickled, only tensor checkpoints (or .safetensors) are accepted") from None
    except (RuntimeError, EOFError, ValueError, OSError, AttributeError, TypeError, IndexError, KeyError,
            UnicodeDecodeError, MemoryError, OverflowError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"not a readable torch {what} ({type(exc).__name__}: {msg[:200]})") from None


def read_safetensors(path: str | Path, what: str = "weights") -> dict:
    """Tensors of a .safetensors file (torch); a missing, truncated or foreign file is an InputError naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, RuntimeError, ValueError, MemoryError) as exc:
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(path, f"cannot read {what} ({msg}); the file may be truncated or not a safetensors "
                               "file") from None


@contextlib.contextmanager
def naming_file(path: str | Path) -> Iterator[None]:
    """Re-raise an OSError that has no file name (``write()``: disk full, quota) with `path` as its file."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:  # numpy's "1280 requested and 480 written" has no errno either
            raise type(exc)(exc.errno or 0, exc.strerror or str(exc), str(path)) from exc
        raise


def _os_error_line(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    name = exc.filename if exc.filename is not None else None
    hint = {errno.ENOSPC: " (disk full: free space and re-run; finished work is kept)",
            errno.EDQUOT: " (disk quota exceeded: free space and re-run; finished work is kept)",
            errno.EFBIG: " (file size limit reached)"}.get(exc.errno, "")
    if name is None:
        return f"{what}{hint}"
    other = f" -> {exc.filename2}" if getattr(exc, "filename2", None) else ""
    return f"{name}{other}: {what}{hint}"


def _one_line(text: str) -> str:
    """An error text on one line; a DataLoader worker's re-raised error keeps only the original message."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if "Original Traceback (most recent call last):" in lines and lines:
        last = lines[-1]  # "actbert.data.store_format.ShardCorruptError: corrupt shard ..."
        head, sep, tail = last.partition(": ")
        return tail if sep and " " not in head else last
    return " ".join(lines)


def describe(exc: BaseException) -> str | None:
    """One line for an expected failure, or None for a bug (which then keeps its traceback)."""
    if isinstance(exc, ActbertError):
        return _one_line(str(exc))
    text = str(exc)
    if "Original Traceback" in text and text.strip().splitlines()[-1].startswith("actbert."):
        # a DataLoader worker's ActbertError whose class torch could not rebuild: it comes back as RuntimeError
        return _one_line(text)
    if isinstance(exc, OSError):
        return _os_error_line(exc)
    if isinstance(exc, MemoryError):
        return "out of memory (a config or input asks for more than this machine has)"
    return None
