"""Captioning metrics: hand cases, and agreement with pycocoevalcap called directly on the same strings.

METEOR starts a Java process (seconds): the suite starts exactly one and shares it.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from actbert.metrics.captioning import caption_metrics, normalize_caption

pytest.importorskip("pycocoevalcap")
from pycocoevalcap.bleu.bleu import Bleu  # noqa: E402
from pycocoevalcap.cider.cider import Cider  # noqa: E402
from pycocoevalcap.rouge.rouge import Rouge  # noqa: E402

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="METEOR and the PTB tokenizer need Java")

PRED = {"c1": "Add the onions, and stir.", "c2": "Cut the tomato in half",
        "c3": "fry the chicken", "c4": "Serve it!"}
REFS = {"c1": ["add onions and stir them", "stir in the onions"], "c2": ["Cut the tomatoes in half."],
        "c3": ["fry chicken in the pan"], "c4": ["serve the dish"]}
# the corpus protocol's normalisation, written out by hand: lower-case, punctuation split off
PRED_NORM = {"c1": ["add the onions , and stir ."], "c2": ["cut the tomato in half"],
             "c3": ["fry the chicken"], "c4": ["serve it !"]}
REFS_NORM = {"c1": ["add onions and stir them", "stir in the onions"], "c2": ["cut the tomatoes in half ."],
             "c3": ["fry chicken in the pan"], "c4": ["serve the dish"]}


def test_normalize_caption():
    assert normalize_caption("  Fry it,  then\nSERVE. ") == "fry it , then serve ."
    assert normalize_caption("Fry it, then serve.", punctuation="strip") == "fry it then serve"
    assert normalize_caption("Fry it, then serve.", punctuation="keep") == "fry it, then serve."
    assert normalize_caption("a ||| b", punctuation="keep") == "a b"   # METEOR's field separator


def test_identical_captions_by_hand():
    pred = {"a": "cut the tomatoes into small pieces", "b": "fry onions in hot oil"}
    m = caption_metrics(pred, {k: [v] for k, v in pred.items()}, meteor=False)
    # every n-gram precision is 1 and the lengths match (brevity penalty 1): BLEU = 1 -> 100
    assert m["BLEU4"] == pytest.approx(100.0) and m["BLEU3"] == pytest.approx(100.0)
    # LCS = whole sentence: precision = recall = 1 -> ROUGE-L = 1 -> 100
    assert m["ROUGE_L"] == pytest.approx(100.0)
    # the two clips share no n-gram: every idf is log(2) > 0, cosine 1 for n = 1..4, no length
    # penalty: CIDEr-D = 10 * mean(1, 1, 1, 1) = 10 per clip
    assert m["CIDEr"] == pytest.approx(10.0)
    assert m["protocol"] == "corpus" and "METEOR" not in m and m["n_captions"] == 2


@needs_java
def test_corpus_protocol_agrees_with_pycocoevalcap():
    from pycocoevalcap.meteor.meteor import Meteor

    meteor = Meteor()   # the one METEOR process of this suite, used directly and through ours
    try:
        bleu, _ = Bleu(4).compute_score(REFS_NORM, PRED_NORM, verbose=0)
        direct_meteor, _ = meteor.compute_score(REFS_NORM, PRED_NORM)
        rouge, _ = Rouge().compute_score(REFS_NORM, PRED_NORM)
        cider, _ = Cider().compute_score(REFS_NORM, PRED_NORM)
        m = caption_metrics(PRED, REFS, protocol="corpus", meteor=meteor)
    finally:
        meteor.meteor_p.stdin.close()
        meteor.meteor_p.kill()
        meteor.meteor_p.wait()
    assert m["BLEU3"] == pytest.approx(100 * bleu[2])
    assert m["BLEU4"] == pytest.approx(100 * bleu[3])
    assert m["METEOR"] == pytest.approx(100 * direct_meteor)
    assert m["ROUGE_L"] == pytest.approx(100 * rouge)
    assert m["CIDEr"] == pytest.approx(cider)
    assert 0 < m["METEOR"] < 100 and m["protocol"] == "corpus"


@needs_java
def test_per_video_protocol_averages_over_videos():
    video_of = {"c1": "v1", "c2": "v1", "c3": "v1", "c4": "v2"}
    m = caption_metrics(PRED, REFS, protocol="per_video", video_of=video_of, meteor=False)
    # PTB tokenization written out by hand: lower-case, punctuation tokens removed
    ptb_pred = {"c1": ["add the onions and stir"], "c2": ["cut the tomato in half"],
                "c3": ["fry the chicken"], "c4": ["serve it"]}
    ptb_refs = {"c1": ["add onions and stir them", "stir in the onions"], "c2": ["cut the tomatoes in half"],
                "c3": ["fry chicken in the pan"], "c4": ["serve the dish"]}
    per = []
    for keys in (["c1", "c2", "c3"], ["c4"]):
        g = {k: ptb_refs[k] for k in keys}
        r = {k: ptb_pred[k] for k in keys}
        bleu, _ = Bleu(4).compute_score(g, r, verbose=0)
        per.append((bleu[3], Rouge().compute_score(g, r)[0], Cider().compute_score(g, r)[0]))
    # a one-clip video has log(1 reference set) = 0 as idf everywhere: CIDEr 0, a trait of the protocol
    assert per[1][2] == 0.0
    assert m["BLEU4"] == pytest.approx(100 * np.mean([p[0] for p in per]))
    assert m["ROUGE_L"] == pytest.approx(100 * np.mean([p[1] for p in per]))
    assert m["CIDEr"] == pytest.approx(np.mean([p[2] for p in per]))
    assert (m["protocol"], m["n_videos"], m["n_captions"]) == ("per_video", 2, 4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(predictions={"a": "x"}, references={"b": ["x"]}), "same keys"),
    (dict(predictions={}, references={}), "non-empty"),
    (dict(predictions={"a": "x"}, references={"a": []}), "non-empty list"),
    (dict(predictions={"a": "x"}, references={"a": "x"}), "non-empty list"),
    (dict(predictions={"a": ["x"]}, references={"a": ["x"]}), "one string"),
    (dict(predictions={"a": "x"}, references={"a": ["x"]}, protocol="bleu"), "protocol"),
    (dict(predictions={"a": "x"}, references={"a": ["x"]}, protocol="per_video"), "video_of"),
    (dict(predictions={"a": "x"}, references={"a": ["x"]}, protocol="per_video", video_of={}), "no video"),
])
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        caption_metrics(meteor=False, **kwargs)
