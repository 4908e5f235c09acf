"""Retrieval metrics against hand-computed cases and a literal copy of HowTo100M's compute_metrics."""
from __future__ import annotations

import numpy as np
import pytest

from actbert.metrics.retrieval import both_directions, ranks, retrieval_metrics

TIE = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]], dtype=float)


def howto100m_compute_metrics(x):
    """The reference, as published in HowTo100M / MIL-NCE (only the oracle of this test)."""
    sx = np.sort(-x, axis=1)
    d = np.diag(-x)
    d = d[:, np.newaxis]
    ind = sx - d
    ind = np.where(ind == 0)
    ind = ind[1]
    return {"R1": float(np.sum(ind == 0)) / len(ind), "R5": float(np.sum(ind < 5)) / len(ind),
            "R10": float(np.sum(ind < 10)) / len(ind), "MR": np.median(ind) + 1, "ind": ind}


def test_spec_tie_example_reference():
    # row 0: target 1 ties column 1 -> entries 0, 1; rows 1, 2: rank 0 -> list [0, 1, 0, 0]
    assert ranks(TIE, "reference").tolist() == [0, 1, 0, 0]
    m = retrieval_metrics(TIE)
    assert m["R1"] == pytest.approx(75.0)       # 3 of 4 entries are 0
    assert m["R5"] == pytest.approx(100.0)
    assert m["MedR"] == 1.0                      # median([0, 0, 0, 1]) + 1 = 0 + 1
    assert m["MeanR"] == pytest.approx(1.25)     # (0+1+0+0)/4 + 1
    assert (m["n_queries"], m["n_ranks"], m["tie_policy"]) == (3, 4, "reference")


def test_each_tie_policy_by_hand():
    # row 0: 0 columns strictly above the target, 1 column equal to it
    assert ranks(TIE, "optimistic").tolist() == [0, 0, 0]
    assert ranks(TIE, "pessimistic").tolist() == [1, 0, 0]
    assert ranks(TIE, "mean").tolist() == [0.5, 0, 0]
    assert retrieval_metrics(TIE, "optimistic")["R1"] == pytest.approx(100.0)
    assert retrieval_metrics(TIE, "pessimistic")["R1"] == pytest.approx(200 / 3)   # 2 of 3
    mean = retrieval_metrics(TIE, "mean")
    assert mean["R1"] == pytest.approx(100.0)     # 0.5 < 1: a rank-0.5 query counts at R@1
    assert mean["MeanR"] == pytest.approx(0.5 / 3 + 1)
    assert retrieval_metrics(TIE, "pessimistic")["MeanR"] == pytest.approx(1 / 3 + 1)


def test_reference_median_ending_in_half():
    # all equal 2x2: each row contributes [0, 1] -> list [0, 1, 0, 1], median 0.5, MedR 1.5, R@1 = 2/4
    m = retrieval_metrics(np.ones((2, 2)))
    assert m["MedR"] == 1.5 and m["R1"] == pytest.approx(50.0) and m["n_ranks"] == 4


def test_permutation_without_ties():
    # true item of query i sits at rank r = [0, 2, 1, 3] (distinct scores)
    S = np.array([[9, 1, 2, 3],
                  [5, 4, 6, 1],
                  [2, 9, 5, 1],
                  [4, 3, 2, 1]], dtype=float)
    # row 1: 5, 6 > 4 -> 2; row 2: 9 > 5 -> 1; row 3: 4, 3, 2 > 1 -> 3
    for policy in ("reference", "optimistic", "pessimistic", "mean"):
        m = retrieval_metrics(S, policy)
        assert ranks(S, policy).tolist() == [0, 2, 1, 3]
        assert m["R1"] == pytest.approx(25.0) and m["R5"] == pytest.approx(100.0)
        assert m["MedR"] == 2.5                 # median(0, 1, 2, 3) = 1.5, + 1
        assert m["MeanR"] == pytest.approx(2.5)  # 6 / 4 + 1
    # shuffling the columns and saying where each truth went changes nothing
    perm = np.array([2, 0, 3, 1])               # new column j holds old column perm[j]
    gt = np.argsort(perm)                       # old column i is now at gt[i]
    assert ranks(S[:, perm], gt=gt).tolist() == [0, 2, 1, 3]


def test_matches_literal_reference_on_random_ties():
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 12):
        x = rng.integers(0, 3, size=(n, n)).astype(float)  # many ties
        ref = howto100m_compute_metrics(x)
        ours = ranks(x, "reference")
        assert ours.tolist() == ref["ind"].tolist()
        m = retrieval_metrics(x)
        assert m["R1"] == pytest.approx(100 * ref["R1"]) and m["MedR"] == ref["MR"]


def test_both_directions():
    S = np.array([[5, 4, 0], [9, 1, 0], [0, 0, 2]], dtype=float)
    out = both_directions(S)
    # t2v ranks: row0 5>4 -> 0; row1 9>1 -> 1; row2 -> 0  => R1 = 2/3
    assert out["t2v"]["R1"] == pytest.approx(200 / 3) and out["t2v"]["direction"] == "t2v"
    # v2t on S.T = [[5,9,0],[4,1,0],[0,0,2]]: 9>5 -> 1; 4>1 -> 1; 0 => R1 = 1/3
    assert out["v2t"]["R1"] == pytest.approx(100 / 3) and out["v2t"]["direction"] == "v2t"


def test_several_captions_per_video():
    S = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    gt = np.array([0, 0, 1])                    # captions 0, 1 -> video 0; caption 2 -> video 1
    out = both_directions(S, gt=gt)
    # t2v: q0 0.9>0.1 -> 0; q1 0.2<0.8 -> 1; q2 0.7>0.3 -> 0
    assert out["t2v"]["R1"] == pytest.approx(200 / 3) and out["t2v"]["n_queries"] == 3
    # v2t: video 0 best caption 0.9 vs negative caption 2 (0.3) -> 0 (caption 1 is not a competitor);
    #      video 1 caption 2 (0.7) vs 0.1, 0.8 -> 1
    assert ranks(S.T, "optimistic", positives=np.array([[1, 1, 0], [0, 0, 1]], bool)).tolist() == [0, 1]
    assert out["v2t"]["R1"] == pytest.approx(50.0) and out["v2t"]["n_queries"] == 2


@pytest.mark.parametrize("kwargs, match", [
    (dict(S=np.ones((2, 3))), "square"),
    (dict(S=np.ones((2, 2)), gt=np.array([0])), "gt must be"),
    (dict(S=np.ones((2, 2)), gt=np.array([0, 2])), "gt values"),
    (dict(S=np.array([[1.0, np.nan], [0, 1]])), "NaN"),
    (dict(S=np.ones((2, 2)), tie_policy="random"), "tie_policy"),
    (dict(S=np.zeros((0, 0))), "non-empty"),
    (dict(S=np.ones(3)), "2-D"),
])
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ranks(**kwargs)
