"""Retrieval metrics: R@1/5/10, median and mean rank, with an explicit tie policy.

`S[i, j]` is the score of query `i` (a caption for text→video) against item `j` (a video). By default the
ground truth of query `i` is column `i` (the file order of the HowTo100M / MIL-NCE csv files); `gt[i]` gives
another column, for galleries with several captions per video or with duplicated captions.

Tie policies (the rank is 0-based: 0 means the true item is first):

* ``reference`` -- exactly HowTo100M's ``compute_metrics``::

      sx = np.sort(-x, axis=1); d = np.diag(-x)[:, None]; ind = np.where(sx - d == 0)[1]

  ``np.where`` runs over the whole matrix, so a query whose true score ties with ``e`` other columns
  contributes ``e + 1`` entries ``g, g+1, ..., g+e`` (``g`` = columns scoring strictly higher) to the rank
  list, which is then longer than the number of queries. R@k, median and mean are taken over that list.
  For ``[[1,1,0],[0,1,0],[0,0,1]]`` the list is ``[0, 1, 0, 0]`` and R@1 = 3/4. We compute the same list
  in closed form (``g .. g+e`` per query, in query order) instead of sorting; it is identical for finite
  scores. (With a true score of ±inf the original code computes ``inf - inf = nan`` and silently drops the
  query; we keep it and count ties as for finite scores. NaN scores are rejected.)
* ``optimistic`` -- rank = number of other columns scoring strictly higher (ties resolved in favour of the
  true item).
* ``pessimistic`` -- rank = number of other columns scoring higher or equal (ties resolved against it).
* ``mean`` -- the average of the two (an expected rank under random tie breaking); can end in .5.

R@k are reported in **percent** (as the papers' tables); MedR = median(rank) + 1 and MeanR = mean(rank) + 1
are 1-based. Every result names its tie policy and direction.
"""
from __future__ import annotations

import numpy as np

TIE_POLICIES = ("reference", "optimistic", "pessimistic", "mean")
RECALL_KS = (1, 5, 10)

__all__ = ["TIE_POLICIES", "ranks", "retrieval_metrics", "both_directions", "positives_from_gt"]


def _check_scores(S) -> np.ndarray:
    S = np.asarray(S)
    if S.ndim != 2 or S.shape[0] == 0 or S.shape[1] == 0:
        raise ValueError(f"S must be a non-empty 2-D score matrix [queries, items], got shape {S.shape}")
    if not np.issubdtype(S.dtype, np.number) or np.issubdtype(S.dtype, np.complexfloating):
        raise ValueError(f"S must hold real numbers, got dtype {S.dtype}")
    S = S.astype(np.float64, copy=False)
    if np.isnan(S).any():
        raise ValueError(f"S contains NaN scores at {np.argwhere(np.isnan(S))[:5].tolist()} (first 5 shown)")
    return S


def _check_policy(tie_policy: str) -> None:
    if tie_policy not in TIE_POLICIES:
        raise ValueError(f"tie_policy must be one of {TIE_POLICIES}, got {tie_policy!r}")


def positives_from_gt(gt, shape: tuple[int, int]) -> np.ndarray:
    """Boolean matrix `[Q, V]` with `True` at `(i, gt[i])`; `gt=None` means the diagonal (needs Q == V)."""
    n_q, n_v = shape
    if gt is None:
        if n_q != n_v:
            raise ValueError(f"S has shape {shape}; without gt the ground truth is the diagonal, "
                             "so S must be square (pass gt[i] = column of query i otherwise)")
        return np.eye(n_q, dtype=bool)
    gt = np.asarray(gt)
    if gt.shape != (n_q,) or not np.issubdtype(gt.dtype, np.integer):
        raise ValueError(f"gt must be an integer array of shape ({n_q},) (one column per query of S {shape}), "
                         f"got shape {gt.shape} dtype {gt.dtype}")
    if gt.min() < 0 or gt.max() >= n_v:
        raise ValueError(f"gt values must lie in [0, {n_v}) (columns of S {shape}), "
                         f"got min {gt.min()} max {gt.max()}")
    pos = np.zeros(shape, dtype=bool)
    pos[np.arange(n_q), gt] = True
    return pos


