"""A tiny world generated once per test session (a few short 64x64 videos)."""
from __future__ import annotations

from pathlib import Path

import pytest

from actbert.world import generate_world, get_world_config, load_world


@pytest.fixture(scope="session")
def tiny_config():
    return get_world_config("tiny")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, tiny_config) -> Path:
    out = tmp_path_factory.mktemp("world") / "w0"
    generate_world(out, tiny_config, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_world(tiny_dir):
    return load_world(tiny_dir)
