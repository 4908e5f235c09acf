"""The numpy-only unpickler: arrays in, code out."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from actbert.interop.safe_pickle import UnsafePickleError, load_numpy_pickle


def test_arrays_dtypes_scalars_and_containers_load():
    data = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "names": ["a", ("b", 1)], "s": np.float64(2.5),
            "empty": np.zeros((0, 4), np.int64)}
    out = load_numpy_pickle(pickle.dumps(data, protocol=4))
    np.testing.assert_array_equal(out["w"], data["w"])
    assert out["w"].dtype == np.float32 and out["names"] == ["a", ("b", 1)] and out["s"] == 2.5


def test_old_numpy_core_path_loads():
    """Files written before numpy 2 name numpy.core.multiarray (the released ActBERT.pdparams)."""
    raw = pickle.dumps(np.arange(3.0), protocol=2)
    assert b"numpy._core.multiarray" in raw  # protocol 2 names globals as newline-terminated text
    old = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    np.testing.assert_array_equal(load_numpy_pickle(old), np.arange(3.0))


@pytest.mark.parametrize("payload", [(os.system, ("true",)), (eval, ("1",)), (__import__, ("os",))])
def test_callables_are_refused_before_they_run(payload):
    class Evil:
        def __reduce__(self):
            return payload

    with pytest.raises(UnsafePickleError, match="refused to load"):
        load_numpy_pickle(pickle.dumps(Evil()), source="x.pdparams")


def test_other_numpy_globals_are_refused():
    class Evil:
        def __reduce__(self):
            return (np.load, ("/etc/passwd",))

    with pytest.raises(UnsafePickleError, match=r"x\.pdparams.*numpy.*load"):
        load_numpy_pickle(pickle.dumps(Evil()), source="x.pdparams")


def test_damaged_pickle_is_a_named_error(tmp_path):
    path = tmp_path / "cut.pdparams"
    path.write_bytes(pickle.dumps({"w": np.ones(100)})[:50])
    with pytest.raises(ValueError, match=r"cut\.pdparams: not a readable pickle"):
        load_numpy_pickle(path)
