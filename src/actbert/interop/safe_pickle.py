"""A pickle reader that admits numpy arrays and plain containers only, for PaddleVideo's `.pdparams` and its
feature LMDB values.

A pickle can name any importable callable and call it while loading, so `pickle.load` on a downloaded file
runs whatever the file says. `pickle.Unpickler.find_class` is the one place where the stream asks for a
callable; here it hands out only numpy's array / dtype / scalar constructors, and refuses everything else
before anything is called. Python's own docs ("Restricting Globals") give this pattern; no library does it
for numpy payloads without also accepting arbitrary classes, hence our own.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from actbert.errors import ActbertError

# (module, name) pairs a numpy-array pickle needs; numpy 2 moved `numpy.core` to `numpy._core`, and files
# written by either name both exist (the released ActBERT.pdparams predates numpy 2).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
    # protocol-2 pickles (older Paddle) spell byte strings as _codecs.encode(text, "latin1")
    ("_codecs", "encode"),
}


class UnsafePickleError(ActbertError, ValueError):
    """The pickle asks for something other than numpy arrays and plain containers."""


def _numpy_global(name: str) -> Any:
    # numpy >= 2 serves both spellings from numpy._core (numpy.core is a deprecated alias)
    from numpy._core import multiarray

    return getattr(multiarray, name)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding != "latin1":  # the only encoding pickle itself writes
        raise UnsafePickleError(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise UnsafePickleError(
                f"{self.source}: refused to load: the pickle asks for {module}.{name}, which is not a numpy array, "
                "dtype or plain container (a pickle can run code; this one is not a plain weights/features file)"
            )
        if module.startswith("numpy.") and module.endswith("multiarray"):
            return _numpy_global(name)
        if module == "_codecs":
            return _latin1_encode
        return dict if name == "OrderedDict" else getattr(np, name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: refused to load: the pickle uses persistent ids ({pid!r:.40})")


def load_numpy_pickle(data: bytes | Path | str, source: str | None = None) -> Any:
    """Unpickle `data` (bytes, or a file path) allowing numpy arrays, dtypes, scalars and plain containers only.

    Raises `UnsafePickleError` naming `source` and the forbidden global, or `ValueError` for a damaged file.
    """
    if isinstance(data, (str, Path)):
        source = source or str(data)
        data = Path(data).read_bytes()
    source = source or "<bytes>"
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, RecursionError) as exc:
        raise ValueError(f"{source}: not a readable pickle of numpy arrays ({type(exc).__name__}: {exc})") from exc
