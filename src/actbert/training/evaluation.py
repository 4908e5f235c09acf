"""Held-out evaluation during pre-training: what each objective has learnt, and zero-shot retrieval.

* masked-token / masked-action / masked-region accuracy, on the positions the losses use (masked objectives
  only on matched pairs unless the model computes them on mismatched ones too);
* the majority-class baseline of masked actions on the same targets (verb distributions are skewed, so a
  model that always says "add" looks good without it);
* matching accuracy on a balanced held-out set: every clean held-out clip with its own caption (a positive)
  and with another video's caption (a negative), so exactly half the pairs match and a constant answer
  scores 50 % (`match_majority_acc`). The training batches' random negatives are not used for it: on a
  held-out split of one video they are all positives, and 'always matched' would look perfect;
* zero-shot text->video R@1 over `N` clean held-out (caption, clip) pairs: every caption scored against every
  clip with the matching head, re-using `encode_text` / `encode_video` states (N + N single-modality passes,
  N*N fusions), chance = 100/N.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from typing import Callable, Iterable

import numpy as np
import torch
from torch import Tensor

IGNORE = -100


def to_device(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}


@torch.no_grad()
def masked_metrics(model, batches: Iterable[dict[str, Tensor]], device: torch.device,
                   autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                   action_rows: list | None = None) -> dict[str, float]:
    """Accuracies and mean losses over `batches` (already masked, with match labels).

    `action_rows`, when given, receives one (predicted, target) pair of int lists per batch row (the row's
    scored masked actions, in batch order), for per-item statistics.
    """
    correct: Counter = Counter()
    total: Counter = Counter()
    loss_sum: Counter = Counter()
    action_targets: list[np.ndarray] = []
    n_batches = 0
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            batch = to_device(batch, device)
            with autocast():
                out = model(batch)
            n_batches += 1
            for name, value in out.losses.items():
                loss_sum[name] += float(value)
            keep = torch.ones(batch["text_ids"].shape[0], dtype=torch.bool, device=device)
            if "match_labels" in batch and not model.config.masked_loss_on_mismatched:
                keep = batch["match_labels"].bool()
            if out.mlm_logits is not None:
                # the model decodes only the masked positions (out.mlm_positions)
                _count(correct, total, "mlm", out.mlm_logits.argmax(-1), batch["mlm_labels"][out.mlm_positions])
            if out.action_logits is not None:
                sel = (batch["action_target"] != IGNORE) & keep[:, None]
                target = batch["action_target"][sel]
                pred = out.action_logits.argmax(-1)[sel]
                _count(correct, total, "action", pred, target)
                action_targets.append(target.cpu().numpy())
                if action_rows is not None:  # sel is row-major: split the flat targets by row
                    counts = sel.sum(1).tolist()
                    action_rows.extend((a.tolist(), b.tolist()) for a, b in
                                       zip(pred.cpu().split(counts), target.cpu().split(counts)))
            if out.region_logits is not None:
                sel = batch["region_target_mask"].bool() & batch["region_mask"].bool() & keep[:, None]
                _count(correct, total, "region", out.region_logits.argmax(-1)[sel], batch["region_cls"].argmax(-1)[sel])
    finally:
        model.train(was_training)
    result: dict[str, float] = {}
    for name in ("mlm", "action", "region"):
        if total[name]:
            result[f"{name}_acc"] = correct[name] / total[name]
        result[f"{name}_count"] = total[name]
    if action_targets:
        targets = np.concatenate(action_targets)
        if targets.size:  # the best constant guess, judged on the very targets the model is judged on
            result["action_majority_acc"] = float(np.bincount(targets).max() / targets.size)
    for name, value in loss_sum.items():
        result[f"loss_{name}"] = value / max(n_batches, 1)
    return result


def _count(correct: Counter, total: Counter, name: str, pred: Tensor, target: Tensor) -> None:
    correct[name] += int((pred == target).sum())
    total[name] += int(target.numel())


@torch.no_grad()
def retrieval_scores(model, batch: dict[str, Tensor], device: torch.device,
                     autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                     pairs_per_chunk: int = 512) -> np.ndarray:
    """S[i, j] = log P(matched) of caption i with clip j, for a clean batch of N matched pairs."""
    batch = to_device(batch, device)
    enc = model.actbert
    was_training = model.training
    model.eval()
    try:
        with autocast():
            text = enc.encode_text(batch["text_ids"], batch["text_mask"], batch.get("text_segment"))
            video = enc.encode_video(batch["action_feats"], batch["action_mask"], batch["region_feats"],
                                     batch["region_loc"], batch["region_mask"], batch.get("region_frame"))
            n = len(text)
            rows_per_chunk = max(1, pairs_per_chunk // n)
            scores = []
            for lo in range(0, n, rows_per_chunk):
                rows = torch.arange(lo, min(n, lo + rows_per_chunk))
                t_idx = rows.repeat_interleave(n)
                v_idx = torch.arange(n).repeat(len(rows))
                scores.append(model.score_pairs(text.index(t_idx), video.index(v_idx)).float().view(len(rows), n))
    finally:
        model.train(was_training)
    return torch.cat(scores).cpu().numpy()


def balanced_pairs(video_ids: list) -> tuple[np.ndarray, np.ndarray]:
    """Negative partners for a balanced matching set over clean pairs (caption i belongs to clip i).

    Returns (clips, captions): clip i is paired with caption `captions[i]`, the next caption in order that
    belongs to another video. Raises ValueError when all clips come from one video: such a set has no
    negative, and its accuracy would measure a single class.
    """
    n = len(video_ids)
    if len(set(video_ids)) < 2:
        raise ValueError(f"a balanced matching set needs clips of at least 2 videos, got {n} clip(s) of "
                         f"{len(set(video_ids))} video(s)")
    partner = [next(j % n for j in range(i + 1, i + n) if video_ids[j % n] != video_ids[i]) for i in range(n)]
    return np.arange(n), np.asarray(partner)


def matching_metrics(S: np.ndarray, video_ids: list) -> dict[str, float]:
    """Balanced held-out matching accuracy from the clean score matrix S[caption, clip] = log P(matched).

    n positives (the diagonal) and n negatives (`balanced_pairs`); a pair is called matched when
    P(matched) > 0.5, the argmax of the two-way matching head. `match_majority_acc` (0.5) is the best
    constant answer on the same pairs.
    """
    clips, captions = balanced_pairs(video_ids)
    positive = S[clips, clips] > np.log(0.5)
    negative = S[captions, clips] <= np.log(0.5)
    labels = np.concatenate([np.ones(len(clips)), np.zeros(len(clips))])
    return {"match_acc": float(np.concatenate([positive, negative]).mean()), "match_count": int(labels.size),
            "match_majority_acc": float(max(labels.mean(), 1 - labels.mean()))}


def zero_shot_retrieval(model, batch: dict[str, Tensor], device: torch.device,
                        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                        video_ids: list | None = None) -> dict[str, float]:
    """{"t2v_R1", "t2v_R5", "t2v_MedR", "t2v_chance_R1"} on the batch's N pairs (caption i belongs to clip i),
    and, given the clips' `video_ids` (at least two videos), the balanced matching metrics of the same scores."""
    from actbert.metrics.retrieval import retrieval_metrics

    S = retrieval_scores(model, batch, device, autocast)
    # "mean" ties: an untrained model that scores everything alike gets chance, not a lucky R@1
    m = retrieval_metrics(S, tie_policy="mean")
    out = {"t2v_R1": m["R1"], "t2v_R5": m["R5"], "t2v_MedR": m["MedR"], "t2v_chance_R1": 100.0 / S.shape[0]}
    if video_ids is not None and len(set(video_ids)) >= 2:
        out.update(matching_metrics(S, video_ids))
    return out
