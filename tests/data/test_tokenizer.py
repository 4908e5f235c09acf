"""WordPiece tokenisation: same ids as transformers' BertTokenizerFast, truncation, padding, training."""
from __future__ import annotations

import pytest
import torch

from actbert.data.tokenizer import WordPieceTokenizer

SENTENCES = [
    "Now we're going to slice the onions and fry them.",
    "Add 2 tbsp of SOY sauce, then stir-fry for 3 minutes!",
    "Café crème brûlée: naïve über-délicieux",
    "place the bread slices on top of each other and place in a hot pan",
    "unaffable hyperparameterization 北京 😀",
]


@pytest.fixture(scope="module")
def tok(minilm_dir):
    return WordPieceTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def hf(minilm_dir):
    from transformers import BertTokenizerFast

    return BertTokenizerFast(vocab_file=str(minilm_dir / "vocab.txt"), do_lower_case=True)


def test_ids_equal_bert_tokenizer_fast(tok, hf):
    assert (tok.vocab_size, tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (30522, 0, 100, 101, 102, 103)
    assert tok.special_ids == {0, 100, 101, 102, 103}
    for s in SENTENCES:
        assert tok.encode(s) == hf(s)["input_ids"], s
    ids, mask = tok.encode_batch(SENTENCES, max_len=12)
    ref = hf(SENTENCES, padding=True, truncation=True, max_length=12)
    assert ids.tolist() == ref["input_ids"] and mask.tolist() == ref["attention_mask"]
    assert ids.dtype == torch.long and mask.dtype == torch.long


def test_from_vocab_matches_pretrained_dir(tok, minilm_dir):
    # the MiniLM tokenizer.json pads / truncates to 128; our encoding must not inherit that
    plain = WordPieceTokenizer.from_vocab(minilm_dir / "vocab.txt")
    ids, _ = plain.encode_batch(["cut the onion"], max_len=512)
    assert ids.shape == (1, 5) and ids.tolist() == tok.encode_batch(["cut the onion"], 512)[0].tolist()
    long_ids, long_mask = plain.encode_batch(["word " * 300], max_len=512)
    assert long_ids.shape == (1, 302) and int(long_mask.sum()) == 302


def test_truncation_padding_and_empty(tok):
    tok.empty_count = 0
    ids, mask = tok.encode_batch(["cut " * 50, "add salt", "", "   "], max_len=8)
    assert ids.shape == (4, 8)
    assert ids[0, 0] == tok.cls_id and ids[0, -1] == tok.sep_id and mask[0].all()
    assert ids[1, :4].tolist() == [tok.cls_id, *tok.encode("add salt")[1:-1], tok.sep_id]
    assert ids[1, 4:].eq(tok.pad_id).all() and mask[1].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert ids[2, :2].tolist() == [tok.cls_id, tok.sep_id] and mask[2].sum() == 2
    assert tok.empty_count == 2
    ids, _ = tok.encode_batch(["add salt"], max_len=64)
    assert ids.shape == (1, 4)  # padded to the longest in the batch, not to max_len
    assert tok.decode(ids[0]) == "add salt"
    with pytest.raises(ValueError):
        tok.encode_batch(["x"], max_len=1)


def test_train_save_reload(tmp_path):
    corpus = ["cut the onion and fry it", "add the salt to the pan", "stir the sauce slowly",
              "slice the bread", "fry the onions in the pan"] * 20
    tok = WordPieceTokenizer.train(corpus, vocab_size=120, min_frequency=1)
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 3, 4)
    ids, mask = tok.encode_batch(["fry the onions", "zzz"], max_len=16)
    assert tok.unk_id not in ids[0].tolist() and tok.decode(ids[0]) == "fry the onions"
    tok.save(tmp_path / "tok")
    assert (tmp_path / "tok" / "vocab.txt").read_text().splitlines()[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    again = WordPieceTokenizer.from_pretrained(tmp_path / "tok")
    assert again.vocab_size == tok.vocab_size
    assert torch.equal(again.encode_batch(["fry the onions", "zzz"], 16)[0], ids)


def test_unknown_words_of_a_vocabulary_from_another_domain(tmp_path):
    from actbert.demo.steps import write_word_vocab

    write_word_vocab(["now cut the tomato", "stir the soup"], tmp_path)  # whole words + single characters
    tok = WordPieceTokenizer.from_pretrained(tmp_path)
    assert tok.unknown_words("Cut the tomato!") == ([], 3)  # punctuation is not a word
    assert tok.unknown_words("a rabbit on a bike") == (["rabbit", "on", "bike"], 5)  # spelled out letter by letter
