"""Python API: `Pipeline` (index / search / caption / answer / segment / localize) on your own videos.

See docs/api.md. Imports are lazy so `import actbert.api` stays cheap until a Pipeline is built.
"""
from __future__ import annotations

__all__ = ["Pipeline", "Hit", "ClipIndex", "IndexMismatchError", "resolve_checkpoint"]


def __getattr__(name):
    if name in {"Pipeline", "Hit", "resolve_checkpoint"}:
        from actbert.api import pipeline

        return getattr(pipeline, name)
    if name in {"ClipIndex", "IndexMismatchError"}:
        from actbert.api import index

        return getattr(index, name)
    raise AttributeError(name)
