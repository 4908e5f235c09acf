"""BERT WordPiece tokenisation of captions into the model's `text_ids` / `text_mask`.

Wraps the Rust `tokenizers` WordPiece (BERT normaliser + pre-tokeniser), so it gives the ids of
`transformers.BertTokenizerFast` on the same `vocab.txt`. Special tokens, truncation and padding are
done here rather than by the wrapped tokenizer: a `tokenizer.json` may carry its own padding /
truncation settings (the MiniLM one pads and truncates to 128), which would silently change lengths.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _bert_pipeline(model: models.WordPiece, lowercase: bool) -> Tokenizer:
    """A `Tokenizer` set up as BERT's: clean text, split CJK characters, lower-case and strip accents
    when uncased (BertTokenizerFast's `strip_accents=None` follows `lowercase`), punctuation split."""
    tok = Tokenizer(model)
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=None, lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


class WordPieceTokenizer:
    """`[CLS] wordpieces [SEP]` encoding with padding to the longest text of a batch.

    `empty_count` counts the texts that had no token at all (encoded as `[CLS] [SEP]`), so that a
    corpus full of empty captions shows up in reports instead of training on nothing silently.
    """

    def __init__(self, tokenizer: Tokenizer, lowercase: bool = True, source: str = ""):
        self._tok = tokenizer
        # registering them as special makes the Rust side never split them and lets decode skip them
        present = [t for t in SPECIAL_TOKENS if tokenizer.token_to_id(t) is not None]
        self._tok.add_special_tokens(present)
        self._tok.no_padding()
        self._tok.no_truncation()
        self.lowercase = lowercase
        self.source = source
        self.empty_count = 0
        ids = {t: tokenizer.token_to_id(t) for t in SPECIAL_TOKENS}
        missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]") if ids[t] is None]
        if missing:
            raise ValueError(f"{source or 'tokenizer'}: vocabulary lacks special token(s) {missing}")
        self._special = ids
        # the vocabulary is fixed from here on; `get_vocab_size` rebuilds a map (ms per call), so read it once
        self._vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_vocab(cls, vocab_txt: str | Path, lowercase: bool = True) -> "WordPieceTokenizer":
        """From a BERT `vocab.txt` (one token per line, id = line number - 1)."""
        vocab_txt = Path(vocab_txt)
        if not vocab_txt.is_file():
            raise FileNotFoundError(f"{vocab_txt}: no such vocab.txt")
        try:
            model = models.WordPiece.from_file(str(vocab_txt), unk_token="[UNK]", max_input_chars_per_word=100)
        except Exception as exc:  # tokenizers raises a bare Exception for any unreadable file
            from actbert.errors import InputError, read_text

            read_text(vocab_txt)  # invalid UTF-8 is reported with its line
            raise InputError(vocab_txt, f"not a WordPiece vocab.txt ({str(exc)[:200]})") from None
        return cls(_bert_pipeline(model, lowercase), lowercase, str(vocab_txt))

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "WordPieceTokenizer":
        """From a folder holding `vocab.txt` (a Hugging Face BERT folder or one written by `save`).

        Lower-casing follows `tokenizer_config.json`'s `do_lower_case` when present (default True, as
        for uncased BERT). A folder with only a `tokenizer.json` is loaded from it, its padding and
        truncation switched off.
        """
        directory = Path(directory)
        lowercase = True
        cfg = directory / "tokenizer_config.json"
        if cfg.is_file():
            from actbert.errors import InputError, read_json

            data = read_json(cfg)
            if not isinstance(data, dict):
                raise InputError(cfg, "expected a JSON object")
            lowercase = bool(data.get("do_lower_case", True))
        if (directory / "vocab.txt").is_file():
            return cls.from_vocab(directory / "vocab.txt", lowercase=lowercase)
        if (directory / "tokenizer.json").is_file():
            return cls(Tokenizer.from_file(str(directory / "tokenizer.json")), lowercase, str(directory))
        raise FileNotFoundError(f"{directory}: no vocab.txt or tokenizer.json")

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2,
              lowercase: bool = True) -> "WordPieceTokenizer":
        """Train a WordPiece vocabulary on `texts` (for small demo corpora with no BERT available).

        Special tokens get ids 0..4 in the order `[PAD] [UNK] [CLS] [SEP] [MASK]`, so `[PAD]` is 0 as the
        model batch requires.
        """
        tok = _bert_pipeline(models.WordPiece(unk_token="[UNK]"), lowercase)
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                            special_tokens=list(SPECIAL_TOKENS), continuing_subword_prefix="##")
        tok.train_from_iterator(texts, trainer=trainer)
        # The trainer numbers its pieces in hash-map order, which changes from process to process: two runs
        # on the same texts gave the same pieces under different ids (different embeddings and losses for
        # one seed). Re-number them: specials first, then the pieces sorted. The trained model is rebuilt
        # from that vocabulary, so it encodes exactly as `from_vocab` of the saved vocab.txt will (greedy
        # longest match). Ties between merge candidates can still change the piece set itself from run to
        # run; callers that need bit-for-bit reruns pass their own vocab.txt (the demo does).
        vocab = tok.get_vocab(with_added_tokens=True)
        order = [t for t in SPECIAL_TOKENS if t in vocab] + sorted(t for t in vocab if t not in SPECIAL_TOKENS)
        model = models.WordPiece({t: i for i, t in enumerate(order)}, unk_token="[UNK]", max_input_chars_per_word=100)
        return cls(_bert_pipeline(model, lowercase), lowercase, "trained")

    def save(self, directory: str | Path) -> Path:
        """Write `vocab.txt` (ids in order) and a `tokenizer_config.json` with the case setting."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        vocab = self._tok.get_vocab(with_added_tokens=True)
        by_id = sorted(vocab.items(), key=lambda kv: kv[1])
        if [i for _, i in by_id] != list(range(len(by_id))):
            raise ValueError("vocabulary ids are not contiguous; cannot write vocab.txt")
        (directory / "vocab.txt").write_text("".join(t + "\n" for t, _ in by_id), encoding="utf-8")
        (directory / "tokenizer_config.json").write_text(
            json.dumps({"do_lower_case": self.lowercase, "tokenizer_class": "BertTokenizer"}) + "\n", encoding="utf-8")
        return directory / "vocab.txt"

    # ---------------------------------------------------------------- encoding
    def tokenize(self, text: str) -> list[str]:
        """WordPiece tokens of `text`, without special tokens."""
        return self._tok.encode(text, add_special_tokens=False).tokens

    def unknown_words(self, text: str) -> tuple[list[str], int]:
        """`(words the vocabulary does not know, number of words)` of `text`: a word is unknown when it
        encodes to `[UNK]` or into fragments none of which covers half of it ("bikes" -> b ##i ##ke ##s:
        what a vocabulary made for another domain, such as the demo's kitchen world, does to a new word;
        "tomatoes" -> tomato ##es is known). Punctuation is not counted."""
        enc = self._tok.encode(text, add_special_tokens=False)
        words: dict[int, tuple[list[str], list[int]]] = {}
        for wid, piece, (start, end) in zip(enc.word_ids, enc.tokens, enc.offsets):
            if wid is not None:
                pieces, span = words.setdefault(wid, ([], [start, end]))
                pieces.append(piece)
                span[1] = end
        unknown, total = [], 0
        for pieces, (start, end) in words.values():
            word = text[start:end]
            if not any(c.isalnum() for c in word):
                continue
            total += 1
            longest = max(len(p.removeprefix("##")) for p in pieces)
            if "[UNK]" in pieces or longest * 2 < len(word) or (len(pieces) > 1 and longest == 1):
                unknown.append(word)
        return unknown, total

    def encode(self, text: str, max_len: int = 512) -> list[int]:
        """Ids of one text, `[CLS] ... [SEP]`, at most `max_len` long (no padding)."""
        ids, _ = self.encode_batch([text], max_len)
        return ids[0].tolist()

    def encode_batch(self, texts: Sequence[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`(ids, mask)`, both LongTensor `[B, L]` with `L` = longest encoded text (at most `max_len`).

        Truncation drops word pieces from the end and keeps `[CLS]` first and `[SEP]` last; padding is
        `[PAD]` with mask 0. An empty text (or one with no token) becomes `[CLS] [SEP]` and is counted.
        """
        if max_len < 2:
            raise ValueError(f"max_len must be >= 2 to hold [CLS] and [SEP], got {max_len}")
        texts = [t if isinstance(t, str) else "" for t in texts]
        encs = self._tok.encode_batch(texts, add_special_tokens=False) if texts else []
        body = max_len - 2
        pieces = [e.ids[:body] for e in encs]
        self.empty_count += sum(1 for p in pieces if not p)
        length = max((len(p) for p in pieces), default=0) + 2
        ids = np.full((len(pieces), length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(pieces), length), dtype=np.int64)
        for i, p in enumerate(pieces):
            n = len(p)
            ids[i, 0] = self.cls_id
            ids[i, 1:n + 1] = p
            ids[i, n + 1] = self.sep_id
            mask[i, :n + 2] = 1
        return torch.from_numpy(ids), torch.from_numpy(mask)

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        """Text of `ids` (list, numpy array or tensor); special tokens and padding are dropped by default."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def convert_ids_to_tokens(self, ids) -> list[str]:
        return [self._tok.id_to_token(int(i)) for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids)]

    # ---------------------------------------------------------------- properties
    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def pad_id(self) -> int:
        return self._special["[PAD]"]

    @property
    def unk_id(self) -> int:
        return self._special["[UNK]"]

    @property
    def cls_id(self) -> int:
        return self._special["[CLS]"]

    @property
    def sep_id(self) -> int:
        return self._special["[SEP]"]

    @property
    def mask_id(self) -> int:
        """Id of `[MASK]`; a vocabulary without it cannot be used for masked language modelling."""
        if self._special["[MASK]"] is None:
            raise ValueError(f"{self.source or 'tokenizer'}: vocabulary has no [MASK] token")
        return self._special["[MASK]"]

    @property
    def special_ids(self) -> set[int]:
        return {i for i in self._special.values() if i is not None}

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"WordPieceTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase}, source={self.source!r})"
