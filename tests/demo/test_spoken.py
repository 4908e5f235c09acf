"""The robustness technique of the spoken-world experiment: low-confidence words are dropped."""
from __future__ import annotations

from actbert.demo.spoken import CONFIDENCE_FLOOR, _drop_unsure


def test_words_under_the_confidence_floor_are_dropped_and_empty_lines_go():
    rec = {"start": [0.0, 3.0], "end": [2.0, 4.0], "text": ["pour the oil", "uh"],
           "words": [[["pour", 0.0, 0.4, 0.9], ["the", 0.4, 0.5, CONFIDENCE_FLOOR - 0.01], ["oil", 0.5, 1.0, 0.7]],
                     [["uh", 3.0, 3.2, 0.1]]]}
    assert _drop_unsure(rec) == {"start": [0.0], "end": [2.0], "text": ["pour oil"]}


def test_paired_differences_give_intervals_and_the_share_of_the_gap_closed():
    from actbert.demo.spoken import paired_differences

    def qa(correct):
        return {"qa": {"correct": correct, "chance": 20.0}}
    res = {"zero_shot": {"written": qa([1] * 16 + [0] * 4), "asr_general": qa([0] * 20),
                         "asr_catalog": qa([1] * 8 + [0] * 12), "asr_catalog_conf": qa([1] * 10 + [0] * 10)}}
    p = paired_differences(res)
    gap = p["differences"]["zero_shot_qa: written - asr_catalog"]
    assert gap["diff"] == 40.0 and gap["supported"]
    assert p["differences"]["zero_shot_qa: asr_catalog_conf - asr_catalog"]["diff"] == 10.0
    assert p["gap_closed"] == {"zero_shot_qa": 0.25}  # 10 of the 40 points
    assert set(p["differences"]) == {f"zero_shot_qa: {a} - {b}" for a, b in
                                     (("written", "asr_general"), ("written", "asr_catalog"),
                                      ("asr_catalog_conf", "asr_catalog"), ("written", "asr_catalog_conf"))}
    res["zero_shot"]["written"] = qa([1] * 8 + [0] * 12)  # no gap: nothing to close
    assert paired_differences(res)["gap_closed"] == {"zero_shot_qa": None}
