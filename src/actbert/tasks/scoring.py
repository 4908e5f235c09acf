"""Shared pair-scoring engine of the zero-shot tasks (retrieval, CrossTask localization, MC QA).

Every score is `model.score_pairs(text, video)`: the matching head's log P(matched). Scoring P pairs
naively costs P full forward passes. Everything below the first TNT block sees one modality only,
so here each caption is encoded once (`encode_texts`), each video window once (`encode_windows`),
and only the TNT blocks and the layers above them run per pair (`score_pairs`, `score_matrix`),
in batches of pairs built by `state.index`. Every text is padded to one length and every window to
one number of action / region slots, so a pair's score does not depend on which batch it lands in.

Also here: turning a `(video, start, end)` window of a `VideoFeatures` into model inputs
(`window_inputs`), the naive reference (`naive_score_pairs`, a full forward per pair batch, for tests
and the benchmark), model / tokenizer loading and the command-line options shared by the tasks.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from actbert.data.windows import region_location, select_window

__all__ = [
    "Clip", "window_inputs", "collate_windows", "encode_texts", "encode_windows", "score_pairs",
    "score_matrix", "naive_score_pairs", "tokenize", "load_model", "load_tokenizer", "add_common_arguments",
    "eval_mode", "windows_for", "cat_states",
]


@dataclass(frozen=True)
class Clip:
    """A caption and the video window it describes; `start`/`end` None = the whole video."""

    video_id: str
    text: str
    start: float | None = None
    end: float | None = None

    @property
    def window(self) -> tuple[str, float | None, float | None]:
        return (self.video_id, self.start, self.end)


# --- video windows -> model inputs -------------------------------------------------------------------------
def window_inputs(video, start: float | None, end: float | None, max_actions: int, max_regions: int,
                  max_frames: int = 64, region_classes: bool = False) -> dict[str, np.ndarray]:
    """Action and region tokens of `video` (a `VideoFeatures`) inside `[start, end)` seconds (None: the
    whole video), selected exactly as the pre-training corpus selects them (`actbert.data.windows`), except
    that a window containing no clip / key frame falls back to the nearest one: a one-second window
    between two clips still sees the video. `region_classes=True` adds "region_cls", the detector's class
    distribution of each selected region (for pictures and labels)."""
    vid = video.video_id
    s = 0.0 if start is None else float(start)
    e = float(video.duration) if end is None else float(end)
    if e < s:
        raise ValueError(f"video {vid!r}: window end {e} is before its start {s}")
    sel = select_window(video.action_times, video.frame_times, video.region_valid, video.region_score, s, e,
                        max_actions, max_regions, max_frames=max_frames, nearest_clip=True)
    frames = sel.frames[sel.frame_pos]
    item = {
        "action": np.asarray(video.action, dtype=np.float32)[sel.clips],
        "region": np.asarray(video.region, dtype=np.float32)[frames, sel.boxes],
        "region_loc": region_location(np.asarray(video.region_boxes)[frames, sel.boxes], video.image_size),
        "region_frame": sel.frame_pos,
    }
    if region_classes:
        item["region_cls"] = np.asarray(video.region_cls, dtype=np.float32)[frames, sel.boxes]
    return item


def windows_for(store, windows: Sequence[tuple[str, float | None, float | None]], config,
                what: str = "annotation") -> list[dict[str, np.ndarray]]:
    """`window_inputs` of each `(video_id, start, end)`; a video missing from `store` is a clear error."""
    missing = sorted({w[0] for w in windows if w[0] not in store})
    if missing:
        raise KeyError(f"{len(missing)} video(s) of the {what} are not in the feature store "
                       f"{getattr(store, 'root', store)}: {missing[:5]}")
    out, cache = [], {}
    for vid, s, e in windows:
        if vid not in cache:
            cache = {vid: store[vid]}  # windows of one video are usually adjacent: keep only the last video
        out.append(window_inputs(cache[vid], s, e, config.max_actions, config.max_regions, config.max_region_frames))
    return out


def collate_windows(items: Sequence[dict[str, np.ndarray]], n_actions: int, n_regions: int,
                    device: str | torch.device = "cpu") -> dict[str, Tensor]:
    """Pad window inputs to exactly `n_actions` / `n_regions` slots: the model's video batch keys."""
    B = len(items)
    if B == 0:
        raise ValueError("collate_windows needs at least one window")
    d_a = items[0]["action"].shape[1]
    d_r = items[0]["region"].shape[1]
    out = {
        "action_feats": torch.zeros(B, n_actions, d_a), "action_mask": torch.zeros(B, n_actions, dtype=torch.long),
        "region_feats": torch.zeros(B, n_regions, d_r), "region_loc": torch.zeros(B, n_regions, 5),
        "region_mask": torch.zeros(B, n_regions, dtype=torch.long),
        "region_frame": torch.zeros(B, n_regions, dtype=torch.long),
    }
    for i, it in enumerate(items):
        a, r = it["action"].shape[0], it["region"].shape[0]
        if a > n_actions or r > n_regions:
            raise ValueError(f"window {i} has {a} actions / {r} regions, more than the {n_actions} / {n_regions} slots")
        out["action_feats"][i, :a] = torch.from_numpy(it["action"])
        out["action_mask"][i, :a] = 1
        out["region_feats"][i, :r] = torch.from_numpy(it["region"])
        out["region_loc"][i, :r] = torch.from_numpy(it["region_loc"])
        out["region_mask"][i, :r] = 1
        out["region_frame"][i, :r] = torch.from_numpy(it["region_frame"])
    return {k: v.to(device) for k, v in out.items()}


