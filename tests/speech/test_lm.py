"""The domain language model is a proper backoff model: each history's next-word distribution sums to 1."""
from __future__ import annotations

import math

import pytest

from actbert.speech.lm import build_arpa, build_domain_model, normalize_words, read_vocabulary_text


def _parse(arpa: str) -> dict[tuple, tuple[float, float]]:
    grams, order = {}, 0
    for line in arpa.splitlines():
        if line.startswith("\\") and line.endswith("-grams:"):
            order = int(line[1])
        elif order and line.strip() and not line.startswith("\\"):
            parts = line.split("\t")
            grams[tuple(parts[1].split())] = (float(parts[0]), float(parts[2]) if len(parts) > 2 else 0.0)
    return grams


def _prob(grams, g):
    if g in grams:
        return 10 ** grams[g][0]
    return 10 ** grams.get(g[:-1], (0, 0.0))[1] * _prob(grams, g[1:])


def test_backoff_distributions_sum_to_one():
    sents = [s.split() for s in ["pour the oil into the pan", "pour the milk into the cup", "slice the tomato",
                                 "now slice the bread", "add the egg to the pan"]]
    grams = _parse(build_arpa(sents))
    vocab = sorted({w for s in sents for w in s} | {"</s>"})
    for history in [("the",), ("pour", "the"), ("slice", "the"), ("<s>",), ("into", "the")]:
        assert sum(_prob(grams, (*history, w)) for w in vocab) == pytest.approx(1.0, abs=1e-3)
    assert _prob(grams, ("pour", "the", "oil")) > _prob(grams, ("pour", "the", "tomato")) > 0


def test_domain_model_drops_unpronounceable_words_and_reports_them(tmp_path):
    dictionary = tmp_path / "tiny.dict"
    dictionary.write_text("pour P AO R\nthe DH AH\nthe(2) DH IY\noil OY L\n")
    model = build_domain_model(["Pour the oil!", "pour the zorbleflax"], tmp_path / "lm", dictionary)
    assert model.words == 3 and model.oov == {"zorbleflax": 1}
    assert model.dict.read_text().splitlines() == ["oil OY L", "pour P AO R", "the DH AH", "the(2) DH IY"]
    assert math.isclose(sum(10 ** v[0] for g, v in _parse(model.lm.read_text()).items()
                            if len(g) == 1 and g != ("<s>",)), 1.0, abs_tol=1e-3)
    with pytest.raises(ValueError):
        build_domain_model(["zorbleflax"], tmp_path / "lm2", dictionary)


def test_vocabulary_text_from_caption_json_or_lines(tmp_path):
    (tmp_path / "c.json").write_text('{"v": {"start": [0], "end": [1], "text": ["Now slice it"]}}')
    (tmp_path / "t.txt").write_text("one line\n\nsecond line\n")
    assert read_vocabulary_text(tmp_path / "c.json") == ["Now slice it"]
    assert read_vocabulary_text(tmp_path / "t.txt") == ["one line", "second line"]
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match="bad.json: line 1"):
        read_vocabulary_text(tmp_path / "bad.json")
    assert normalize_words("Let's CUT it, now!") == ["let's", "cut", "it", "now"]
