"""actbert.utils: atomic writes leave files with the permissions the umask asks for (not mkstemp's 0600)."""
from __future__ import annotations

import os
import stat

import pytest

from actbert.data.store_format import atomic_write_bytes
from actbert.tasks.results import _atomic_write
from actbert.utils import atomic_write_json


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_atomic_writers_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
        atomic_write_bytes(tmp_path / "b.json", b"{}")
        _atomic_write(tmp_path / "c.json", "{}")
    finally:
        os.umask(old)
    for name in ("a.json", "b.json", "c.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
