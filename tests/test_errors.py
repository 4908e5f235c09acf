"""`actbert.errors`: the guarded readers and the one-line description of expected failures."""
from __future__ import annotations

import errno
import pickle

import pytest
import torch

from actbert.errors import (ActbertError, ConfigError, InputError, describe, naming_file, read_json,
                            torch_load_weights)


def test_read_json_names_file_and_line(tmp_path):
    p = tmp_path / "a.json"
    p.write_bytes(b'{\n "a": 1,\n "b": "caf\xe9"\n}')
    with pytest.raises(InputError, match=r"a\.json:3: not valid UTF-8"):
        read_json(p)
    p.write_text('{\n "a": 1,\n "a": 2\n}')
    with pytest.raises(InputError, match=r"a\.json:3: duplicate JSON key 'a'"):
        read_json(p)
    assert read_json(p, allow_duplicate_keys=True) == {"a": 2}
    p.write_text("[" * 50_000)
    with pytest.raises(InputError, match="nested 50000 levels"):
        read_json(p)


def test_torch_load_refuses_objects_and_garbage(tmp_path):
    p = tmp_path / "w.pth"
    torch.save({"w": torch.ones(2)}, p)
    assert torch.equal(torch_load_weights(p)["w"], torch.ones(2))
    p.write_bytes(pickle.dumps({"w": ConfigError("an arbitrary object")}))
    with pytest.raises(InputError, match="refused to load") as e:
        torch_load_weights(p)
    assert "weights_only=False" not in str(e.value) and str(p) in str(e.value)
    p.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"refused to load checkpoint: not a plain tensor checkpoint \(Unsupported"):
        torch_load_weights(p)
    p.write_bytes(b"")
    with pytest.raises(InputError, match="not a readable torch checkpoint"):
        torch_load_weights(p)


def test_naming_file_gives_write_errors_a_file(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(OSError) as e, naming_file(target):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert e.value.filename == str(target)
    assert describe(e.value) == f"{target}: No space left on device (disk full: free space and re-run; finished " \
                                "work is kept)"


def test_describe_expected_and_unexpected():
    assert describe(ConfigError("x.json: bad\nsize")) == "x.json: bad size"
    assert describe(FileNotFoundError(2, "No such file or directory", "/a/b")) == "/a/b: No such file or directory"
    assert describe(KeyError("bug")) is None  # a bug keeps its traceback
    # a DataLoader worker's error comes back as RuntimeError carrying the worker's traceback text
    wrapped = RuntimeError("Caught StoreError in DataLoader worker process 0.\nOriginal Traceback (most recent "
                           "call last):\n  File \"x.py\", line 1, in f\nactbert.data.store_format.StoreError: "
                           "corrupt shard s.safetensors")
    assert describe(wrapped) == "corrupt shard s.safetensors"
    assert issubclass(InputError, ActbertError) and issubclass(InputError, ValueError)
