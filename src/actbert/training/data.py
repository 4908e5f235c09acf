"""The data layer seen from the training loop: a corpus-backed run (store + captions + action vocabulary)
and the collator whose randomness is fixed per batch.

`actbert.data.collate.PretrainCollator` draws negatives and masks with one generator per process that
advances from batch to batch; exact resume needs the draws of batch k to depend on k alone. The subclass
below hands the collator a generator seeded for the batch (by `sampling.SeededCollate`) through the
collator's own `generator()` hook, and nothing else changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from actbert.data.collate import EvalCollator, PretrainCollator
from actbert.data.masking import MaskingConfig


class BatchSeededCollator(PretrainCollator):
    """PretrainCollator whose random draws come from the `generator` passed with each batch."""

    _batch_generator: torch.Generator | None = None

    def generator(self) -> torch.Generator:
        return self._batch_generator if self._batch_generator is not None else super().generator()

    def __call__(self, samples, generator: torch.Generator | None = None):
        self._batch_generator = generator
        try:
            return super().__call__(samples)
        finally:
            self._batch_generator = None

    def clean(self) -> EvalCollator:
        """Same padding and tokenisation, no negatives and no masking: the zero-shot retrieval batches."""
        return EvalCollator(self.tok, self.cfg)


def default_collator(tokenizer: Any, model_config: Any, masking: MaskingConfig | None = None,
                     negative_prob: float = 0.5) -> BatchSeededCollator:
    return BatchSeededCollator(tokenizer, model_config, masking=masking or MaskingConfig(), negative_prob=negative_prob)


@dataclass
class CorpusRun:
    """What a corpus-backed run needs besides the TrainConfig, built from the files a user names."""

    train: Any  # NarratedCorpus, split "train"
    eval: Any  # NarratedCorpus, split "val" (None when empty)
    tokenizer: Any
    model_config: Any
    notes: list[str]


def _require(path: str | Path, kind: str, what: str) -> Path:
    path = Path(path)
    if kind == "dir" and not path.is_dir():
        raise FileNotFoundError(f"{what} {path} does not exist or is not a folder")
    if kind == "file" and not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist or is not a file")
    return path


def build_corpus_run(store: str | Path, captions: str | Path, vocab: str | Path, preset: str,
                     init_text: str | None = None, tokenizer_dir: str | None = None, run_dir: str | Path | None = None,
                     resume: bool = False, val_fraction: float = 0.05, tokenizer_vocab_size: int = 8000,
                     seed: int = 0) -> CorpusRun:
    """Open the store, read the captions and the action vocabulary, pick the tokenizer, size the model.

    Tokenizer: the BERT folder's vocab.txt with `init_text`; else `tokenizer_dir`; else, on resume, the run
    folder's own vocab.txt; else a WordPiece vocabulary trained on the training captions.
    """
    from actbert.data.corpus import CorpusConfig, NarratedCorpus, held_out_videos
    from actbert.data.formats.howto100m import read_captions
    from actbert.data.store import FeatureStore
    from actbert.data.tokenizer import WordPieceTokenizer
    from actbert.data.vocab import ActionVocab
    from actbert.model import get_preset

    fs = FeatureStore(_require(store, "dir", "feature store"))
    caps = read_captions(_require(captions, "file", "caption file"))
    actions = ActionVocab.load(_require(vocab, "file", "action vocabulary"))
    if len(actions) == 0:
        raise ValueError(f"{vocab}: the action vocabulary has no verb")
    missing = [k for k in ("action_feat_dim", "region_feat_dim", "num_region_classes") if k not in fs.meta]
    if missing:
        raise ValueError(f"{store}/store.json lacks {missing}: the feature sizes cannot be known")
    dims = {k: int(fs.meta[k]) for k in ("action_feat_dim", "region_feat_dim", "num_region_classes")}
    dims["num_action_classes"] = len(actions)
    base = get_preset(preset)
    # explicit lists: the hash split topped up to two held-out videos (held-out matching needs another video)
    held = held_out_videos([v for v in caps if v in fs], val_fraction, seed)
    corpus_cfg = dict(max_actions=base.max_actions, max_regions=base.max_regions, val_fraction=val_fraction,
                      split_seed=seed, val_ids=sorted(held), train_ids=sorted(v for v in caps if v not in held))
    train = NarratedCorpus(fs, caps, actions, CorpusConfig(split="train", **corpus_cfg))
    if len(train) == 0:
        raise ValueError(f"the training corpus is empty: no caption window of {captions} overlaps a video of the "
                         f"store {store} ({len(caps)} captioned videos, {len(fs)} stored): {train.report()}")
    val = NarratedCorpus(fs, caps, actions, CorpusConfig(split="val", **corpus_cfg))
    notes = [f"corpus: {len(train)} training windows, {len(val)} held-out windows"]
    if len(val) < 2:
        notes.append("fewer than 2 held-out windows: no held-out evaluation (raise --val-fraction)")
        val = None

    if init_text:
        from actbert.model.bert_init import config_from_bert

        bert = _require(init_text, "dir", "BERT folder")
        tokenizer = WordPieceTokenizer.from_pretrained(bert)
        model_config = config_from_bert(bert, preset, **dims)
        if model_config.vocab_size != tokenizer.vocab_size:
            raise ValueError(f"{bert}: config.json says vocab_size {model_config.vocab_size} but vocab.txt has "
                             f"{tokenizer.vocab_size} word pieces: the folder mixes two models")
    else:
        if tokenizer_dir:
            tokenizer = WordPieceTokenizer.from_pretrained(_require(tokenizer_dir, "dir", "tokenizer folder"))
        elif resume and run_dir is not None and (Path(run_dir) / "vocab.txt").is_file():
            tokenizer = WordPieceTokenizer.from_pretrained(run_dir)
            notes.append(f"tokenizer: the run's own {Path(run_dir) / 'vocab.txt'}")
        else:
            texts = [train.window(i)[3] for i in range(len(train))]
            tokenizer = WordPieceTokenizer.train(texts, vocab_size=tokenizer_vocab_size)
            notes.append(f"tokenizer: WordPiece trained on the training captions ({tokenizer.vocab_size} pieces)")
        model_config = get_preset(preset, **dims)
    model_config = model_config.replace(vocab_size=tokenizer.vocab_size)
    if model_config.max_text_len > model_config.max_position_embeddings:
        model_config = model_config.replace(max_text_len=model_config.max_position_embeddings)
    return CorpusRun(train, val, tokenizer, model_config, notes)