def _counts(S: np.ndarray, positives: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query: (`greater`, `equal`, `valid`) counts of negatives against the best positive.

    The target of a query is its best-scoring positive; the other positives are not competitors (a
    video with two captions must not be penalised for its second caption). `valid` is False for
    queries without any positive (a gallery item nobody asked for in the video→text direction).
    """
    valid = positives.any(axis=1)
    target = np.where(positives, S, -np.inf).max(axis=1)
    negatives = ~positives
    greater = ((S > target[:, None]) & negatives).sum(axis=1)
    equal = ((S == target[:, None]) & negatives).sum(axis=1)
    return greater, equal, valid


def ranks(S, tie_policy: str = "reference", gt=None, positives=None) -> np.ndarray:
    """0-based rank of the ground truth of each query (row) of `S` under `tie_policy`.

    `gt[i]` is the column of query `i` (default: `i`); `positives` (bool `[Q, V]`) may be given instead
    for several true items per query (the best-scoring one counts, the others are ignored). Queries
    without any positive are skipped. For ``reference`` the result can be longer than the number of
    queries (one entry per tied column, see the module docstring); ``mean`` ranks may be x.5.
    """
    S = _check_scores(S)
    _check_policy(tie_policy)
    if positives is not None:
        if gt is not None:
            raise ValueError("pass either gt or positives, not both")
        positives = np.asarray(positives, dtype=bool)
        if positives.shape != S.shape:
            raise ValueError(f"positives must have the shape of S {S.shape}, got {positives.shape}")
    else:
        positives = positives_from_gt(gt, S.shape)
    greater, equal, valid = _counts(S, positives)
    if not valid.any():
        raise ValueError(f"no query of S {S.shape} has a ground-truth item")
    greater, equal = greater[valid], equal[valid]
    if tie_policy == "optimistic":
        return greater.astype(np.int64)
    if tie_policy == "pessimistic":
        return (greater + equal).astype(np.int64)
    if tie_policy == "mean":
        return greater + equal / 2.0
    # reference: query i contributes greater_i, greater_i + 1, ..., greater_i + equal_i, in query order,
    # exactly the column indices np.where(sorted_row - diag == 0) returns for that row.
    reps = equal + 1
    starts = np.repeat(greater, reps)
    offsets = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
    return (starts + offsets).astype(np.int64)


def _summarise(r: np.ndarray, n_queries: int, tie_policy: str, direction: str) -> dict:
    out: dict = {}
    for k in RECALL_KS:
        out[f"R{k}"] = float(100.0 * np.mean(r < k))
    out["MedR"] = float(np.median(r) + 1)
    out["MeanR"] = float(np.mean(r) + 1)
    out["n_queries"] = int(n_queries)
    out["n_ranks"] = int(r.size)  # > n_queries only under the reference policy with ties
    out["tie_policy"] = tie_policy
    out["direction"] = direction
    out["recall_unit"] = "percent"
    return out


def retrieval_metrics(S, tie_policy: str = "reference", gt=None, positives=None,
                      direction: str = "t2v") -> dict:
    """R1/R5/R10 (percent), MedR, MeanR (1-based) of the row queries of `S`, labelled with the policy.

    Keys: ``R1, R5, R10, MedR, MeanR, n_queries, n_ranks, tie_policy, direction, recall_unit``.
    """
    r = ranks(S, tie_policy=tie_policy, gt=gt, positives=positives)
    pos = positives_from_gt(gt, np.shape(S)) if positives is None else np.asarray(positives, dtype=bool)
    return _summarise(r, int(pos.any(axis=1).sum()), tie_policy, direction)


def both_directions(S, tie_policy: str = "reference", gt=None) -> dict:
    """``{"t2v": ..., "v2t": ...}``: text→video on `S` [captions, videos], video→text on `S.T`.

    Without `gt`, `S` is square and v2t is `retrieval_metrics(S.T)` (the HowTo100M definition applied to
    the transpose). With `gt` (several captions per video), a video's positives in the v2t direction are
    all its captions; the best-scoring one is its target and its other captions are not competitors.
    Videos without any caption are left out of v2t (`n_queries` says how many were scored).
    """
    S = _check_scores(S)
    pos = positives_from_gt(gt, S.shape)
    t2v = retrieval_metrics(S, tie_policy, positives=pos, direction="t2v")
    v2t = retrieval_metrics(S.T, tie_policy, positives=pos.T, direction="v2t")
    return {"t2v": t2v, "v2t": v2t}
