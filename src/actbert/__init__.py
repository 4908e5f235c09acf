"""actbert: ActBERT (Zhu & Yang, CVPR 2020) end to end in PyTorch."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["ActBERTConfig", "ActBERTModel", "ActBERTForPretraining", "get_preset", "Pipeline", "__version__"]


def __getattr__(name):  # lazy: `import actbert` must not import torch for `actbert --help`
    if name in {"ActBERTConfig", "ActBERTModel", "ActBERTForPretraining", "get_preset"}:
        from actbert import model

        return getattr(model, name)
    if name == "Pipeline":
        from actbert.api import Pipeline

        return Pipeline
    raise AttributeError(name)
