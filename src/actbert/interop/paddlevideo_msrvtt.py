"""PaddleVideo's MSR-VTT retrieval protocol on its own feature LMDB (`msrvtt_test.lmdb`), reproduced exactly.

What PaddleVideo does (`MSRVTTDataset`, `ActBert.test_step`, `MSRVTTMetric`), and so what we do:
* csv: each line is `video_id,caption` split on ","; the gallery is the csv's videos in row order, one per
  row (a video listed twice is two gallery entries, both targets of its captions);
* caption: `[CLS]` + WordPiece + `[SEP]`, padded to 36 with id 0, never truncated;
* video: LMDB value = pickle {video_id, image_h, image_w, features [N*2048], boxes [N*4] (x1,y1,x2,y2 px),
  action_features [K*2048]}; the global region token = mean of all N boxes, then at most 35 boxes;
  box location = (x1/W, y1/H, x2/W, y2/H, area/(W*H)); K <= 5 action clips, zero-padded to 5, and the
  action mask is all ones (padded clips are attended, as in PaddleVideo);
* score = softmax(matching logits)[matched]; rank = position of the first true video in
  argsort(-score); R@k = 100 * mean(rank < k), MedR = floor(median(rank) + 1), MeanR = mean(rank) + 1.
PaddleVideo hard-codes a 1000-video gallery; here it is whatever the csv lists.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actbert.errors import ActbertError
from actbert.interop.safe_pickle import load_numpy_pickle

PADDLE_TEXT_LEN = 36  # MSRVTTDataset.max_seq_length: pad to, never truncate
PADDLE_REGION_TOKENS = 36  # max_region_num: the global token and 35 boxes
PADDLE_ACTION_SLOTS = 5  # max_action_num


class PaddleDataError(ActbertError, ValueError):
    """A csv or LMDB entry PaddleVideo's protocol cannot use; the message names the file and the entry."""


