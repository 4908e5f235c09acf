"""Fine-tuned task heads used by `Pipeline.caption` / `Pipeline.segment`: loading, and a clear error when absent.

A head is an object with the method the pipeline calls (`caption(video, start, end)` for a captioner,
`predict(video)` or `segment(video)` for a segmenter, per-second labels), a plain callable with the same
arguments, or a checkpoint folder written by `actbert finetune captioning|segmentation` (loaded with the
task module's `Captioner.load` / `Segmenter.load`). `load_head` returns a plain function.
The task modules are imported only when a head is needed, so the rest of the pipeline works without them.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from actbert.errors import ActbertError

__all__ = ["HEADS", "load_head", "MissingHeadError"]

# kind -> (task module, class with .load(dir, device), methods accepted (first found is used), pipeline
# method named in errors, `actbert finetune` task)
HEADS = {
    "captioner": ("actbert.tasks.captioning", "Captioner", ("caption",), "caption", "captioning"),
    "segmenter": ("actbert.tasks.segmentation", "Segmenter", ("predict", "segment"), "segment", "segmentation"),
}


class MissingHeadError(ActbertError, RuntimeError):
    """`caption` / `segment` was called without a fine-tuned head."""


def load_head(kind: str, head: Any, model=None, tokenizer=None):
    """`(head object, function to call)` for `kind` ("captioner" or "segmenter") from what the user gave."""
    module_name, cls_name, methods, method, task = HEADS[kind]
    if head is None:
        raise MissingHeadError(
            f"Pipeline.{method} needs a fine-tuned {task} head, and none was given. Fine-tune one with "
            f"`actbert finetune {task} --model MODEL --out DIR ...` (see `actbert finetune {task} --help`), "
            f"then pass Pipeline(..., {kind}=DIR)")
    if isinstance(head, (str, Path)):
        path = Path(head)
        if not path.is_dir():
            raise FileNotFoundError(f"{kind} folder {path} does not exist")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise MissingHeadError(f"cannot load the {kind} {path}: {module_name} is not available ({exc})") from exc
        device = str(next(model.parameters()).device) if model is not None else "cpu"
        head = getattr(module, cls_name).load(path, device=device)
    for m in methods:
        if callable(getattr(head, m, None)):
            return head, getattr(head, m)
    if callable(head):
        return head, head
    raise TypeError(f"{kind} must be a folder, an object with a .{methods[0]}() method, or a callable; "
                    f"got {type(head).__name__}")
