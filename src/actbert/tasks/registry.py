"""Task name → module. Every module defines `add_evaluate_arguments(parser)`, `run_evaluate(args) -> int`,
`add_finetune_arguments(parser)` and `run_finetune(args) -> int` (a task without fine-tuning explains why in
its parser description and returns 2). Modules are imported only when their task runs, so a task whose
module or optional dependency is missing does not break the others.
"""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["TASKS", "ZERO_SHOT", "task_names", "finetune_task_names", "load_task"]

# name -> (module, one-line help)
TASKS: dict[str, tuple[str, str]] = {
    "retrieval": ("actbert.tasks.retrieval", "text→video retrieval (YouCook2, MSR-VTT 1k-A): R@1/5/10, MedR"),
    "captioning": ("actbert.tasks.captioning", "YouCook2 captioning: BLEU-3/4, METEOR, ROUGE-L, CIDEr"),
    "segmentation": ("actbert.tasks.segmentation", "COIN action segmentation: frame accuracy"),
    "localization": ("actbert.tasks.localization", "CrossTask step localization (zero-shot): average recall"),
    "qa": ("actbert.tasks.qa", "MSR-VTT multiple-choice QA: accuracy"),
}
# tasks evaluated zero-shot only (their module sets HAS_FINETUNE = False; a test checks the two agree)
ZERO_SHOT = frozenset({"localization", "qa"})
_HOOKS = ("add_evaluate_arguments", "run_evaluate", "add_finetune_arguments", "run_finetune")


def task_names() -> list[str]:
    return list(TASKS)


def finetune_task_names() -> list[str]:
    """The tasks `actbert finetune` can train."""
    return [n for n in TASKS if n not in ZERO_SHOT]


def load_task(name: str) -> ModuleType:
    """Import the module of task `name` and check that it has the four entry points."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    module = importlib.import_module(TASKS[name][0])
    missing = [h for h in _HOOKS if not callable(getattr(module, h, None))]
    if missing:
        raise AttributeError(f"task module {module.__name__} lacks {missing}")
    return module
