"""The robustness technique of the spoken-world experiment: low-confidence words are dropped."""
from __future__ import annotations

from actbert.demo.spoken import CONFIDENCE_FLOOR, _drop_unsure


def test_words_under_the_confidence_floor_are_dropped_and_empty_lines_go():
    rec = {"start": [0.0, 3.0], "end": [2.0, 4.0], "text": ["pour the oil", "uh"],
           "words": [[["pour", 0.0, 0.4, 0.9], ["the", 0.4, 0.5, CONFIDENCE_FLOOR - 0.01], ["oil", 0.5, 1.0, 0.7]],
                     [["uh", 3.0, 3.2, 0.1]]]}
    assert _drop_unsure(rec) == {"start": [0.0], "end": [2.0], "text": ["pour oil"]}
