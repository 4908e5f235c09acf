"""ASR cleaning: every rule on a HowTo100M-style rolling transcript, each switchable, all counted."""
from __future__ import annotations

import math

from actbert.data.asr import AsrConfig, Line, clean_lines, clean_text

ROLLING = [  # what YouTube ASR in HowTo100M raw_caption.json looks like
    (0.0, 3.9, "[Music]"),
    (2.1, 6.0, "so um today we are going to"),
    (4.0, 8.2, "we are going to make a cake"),
    (4.0, 8.5, "we are going to make a cake"),
    (7.9, 12.0, "make a cake you know the the best cake"),
    (11.0, 14.0, "do you know how uh to whisk eggs"),
    (13.0, 15.0, "   "),
    (20.0, 19.0, "ends before it starts"),
    (float("nan"), 3.0, "no time"),
]


def test_all_rules():
    out, rep = clean_lines(ROLLING)
    assert [ln.text for ln in out] == ["so today we are going to", "make a cake", "you know the best cake",
                                       "do you know how to whisk eggs"]
    assert out[1] == Line(4.0, 8.5, "make a cake")  # the repeated line's time is merged into it
    r = rep.as_dict()
    assert r["lines_in"] == 9 and r["lines_out"] == 4
    assert r["lines_dropped_bad_time"] == 2 and r["lines_dropped_repeated"] == 1
    assert r["lines_dropped_empty"] == 2  # "[Music]" and the blank line
    assert r["tags_removed"] == 1 and r["filler_words_removed"] == 2 and r["stutter_words_removed"] == 1
    assert r["overlap_words_removed"] == 4 + 3
    assert rep.examples


def test_rules_switch_off():
    off = AsrConfig(drop_tags=False, drop_fillers=False, dedup_overlap=False, drop_repeated_lines=False,
                    collapse_stutter=False, drop_empty=False)
    out, rep = clean_lines(ROLLING, off)
    assert len(out) == 7 and out[0].text == "[Music]" and out[1].text == "so um today we are going to"
    assert rep.overlap_words_removed == rep.filler_words_removed == 0


def test_overlap_needs_min_words_and_fillers_keep_real_phrases():
    out, _ = clean_lines([(0, 2, "chop the"), (2, 4, "the onion finely")])
    assert out[1].text == "the onion finely"  # a 1-word overlap is ordinary speech
    cfg = AsrConfig()
    assert clean_text("Um, so you know, this ermine", cfg) == "so this ermine"
    assert clean_text("do you know what to add", cfg) == "do you know what to add"
    assert clean_text("You know the the drill", AsrConfig(lowercase=True)) == "you know the drill"


def test_objects_with_attributes_and_reports_add():
    class Cap:
        def __init__(self, s, e, t):
            self.start, self.end, self.text = s, e, t

    a = clean_lines([Cap(0, 1, "uh")])[1]
    b = clean_lines([Cap(0, 1, None), Cap(1, math.inf, "x")])[1]
    total = a + b
    assert total.lines_in == 3 and total.lines_dropped_empty == 2 and total.lines_dropped_bad_time == 1