# --- cached encoders and the pair scorer -------------------------------------------------------------------
def tokenize(tokenizer, texts: Sequence[str], max_len: int) -> tuple[Tensor, Tensor]:
    """All `texts` in one `encode_batch` call, so every caption has the same padded length."""
    if len(texts) == 0:
        raise ValueError("no text to encode")
    ids, mask = tokenizer.encode_batch(list(texts), max_len)
    return torch.as_tensor(np.asarray(ids), dtype=torch.long), torch.as_tensor(np.asarray(mask), dtype=torch.long)


def cat_states(states: list):
    """Concatenate TextStates (or VideoStates) along the batch axis."""
    from dataclasses import fields, replace

    first = states[0]
    return replace(first, **{f.name: torch.cat([getattr(s, f.name) for s in states]) for f in fields(first)})


@torch.no_grad()
def encode_texts(model, text_ids: Tensor, text_mask: Tensor, batch_size: int = 256, progress: bool = False):
    """TextState of every caption (stage 0 of the text stream), computed once, in chunks."""
    dev = next(model.parameters()).device
    parts = []
    for i in tqdm(range(0, text_ids.shape[0], batch_size), desc="encode text", disable=not progress, leave=False):
        parts.append(model.actbert.encode_text(text_ids[i:i + batch_size].to(dev), text_mask[i:i + batch_size].to(dev)))
    return cat_states(parts)


@torch.no_grad()
def encode_windows(model, items: Sequence[dict[str, np.ndarray]], batch_size: int = 256, progress: bool = False):
    """VideoState of every window (stage 0 of the region and action streams), computed once, in chunks.

    All windows are padded to the same slot counts (the largest window, at most the config's limits),
    so states of different chunks concatenate and scores do not depend on the chunking.
    """
    if len(items) == 0:
        raise ValueError("no video window to encode")
    dev = next(model.parameters()).device
    n_a = max(1, max(it["action"].shape[0] for it in items))
    n_r = max(1, max(it["region"].shape[0] for it in items))
    parts = []
    for i in tqdm(range(0, len(items), batch_size), desc="encode video", disable=not progress, leave=False):
        b = collate_windows(items[i:i + batch_size], n_a, n_r, dev)
        parts.append(model.actbert.encode_video(b["action_feats"], b["action_mask"], b["region_feats"],
                                                b["region_loc"], b["region_mask"], b["region_frame"]))
    return cat_states(parts)


@torch.no_grad()
def score_pairs(model, text_state, video_state, text_idx, video_idx, batch_size: int = 256,
                progress: bool = False) -> np.ndarray:
    """log P(matched) of the pairs `(text_idx[p], video_idx[p])`, float64 `[P]`, from cached states."""
    ti = torch.as_tensor(np.asarray(text_idx), dtype=torch.long).reshape(-1)
    vj = torch.as_tensor(np.asarray(video_idx), dtype=torch.long).reshape(-1)
    if ti.shape != vj.shape:
        raise ValueError(f"text_idx ({ti.numel()}) and video_idx ({vj.numel()}) must pair up one to one")
    out = np.empty(ti.numel(), dtype=np.float64)
    for p in tqdm(range(0, ti.numel(), batch_size), desc="score pairs", disable=not progress, leave=False):
        sl = slice(p, p + batch_size)
        out[sl] = model.score_pairs(text_state.index(ti[sl]), video_state.index(vj[sl])).double().cpu().numpy()
    return out


