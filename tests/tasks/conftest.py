"""Helpers shared by the task tests."""
from __future__ import annotations


class DictStore(dict):
    """The two things the tasks need of a FeatureStore: `vid in store` and `store[vid]`."""

    root = "<test store>"
