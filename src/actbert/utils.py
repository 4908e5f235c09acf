"""Small helpers shared by every part: atomic file writes and seeding."""
from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Iterator


def new_file_mode() -> int:
    """The permissions `open()` would give a new file (0o666 minus the umask). `tempfile.mkstemp`, which
    the atomic writers use, creates files 0o600; without this, every file they replace would become
    private to its owner (store.json, results.json, ... unreadable to a group sharing the folder)."""
    try:  # Linux: read the umask without changing it (os.umask is the only portable way, and not thread-safe)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename.

    A crash mid-write leaves the old file (or nothing) in place, never a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, new_file_mode())
    os.close(fd)
    from actbert.errors import naming_file

    try:
        with naming_file(path):  # a full disk names the file being written, not just "errno 28"
            yield Path(tmp)
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=_json_default))


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)  # numpy takes 32-bit seeds only
    torch.manual_seed(seed)


def limit_heap_fragmentation(threshold: int = 512 * 1024) -> bool:
    """Make glibc return freed tensor memory to the OS (allocations >= threshold use mmap).

    glibc raises its mmap threshold dynamically up to 32 MiB, so activations and gradients freed at every
    step stay in its heap: fast, but a higher peak RSS. A fixed low threshold lowers the peak and pays page
    faults on every re-allocation (`base` batch 8: about 25 % slower at 512 KiB). No command applies it by
    default; `actbert bench train-step --heap-threshold` measures it (docs/performance.md).
    Returns False where this is not glibc.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, threshold)) and bool(libc.mallopt(m_trim_threshold, threshold))
    except (OSError, AttributeError):
        return False
