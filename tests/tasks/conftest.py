"""Fixtures shared by the task tests."""
from __future__ import annotations

import pytest
import torch


class DictStore(dict):
    """The two things the tasks need of a FeatureStore: `vid in store` and `store[vid]`."""

    root = "<test store>"


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread; on a shared, loaded machine more threads only spin."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
