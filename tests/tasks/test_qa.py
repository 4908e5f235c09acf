"""Multiple-choice QA: a hand-made score matrix gives the expected accuracy; the task scores the right pairs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from actbert.data.formats import McQuestion
from actbert.tasks import qa as Q
from actbert.tasks import scoring as S
from tests.tasks.test_retrieval import make_store, make_tokenizer, tiny_model


def questions(n_vid=3):
    opts = ("cut the onion", "fry egg", "pour water", "stir mix", "boil pasta")
    return [McQuestion(f"mc{i}", f"v{i % n_vid}", i % 5, tuple(np.roll(opts, i))) for i in range(4)]


def test_hand_made_scores(monkeypatch):
    hand = np.array([[0.1, 0.9, 0, 0, 0], [5, 1, 1, 1, 1], [0, 0, 0, 0, 3], [1, 1, 0, 0, 0]], dtype=float)
    qs = [McQuestion(f"q{i}", "v0", a, ("a",) * 5) for i, a in enumerate([1, 0, 3, 1])]
    monkeypatch.setattr(Q, "qa_scores", lambda *a, **k: hand)
    m = Q.evaluate_qa(None, None, qs, None)
    # q0 right, q1 right, q2 wrong (answer 3, top 4), q3 tied between 0 and 1 -> argmax picks 0: wrong
    assert m["accuracy"] == 50.0 and m["n_tied"] == 1 and m["chance"] == 20.0 and m["n"] == 4


def test_scores_are_the_video_option_pairs():
    model, store, tok = tiny_model(), make_store(3), make_tokenizer()
    qs = questions()
    got = Q.qa_scores(model, tok, qs, store, batch_size=3, progress=False)
    assert got.shape == (4, 5)
    for i, q in enumerate(qs):  # direct: one video, its five options, no sharing across questions
        ids, mask = S.tokenize(tok, list(q.options), model.config.max_text_len)
        v = S.encode_windows(model, S.windows_for(store, [(q.clip_name, None, None)], model.config))
        with torch.no_grad():
            want = model.score_pairs(model.actbert.encode_text(ids, mask), v.index([0] * 5)).numpy()
        np.testing.assert_allclose(got[i], want, rtol=1e-4, atol=1e-5)
    m = Q.evaluate_qa(model, tok, qs, store, progress=False)
    assert 0 <= m["accuracy"] <= 100 and m["n_candidates"] == 5


def test_bad_input_is_named():
    model, store, tok = tiny_model(), make_store(1), make_tokenizer()
    bad = [McQuestion("a", "v0", 0, ("x", "y")), McQuestion("b", "v0", 0, ("x", "y", "z"))]
    with pytest.raises(ValueError, match="'b'"):
        Q.qa_scores(model, tok, bad, store)
    with pytest.raises(KeyError, match="v9"):
        Q.qa_scores(model, tok, [McQuestion("a", "v9", 0, ("x", "y"))], store)
