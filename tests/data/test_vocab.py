"""Verb mining and the action vocabulary, on the real YouCook2 sentences (all 13,829)."""
from __future__ import annotations

import json

import pytest

from actbert.data.formats import read_youcook2
from actbert.data.vocab import DEFAULT_STOP_VERBS, ActionVocab, load_nlp, mine_verbs

# Words of YouCook2 narration that are not verbs (ingredients, tools, units, adjectives); spaCy tags
# some of them VERB in imperative lists ("add oil to pan"), and none may reach the top 50.
NOT_VERBS = {"salt", "pepper", "oil", "water", "sauce", "chicken", "onion", "garlic", "pan", "bowl", "minutes",
             "minute", "hot", "butter", "sugar", "flour", "egg", "eggs", "cheese", "rice", "dough", "meat", "potato",
             "tomato", "bread", "pot", "plate", "tray", "oven", "heat_", "cup", "spoon", "half", "small", "large",
             "little", "some", "green", "red", "black", "white", "fresh", "medium", "low", "high", "piece", "pieces",
             "mixture", "paste", "powder", "lemon", "juice", "cream", "milk", "seed", "seeds", "noodle", "noodles",
             "carrot", "lettuce", "coriander", "sesame", "shrimp", "beef", "pork", "fish", "tsp", "tbsp"}


@pytest.fixture(scope="session")
def nlp():
    return load_nlp()  # one spaCy pipeline for the whole session (cached in-process)


@pytest.fixture(scope="session")
def youcook2_sentences(shared_data):
    videos = read_youcook2(shared_data / "youcook2/youcookii_annotations_trainval.json")
    return [c.sentence for v in videos.values() for c in v.clips]


@pytest.fixture(scope="session")
def youcook2_vocab(youcook2_sentences, nlp):
    return ActionVocab.build(youcook2_sentences, top_k=100, nlp=nlp)


def test_mine_verbs_lemmas_and_auxiliaries(nlp):
    verbs = mine_verbs(["now we are going to slice the onions and then fry them", "",
                        "I have chopped the garlic and you can stir it", "the sauce is ready"], nlp=nlp)
    assert verbs[0] == ["go", "slice", "fry"]
    assert verbs[1] == []
    assert verbs[2] == ["chop", "stir"]  # "have" and "can" are auxiliaries (AUX), never counted
    assert verbs[3] == []                # copula "is" is AUX too


def test_youcook2_top_verbs_are_cooking_verbs(youcook2_vocab, youcook2_sentences):
    vocab = youcook2_vocab
    assert vocab.stats["texts"] == len(youcook2_sentences) == 13829
    top10 = vocab.verbs[:10]
    assert vocab.verbs[0] == "add"
    assert {"add", "cut", "put", "mix", "chop", "stir", "pour", "place"} <= set(top10), top10
    top50 = vocab.verbs[:50]
    assert not NOT_VERBS & set(top50), sorted(NOT_VERBS & set(top50))
    assert not DEFAULT_STOP_VERBS & set(vocab.verbs)
    counts = [vocab.counts[v] for v in vocab.verbs]
    assert counts == sorted(counts, reverse=True) and len(vocab) == 100
    assert "pan" in vocab.stats["dropped_low_verb_share"]  # "add oil to pan": a tagger error, filtered


def test_labels_first_kept_verb(youcook2_vocab):
    vocab = youcook2_vocab
    texts = ["cut the onion and add it to the pan", "now we are going to slice the onions", "the end", ""]
    labels = vocab.label_many(texts)
    assert labels == [vocab.index("cut"), vocab.index("slice"), None, None]
    assert vocab.label("mix the flour and the eggs") == vocab.index("mix")
    with pytest.raises(KeyError):
        vocab.index("go")


def test_save_load_roundtrip(youcook2_vocab, tmp_path, nlp):
    path = tmp_path / "vocab.json"
    youcook2_vocab.save(path)
    data = json.loads(path.read_text())
    assert data["verbs"][:3] == youcook2_vocab.verbs[:3] and data["counts"]["add"] == youcook2_vocab.counts["add"]
    assert "be" in data["stop_verbs"] and data["settings"]["top_k"] == 100
    loaded = ActionVocab.load(path, nlp=nlp)
    assert loaded.verbs == youcook2_vocab.verbs and loaded.counts == youcook2_vocab.counts
    assert loaded.stop_verbs == youcook2_vocab.stop_verbs
    assert loaded.label("stir the sauce") == youcook2_vocab.index("stir")


def test_build_options(nlp):
    texts = ["cut the bread", "cut the cheese", "cut it", "fry the egg", "fry it", "go and see", "go home", "bake a cake"]
    v = ActionVocab.build(texts, top_k=10, stop_verbs=(), min_count=2, min_verb_share=0.0, nlp=nlp)
    assert v.verbs[:2] == ["cut", "fry"] and "bake" not in v  # min_count=2 drops bake
    assert "go" in v  # no stop verbs given
    v = ActionVocab.build(texts, top_k=1, nlp=nlp)
    assert v.verbs == ["cut"] and v.counts == {"cut": 3}
