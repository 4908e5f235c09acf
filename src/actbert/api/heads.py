"""Fine-tuned task heads used by `Pipeline.caption` / `Pipeline.segment`: loading, and a clear error when absent.

A head is an object with the method the pipeline calls (`caption(video, start, end)` for a captioner,
`segment(video)` for a segmenter), a plain callable with the same arguments, or a checkpoint folder
written by `actbert finetune captioning|segmentation` (loaded with the task module's `<Class>.load`).
The task modules are imported only when a head is needed, so the rest of the pipeline works without them.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

__all__ = ["HEADS", "load_head", "MissingHeadError"]

# kind -> (task module, class with .load(dir, device), method the pipeline calls, `actbert finetune` task)
HEADS = {
    "captioner": ("actbert.tasks.captioning", ("Captioner",), "caption", "captioning"),
    "segmenter": ("actbert.tasks.segmentation", ("Segmenter", "SegmentationModel"), "segment", "segmentation"),
}


class MissingHeadError(RuntimeError):
    """`caption` / `segment` was called without a fine-tuned head."""


class _CallableHead:
    def __init__(self, fn, method: str):
        setattr(self, method, fn)


def load_head(kind: str, head: Any, model=None, tokenizer=None):
    """The usable head for `kind` ("captioner" or "segmenter") from what the user gave."""
    module_name, classes, method, task = HEADS[kind]
    if head is None:
        raise MissingHeadError(
            f"Pipeline.{method} needs a fine-tuned {task} head, and none was given. Fine-tune one with "
            f"`actbert finetune {task} --checkpoint CKPT --output DIR ...` (see `actbert finetune {task} --help`), "
            f"then pass Pipeline(..., {kind}=DIR)")
    if isinstance(head, (str, Path)):
        path = Path(head)
        if not path.is_dir():
            raise FileNotFoundError(f"{kind} folder {path} does not exist")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise MissingHeadError(f"cannot load the {kind} {path}: {module_name} is not available ({exc})") from exc
        cls = next((getattr(module, c) for c in classes if hasattr(getattr(module, c, None), "load")), None)
        if cls is None:
            raise MissingHeadError(f"{module_name} has no loadable head class ({', '.join(classes)})")
        device = "cpu"
        if model is not None:
            device = str(next(model.parameters()).device)
        return cls.load(path, device=device)
    if callable(getattr(head, method, None)):
        return head
    if callable(head):
        return _CallableHead(head, method)
    raise TypeError(f"{kind} must be a folder, an object with a .{method}() method, or a callable; "
                    f"got {type(head).__name__}")
