"""The ActBERT model: config, three-stream encoder with Tangled Transformer blocks, heads, losses."""
from actbert.model.config import ActBERTConfig, get_preset, list_presets
from actbert.model.encoder import ActBERTModel, EncoderOutput, TextState, VideoState
from actbert.model.pretraining import ActBERTForPretraining, PretrainOutput

__all__ = [
    "ActBERTConfig", "get_preset", "list_presets", "ActBERTModel", "EncoderOutput", "TextState", "VideoState",
    "ActBERTForPretraining", "PretrainOutput",
]