def read_paddle_csv(path: str | Path) -> list[tuple[str, str]]:
    """(video_id, caption) per line, split on "," as PaddleVideo does (a caption is the text up to its
    first comma). Blank lines are an error too: PaddleVideo would crash on them."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PaddleDataError(f"{path}: cannot read ({exc})") from exc
    rows = []
    for number, line in enumerate(lines, 1):
        parts = line.strip().split(",")
        if len(parts) < 2 or not parts[0]:
            if not line.strip() and number == len(lines):
                continue  # a final newline-only line: `readlines` never returns it
            raise PaddleDataError(f"{path}:{number}: expected 'video_id,caption', got {line[:80]!r}")
        rows.append((parts[0], parts[1]))
    if not rows:
        raise PaddleDataError(f"{path}: no rows")
    return rows


@dataclass
class PaddleVideoInputs:
    region_feats: np.ndarray  # [35, F] boxes, zero-padded
    region_loc: np.ndarray  # [35, 5]
    region_mask: np.ndarray  # [35] bool
    region_global: np.ndarray  # [F] mean of all boxes
    action_feats: np.ndarray  # [5, F]


class PaddleFeatureLMDB:
    """Read-only view of a PaddleVideo feature LMDB; values go through the numpy-only unpickler."""

    def __init__(self, path: str | Path, region_dim: int = 2048, action_dim: int = 2048):
        import lmdb

        self.path = Path(path)
        if not self.path.exists():
            raise PaddleDataError(f"{self.path}: no such LMDB")
        try:  # read-only and no lock file: the folder may be read-only, and nothing here writes
            self.env = lmdb.open(str(self.path), readonly=True, lock=False, subdir=self.path.is_dir())
        except lmdb.Error as exc:
            raise PaddleDataError(f"{self.path}: not a readable LMDB ({exc})") from exc
        self.region_dim, self.action_dim = region_dim, action_dim

    def raw(self, video_id: str) -> dict[str, Any]:
        with self.env.begin(write=False) as txn:
            value = txn.get(video_id.encode())
        where = f"{self.path}[{video_id}]"
        if value is None:
            raise PaddleDataError(f"{self.path}: no entry for video {video_id!r} (listed in the csv)")
        item = load_numpy_pickle(bytes(value), source=where)
        if not isinstance(item, dict):
            raise PaddleDataError(f"{where}: value is a {type(item).__name__}, not PaddleVideo's feature dict")
        missing = [k for k in ("image_h", "image_w", "features", "boxes", "action_features") if k not in item]
        if missing:
            raise PaddleDataError(f"{where}: value lacks {missing}")
        return item

    def inputs(self, video_id: str) -> PaddleVideoInputs:
        item, where = self.raw(video_id), f"{self.path}[{video_id}]"
        try:
            h, w = float(item["image_h"]), float(item["image_w"])
            feats = np.asarray(item["features"], dtype=np.float32).reshape(-1, self.region_dim)
            boxes = np.asarray(item["boxes"], dtype=np.float32).reshape(-1, 4)
            actions = np.asarray(item["action_features"], dtype=np.float32).reshape(-1, self.action_dim)
        except (TypeError, ValueError) as exc:
            raise PaddleDataError(f"{where}: features/boxes/action_features of the wrong size or type ({exc})") from exc
        if h <= 0 or w <= 0:
            raise PaddleDataError(f"{where}: image size {w}x{h} is not positive")
        if len(feats) == 0 or len(feats) != len(boxes):
            raise PaddleDataError(f"{where}: {len(feats)} region features and {len(boxes)} boxes (need equal, >= 1)")
        if len(actions) > PADDLE_ACTION_SLOTS:
            raise PaddleDataError(f"{where}: {len(actions)} action clips; PaddleVideo's protocol takes at most "
                                  f"{PADDLE_ACTION_SLOTS}")
        if not (np.isfinite(feats).all() and np.isfinite(boxes).all() and np.isfinite(actions).all()):
            raise PaddleDataError(f"{where}: non-finite values in the features or boxes")
        global_feat = feats.sum(0) / len(feats)  # over all boxes, before keeping 35 (as PaddleVideo)
        loc = np.zeros((len(boxes), 5), dtype=np.float32)
        loc[:, :4] = boxes
        loc[:, 4] = (loc[:, 3] - loc[:, 1]) * (loc[:, 2] - loc[:, 0]) / (w * h)
        loc[:, [0, 2]] /= w
        loc[:, [1, 3]] /= h
        keep = min(len(feats), PADDLE_REGION_TOKENS - 1)
        pad = PADDLE_REGION_TOKENS - 1
        region = np.zeros((pad, self.region_dim), np.float32)
        region[:keep] = feats[:keep]
        region_loc = np.zeros((pad, 5), np.float32)
        region_loc[:keep] = loc[:keep]
        action = np.zeros((PADDLE_ACTION_SLOTS, self.action_dim), np.float32)
        action[:len(actions)] = actions
        return PaddleVideoInputs(region, region_loc, np.arange(pad) < keep, global_feat, action)


def paddle_text_ids(tokenizer, caption: str, max_positions: int) -> list[int]:
    ids = tokenizer.encode(caption, max_len=max_positions + 1)
    if len(ids) > max_positions:
        raise PaddleDataError(f"caption of {len(ids)} word pieces exceeds the model's {max_positions} positions: "
                              f"{caption[:60]!r}")
    return ids + [0] * (PADDLE_TEXT_LEN - len(ids))


@torch.no_grad()
def score_matrix(model, tokenizer, rows: list[tuple[str, str]], features: PaddleFeatureLMDB,
                 batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """softmax(matching logits)[matched] for every (caption row, gallery row) pair, [C, V] float32."""
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    enc = model.actbert
    videos = [features.inputs(v) for v, _ in rows]
    stack = lambda name: torch.from_numpy(np.stack([getattr(v, name) for v in videos])).to(device)  # noqa: E731
    action = stack("action_feats")
    video = enc.encode_video(action, torch.ones(action.shape[:2], dtype=torch.bool, device=device),
                             stack("region_feats"), stack("region_loc"), stack("region_mask"),
                             region_global=stack("region_global"))
    texts = [paddle_text_ids(tokenizer, c, model.config.max_position_embeddings) for _, c in rows]
    scores = np.zeros((len(rows), len(rows)), dtype=np.float32)
    for i, ids in enumerate(tqdm(texts, desc="captions", unit="caption", disable=not progress)):
        ids_t = torch.tensor([ids], device=device)
        text = enc.encode_text(ids_t, ids_t != 0)
        for start in range(0, len(rows), batch_size):
            cols = torch.arange(start, min(start + batch_size, len(rows)))
            fused = enc.fuse(text.index(torch.zeros(len(cols), dtype=torch.long)), video.index(cols))
            prob = torch.softmax(model.match_logits(fused).float(), dim=-1)[:, 1]
            scores[i, start:start + len(cols)] = prob.cpu().numpy()
    return scores


def paddle_ranks(scores: np.ndarray, rows: list[tuple[str, str]]) -> np.ndarray:
    """MSRVTTMetric: rank of the first gallery entry of the caption's video in argsort(-score)."""
    gallery = np.array([v for v, _ in rows])
    ranks = np.empty(len(rows), dtype=np.int64)
    for i, (vid, _) in enumerate(rows):
        first_target = np.where(gallery == vid)[0][0]
        ranks[i] = np.where(np.argsort(-scores[i]) == first_target)[0][0]
    return ranks


def paddle_metrics(ranks: np.ndarray) -> dict[str, float]:
    ranks = np.asarray(ranks, dtype=np.float64)
    recall = lambda k: float(100.0 * np.sum(ranks < k) / len(ranks))  # noqa: E731 - MSRVTTMetric's arithmetic
    return {
        "R@1": recall(1),
        "R@5": recall(5),
        "R@10": recall(10),
        "MedR": float(np.floor(np.median(ranks) + 1)),
        "MeanR": float(np.mean(ranks) + 1),
    }
