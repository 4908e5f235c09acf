"""WER and content-word recall of recognised narration, against hand-counted references."""
from __future__ import annotations

import pytest

from actbert.speech.evaluation import score_transcripts


def _rec(text, times, end=None):
    return {"start": [times[0]], "end": [end if end is not None else times[-1] + 0.5], "text": [text],
            "words": [[[w, t, t + 0.4, 0.9] for w, t in zip(text.split(), times)]]}


def test_wer_and_recall_by_hand():
    ref = {"v": _rec("we cut the tomato", [0.0, 1.0, 2.0, 3.0])}
    hyp = {"v": _rec("we cut a tomato now", [0.0, 1.0, 2.0, 3.0, 4.0])}
    s = score_transcripts(ref, hyp)
    # one substitution (the -> a) and one insertion (now) over 4 reference words
    assert (s.substitutions, s.deletions, s.insertions, s.reference_words) == (1, 0, 1, 4)
    assert s.wer == pytest.approx(50.0)
    # content words: "cut" (verb) and "tomato" (noun), both heard at their time
    assert (s.content_words, s.content_recall, s.verb_recall, s.noun_recall) == (2, 100.0, 100.0, 100.0)


def test_recall_needs_the_word_near_its_time_and_a_missing_video_is_all_deletions():
    ref = {"v": _rec("we cut the tomato", [0.0, 1.0, 2.0, 3.0]), "w": _rec("wash the lemon", [0.0, 0.5, 1.0])}
    late = {"v": _rec("we cut the tomato", [2.5, 3.5, 4.5, 5.5])}  # every word 2.5 s late
    s = score_transcripts(ref, late)
    assert s.content_recall == 0.0 and s.missing_videos == 1
    assert s.deletions == 3 and s.wer == pytest.approx(100.0 * 3 / 7)
    assert score_transcripts(ref, late, tolerance=3.0, videos=["v"]).content_recall == 100.0


def test_a_word_spacy_splits_keeps_its_spoken_time():
    # spaCy reads "i'm" as two tokens: the line's 4 timed words still give "cutting" its own time (5.0),
    # not a place spread evenly over the 8-second line (4.0, which a 0.5 s tolerance would miss)
    ref = {"v": _rec("i'm cutting the tomato", [0.0, 5.0, 5.5, 6.0], end=8.0)}
    hyp = {"v": _rec("cutting", [5.1])}
    s = score_transcripts(ref, hyp, tolerance=0.5)
    assert s.verb_recall == 100.0 and s.noun_recall == 0.0
