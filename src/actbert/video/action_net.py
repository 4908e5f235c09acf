"""Training the action network on (clip, verb) pairs mined from narration: the paper's action-embedding step.

Each narration line ``[start, end, text]`` of a video whose text contains a kept verb (``vocab.label(text)``)
becomes a training sample; lines without one are skipped and counted, never given a made-up label. The
network (see :mod:`actbert.video.action_models`) is trained with softmax cross-entropy and AdamW on clips
taken from inside each narration window, with temporal jitter, random crops and (optionally) horizontal
flips as augmentation, and its accuracy on clips of held-out *videos* is reported.

Architectures, weight loading and save / load live in :mod:`actbert.video.action_models` and are re-exported
here, so ``from actbert.video.action_net import build_action_net, train_action_net`` is the public entry.
"""
from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from actbert.video.action_models import (ARCHS, ActionNet, ActionNetConfig, Tiny3D, build_action_net,
                                         load_action_net, load_weights, save_action_net)
from actbert.video.decode import DecodeSpec, VideoDecodeError, probe, read_clip

log = logging.getLogger(__name__)

__all__ = ["ActionSample", "ActionTrainConfig", "TrainReport", "build_action_samples", "train_action_net",
           "ARCHS", "ActionNet", "ActionNetConfig", "Tiny3D", "build_action_net", "load_weights",
           "save_action_net", "load_action_net"]


@dataclass(frozen=True)
class ActionSample:
    """One labelled narration window: clips for training are taken from ``[start, end]`` of ``path``."""

    path: str
    start: float
    end: float
    label: int
    video_id: str = ""


@dataclass
class ActionTrainConfig:
    """Training settings; ``None`` input settings fall back to the architecture's defaults (``ARCHS``)."""

    arch: str = "r3d_18"
    weights: str | None = None          # local file or "kinetics" (see action_models.load_weights)
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.0
    held_out_fraction: float = 0.1      # of the videos (clips of one video never straddle the split)
    seed: int = 0
    clip_frames: int | None = None
    fps: float | None = None
    resize: int | None = None
    crop: int | None = None
    hflip: bool = True                  # turn off when the label depends on left/right (e.g. "swipe left")
    max_window_s: float | None = None   # decode at most this much of a long window (default 2 clip lengths)
    cache_max_bytes: int = 2 << 30      # decode every window once into RAM when they fit; else decode per step
    num_workers: int = 0
    device: str | None = None           # default: cuda when available
    verbs: list[str] = field(default_factory=list)
    progress: bool = True


@dataclass
class TrainReport:
    """What :func:`train_action_net` did; stored on ``net.report`` and in the saved config."""

    train_clips: int = 0
    held_out_clips: int = 0
    train_accuracy: float = float("nan")     # last epoch, on augmented training clips
    held_out_accuracy: float = float("nan")  # centre clips of held-out videos, after the last epoch
    history: list[dict] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) of unreadable videos
    seconds: float = 0.0


def _lines(cap) -> list[tuple[float, float, str]]:
    """Caption lines of one video: HowTo100M json ``{"start", "end", "text"}`` lists, or objects with
    ``.start/.end/.text`` (what ``actbert.data.formats.howto100m.read_captions`` returns)."""
    if isinstance(cap, Mapping):
        return [(float(a), float(b), str(t)) for a, b, t in zip(cap["start"], cap["end"], cap["text"])]
    return [(float(c.start), float(c.end), str(c.text)) for c in cap]


def build_action_samples(captions: Mapping[str, object], vocab, videos: Mapping[str, str | Path]
                         ) -> tuple[list[ActionSample], dict[str, int]]:
    """Narration captions + verb vocabulary -> labelled samples (one per line with a kept verb).

    ``captions``: ``{video_id: {"start": [...], "end": [...], "text": [...]}}`` or ``{video_id: [Caption]}``;
    ``vocab``: an ``ActionVocab`` (``label_many`` is used when present: spaCy is slow one text at a time);
    ``videos`` maps video id -> file. Returns the samples and counts of what was skipped: ``no_verb`` (no
    kept verb in the line), ``no_video`` (lines of videos without a file), ``bad_time`` (end <= start).
    """
    skipped = {"no_verb": 0, "no_video": 0, "bad_time": 0}
    rows: list[tuple[str, float, float, str]] = []
    for vid, cap in captions.items():
        lines = _lines(cap)
        if vid not in videos:
            skipped["no_video"] += len(lines)
            continue
        for s, e, text in lines:
            if not e > s:
                skipped["bad_time"] += 1
            else:
                rows.append((vid, s, e, text))
    texts = [r[3] for r in rows]
    labels = vocab.label_many(texts) if hasattr(vocab, "label_many") else [vocab.label(t) for t in texts]
    samples: list[ActionSample] = []
    for (vid, s, e, _), label in zip(rows, labels):
        if label is None:
            skipped["no_verb"] += 1
        else:
            samples.append(ActionSample(str(videos[vid]), s, e, int(label), vid))
    return samples, skipped