def score_matrix(model, text_state, video_state, batch_size: int = 256, progress: bool = False) -> np.ndarray:
    """`S[i, j]` = score of caption i and video j for every pair (exhaustive, cached, batched)."""
    Q, V = len(text_state), len(video_state)
    ti, vj = np.divmod(np.arange(Q * V, dtype=np.int64), V)
    return score_pairs(model, text_state, video_state, ti, vj, batch_size, progress).reshape(Q, V)


@torch.no_grad()
def naive_score_pairs(model, text_ids: Tensor, text_mask: Tensor, video_batch: dict[str, Tensor],
                      text_idx, video_idx, batch_size: int = 256, progress: bool = False) -> np.ndarray:
    """The uncached reference: a full `model(batch)` (both single-modality stages included) per pair batch.

    This is what the public ActBERT code does for retrieval; kept for the equality tests and the benchmark.
    """
    import torch.nn.functional as F

    dev = next(model.parameters()).device
    ti = torch.as_tensor(np.asarray(text_idx), dtype=torch.long).reshape(-1)
    vj = torch.as_tensor(np.asarray(video_idx), dtype=torch.long).reshape(-1)
    out = np.empty(ti.numel(), dtype=np.float64)
    for p in tqdm(range(0, ti.numel(), batch_size), desc="naive pairs", disable=not progress, leave=False):
        sl = slice(p, p + batch_size)
        batch = {"text_ids": text_ids[ti[sl]].to(dev), "text_mask": text_mask[ti[sl]].to(dev)}
        batch.update({k: v[vj[sl]].to(dev) for k, v in video_batch.items()})
        logits = model(batch).match_logits
        out[sl] = F.log_softmax(logits.float(), dim=-1)[:, 1].double().cpu().numpy()
    return out


class eval_mode:
    """`with eval_mode(model):` — eval mode (no dropout) inside, the caller's mode restored after."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.was_training = self.model.training
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        self.model.train(self.was_training)
        return False


# --- loading and shared command-line options ---------------------------------------------------------------
def load_model(checkpoint: str | Path, device: str = "cpu"):
    """The ActBERT model of a checkpoint or run folder (`resolve_checkpoint`: the one folder convention)."""
    from actbert.model import ActBERTForPretraining
    from actbert.training.checkpointing import resolve_checkpoint

    return ActBERTForPretraining.from_pretrained(resolve_checkpoint(checkpoint)).to(device)


def load_tokenizer(checkpoint: str | Path, tokenizer_dir: str | Path | None = None):
    """The WordPiece tokenizer saved beside the checkpoint (or in `tokenizer_dir`)."""
    from actbert.data.tokenizer import WordPieceTokenizer
    from actbert.training.checkpointing import resolve_checkpoint

    return WordPieceTokenizer.from_pretrained(Path(tokenizer_dir) if tokenizer_dir else resolve_checkpoint(checkpoint))


def add_common_arguments(parser: argparse.ArgumentParser, what: str = "ActBERT model",
                         store_required: bool = True) -> None:
    from actbert.cli.options import add_device, add_model, add_no_progress, add_out

    g = parser.add_argument_group("model and features")
    add_model(g, what=what)
    g.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the model folder's vocab.txt)")
    g.add_argument("--store", required=store_required, help="feature store root (actbert extract)")
    add_out(g, "run folder for results.json / results.md (and, when fine-tuning, the fine-tuned model in "
               "OUT/model/)")
    g.add_argument("--batch-size", type=int, default=256, help="(text, video) pairs fused per forward pass")
    add_device(g)
    add_no_progress(g)


def run_config(args: argparse.Namespace) -> dict[str, Any]:
    """The JSON-able settings of a run, for results.json."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
            if not callable(v) and (v is None or isinstance(v, (str, int, float, bool, list, Path)))}


def finite_or_raise(scores: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(scores).all():
        bad = np.argwhere(~np.isfinite(scores))[:5].tolist()
        raise FloatingPointError(f"{what}: the model produced non-finite scores at {bad}")
    return scores


ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