def _window(sample: ActionSample, duration: float, spec: DecodeSpec, max_window: float) -> tuple[float, float]:
    """The span to decode for a sample: at least one clip long, at most ``max_window``, inside the video."""
    length = spec.clip_seconds
    s, e = sample.start, min(sample.end, duration) if duration > 0 else sample.end
    mid = (s + e) / 2
    span = min(max(e - s, length), max(max_window, length))
    s = mid - span / 2
    if duration > 0:
        s = min(s, duration - span)
    s = max(0.0, s)
    return s, s + span


class _Clips(torch.utils.data.Dataset):
    """Window frames (cached arrays or decoded on demand) -> augmented ``[T, crop, crop, 3]`` uint8 clips."""

    def __init__(self, items, spec: DecodeSpec, train: bool, hflip: bool, cache: list | None, seed: int):
        self.items, self.spec, self.train, self.hflip, self.cache = items, spec, train, hflip, cache
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.items)

    def window_frames(self, i: int) -> np.ndarray | None:
        if self.cache is not None:
            return self.cache[i]
        sample, s, e, n = self.items[i]
        try:
            return read_clip(sample.path, s, e, self.spec, num_frames=n, size=self.spec.resize)
        except VideoDecodeError as exc:
            log.warning("skipping training clip: %s", exc)
            return None

    def __getitem__(self, i: int):
        frames = self.window_frames(i)
        if frames is None:
            return None
        t, crop, size = self.spec.clip_frames, self.spec.crop, frames.shape[1]
        if self.train:  # temporal jitter, random crop, optional flip
            o = self.rng.randint(0, len(frames) - t)
            y, x = self.rng.randint(0, size - crop), self.rng.randint(0, size - crop)
        else:
            o, y = (len(frames) - t) // 2, (size - crop) // 2
            x = y
        clip = frames[o:o + t, y:y + crop, x:x + crop]
        if self.train and self.hflip and self.rng.random() < 0.5:
            clip = clip[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(clip)), self.items[i][0].label


def _seed_worker(worker_id: int) -> None:
    """Give each DataLoader worker its own augmentation stream (forked workers would share one)."""
    info = torch.utils.data.get_worker_info()
    info.dataset.rng.seed(info.seed)


def _collate(batch):
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    return torch.stack([b[0] for b in batch]), torch.tensor([b[1] for b in batch])


def _split(samples: list[ActionSample], fraction: float, seed: int):
    """Held-out split by video (by sample when there is a single video)."""
    if fraction <= 0 or len(samples) < 2:
        return samples, []
    keys = sorted({s.video_id or s.path for s in samples})
    rng = random.Random(seed)
    if len(keys) >= 2:
        rng.shuffle(keys)
        held = set(keys[:max(1, round(fraction * len(keys)))])
        return ([s for s in samples if (s.video_id or s.path) not in held],
                [s for s in samples if (s.video_id or s.path) in held])
    idx = list(range(len(samples)))
    rng.shuffle(idx)
    n = max(1, round(fraction * len(samples)))
    return [samples[i] for i in idx[n:]], [samples[i] for i in idx[:n]]


@torch.no_grad()
def _accuracy(net: ActionNet, loader) -> float:
    net.eval()
    right = total = 0
    for batch in loader:
        if batch is None:
            continue
        x, y = batch
        pred = net(net.preprocess(x)).argmax(1).cpu()
        right += int((pred == y).sum())
        total += len(y)
    return right / total if total else float("nan")


def train_action_net(samples: Sequence[ActionSample], num_classes: int, cfg: ActionTrainConfig | None = None
                     ) -> ActionNet:
    """Train an action network on labelled narration windows; returns it in eval mode with ``net.report``.

    Videos that cannot be read are reported (``report.failures``) and their samples skipped.
    """
    cfg = cfg or ActionTrainConfig()
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    net = build_action_net(cfg.arch, num_classes, cfg.weights, clip_frames=cfg.clip_frames, fps=cfg.fps,
                           resize=cfg.resize, crop=cfg.crop, verbs=list(cfg.verbs) or None).to(device)
    c = net.config
    spec = DecodeSpec(fps=c.fps, clip_frames=c.clip_frames, resize=c.resize, crop=c.crop)
    report = TrainReport()

    durations: dict[str, float] = {}
    for path in sorted({s.path for s in samples}):
        try:
            durations[path] = probe(path).duration
        except VideoDecodeError as exc:
            report.failures.append((exc.path, exc.reason))
            log.warning("skipping video: %s", exc)
    good = [s for s in samples if s.path in durations]
    train, held = _split(good, cfg.held_out_fraction, cfg.seed)
    max_window = cfg.max_window_s or 2 * spec.clip_seconds

    def items_of(subset):
        out = []
        for s in subset:
            a, b = _window(s, durations[s.path], spec, max_window)
            out.append((s, a, b, max(spec.clip_frames, round((b - a) * spec.fps))))
        return out

    train_items, held_items = items_of(train), items_of(held)
    nbytes = sum(n for *_, n in train_items + held_items) * spec.resize ** 2 * 3
    caches: list[list | None] = [None, None]
    if nbytes <= cfg.cache_max_bytes:  # decode each window once; epochs then cost only the network
        for k, items in enumerate((train_items, held_items)):
            cache, keep = [], []
            for it in tqdm(items, desc="decoding clips", disable=not cfg.progress or not items, leave=False):
                frames = _Clips([it], spec, False, False, None, 0).window_frames(0)
                if frames is not None:
                    cache.append(frames)
                    keep.append(it)
            items[:] = keep
            caches[k] = cache
    report.train_clips, report.held_out_clips = len(train_items), len(held_items)
    if not train_items:
        raise ValueError("no readable training clips (check the captions, the vocabulary and the video files)")

    def loader(items, cache, training):
        ds = _Clips(items, spec, training, cfg.hflip, cache, cfg.seed)
        return torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, shuffle=training,
                                           num_workers=cfg.num_workers, collate_fn=_collate,
                                           worker_init_fn=_seed_worker if cfg.num_workers else None,
                                           generator=torch.Generator().manual_seed(cfg.seed))

    train_loader, held_loader = loader(train_items, caches[0], True), loader(held_items, caches[1], False)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(train_items) / cfg.batch_size)
    # Linear warm-up over the first 10 % of steps, then cosine decay: stable from scratch and from Kinetics.
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, i / max(1, steps)))))
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    bar = tqdm(total=steps, desc=f"train {cfg.arch}", unit="step", disable=not cfg.progress)
    for epoch in range(cfg.epochs):
        net.train()
        loss_sum = right = seen = 0
        for batch in train_loader:
            if batch is None:
                continue
            x, y = batch
            y = y.to(device)
            logits = net(net.preprocess(x))
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(y)
            right += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{right / seen:.2f}")
        held_acc = _accuracy(net, held_loader) if held_items else float("nan")
        report.history.append({"epoch": epoch + 1, "loss": loss_sum / max(seen, 1),
                               "train_accuracy": right / max(seen, 1), "held_out_accuracy": held_acc})
        log.info("epoch %d: %s", epoch + 1, report.history[-1])
    bar.close()
    report.train_accuracy = report.history[-1]["train_accuracy"]
    report.held_out_accuracy = report.history[-1]["held_out_accuracy"]
    report.seconds = time.perf_counter() - t0
    net.config.training = {"train_clips": report.train_clips, "held_out_clips": report.held_out_clips,
                           "train_accuracy": report.train_accuracy, "held_out_accuracy": report.held_out_accuracy,
                           "epochs": cfg.epochs, "weights": str(cfg.weights) if cfg.weights else None,
                           "failures": [list(f) for f in report.failures]}
    net.report = report
    return net.eval()
