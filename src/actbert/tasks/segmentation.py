"""COIN action segmentation: one label per second (0 = background, else the step id) from ActBERT's tokens.

* Per-second tokens: second `t` covers `[t, t+1)`; its action token is the feature of the clip whose span
  covers the centre `t + 0.5` (of several, the nearest centre; of none — a gap, or past the last clip —
  the nearest clip centre). Longer clips repeat over seconds; the temporal position embedding separates them.
* Windows of `window` s every `stride` s (32 / 16; `window_starts` aligns the last to the end): `window`
  action tokens (padded, masked, for a shorter video), the window's key-frame regions (best box per frame
  first, at most `max_regions`), text `[CLS] [SEP]`. `[ACT]` takes action position 0, hence
  `window + 1 <= max_action_positions` (window <= 63 for the presets).
* A linear classifier (steps + 1 classes) on each second's fused action hidden state; cross-entropy per
  second, `background_weight` scaling background seconds (1.0: the protocol counts every second alike).
  The encoder is fine-tuned (own learning rate) or frozen.
* Evaluation (protocols.md): logits averaged over overlapping windows (`average_window_logits`), argmax;
  frame accuracy over all test seconds (background included) and on non-background seconds
  (`frame_accuracy`), beside an all-background predictor's, so a background-heavy result shows as such.
Details and reasons: docs/tasks-captioning-segmentation.md.
"""
from __future__ import annotations

import argparse
import copy
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from actbert.metrics.segmentation import average_window_logits, frame_accuracy, window_starts
from actbert.tasks import scoring as S
from actbert.tasks.finetuning import (fit, load_task_weights, read_task_checkpoint, save_task_checkpoint,
                                      task_checkpoint_dir)

__all__ = ["SegmentHeadConfig", "SegmentTrainConfig", "SegVideo", "Segmenter", "second_clip_index", "video_windows",
           "train_segmenter", "evaluate_segmentation", "coin_seg_videos", "plot_timeline",
           "add_evaluate_arguments", "run_evaluate", "add_finetune_arguments", "run_finetune"]
TASK = "segmentation"


@dataclass
class SegmentHeadConfig:
    """Classifier and windowing of the segmenter (saved as JSON beside its weights)."""

    num_classes: int = 779  # COIN: 778 steps + background (0)
    window: int = 32
    stride: int = 16
    max_regions: int = 32  # regions per window
    dropout: float = 0.1
    cls_id: int = 101  # text stream [CLS] [SEP]: BERT's ids unless the tokenizer says otherwise
    sep_id: int = 102

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 (background + steps), got {self.num_classes}")
        window_starts(self.window, self.window, self.stride)  # validates window / stride


@dataclass
class SegmentTrainConfig:
    head: SegmentHeadConfig = field(default_factory=SegmentHeadConfig)
    epochs: int = 5
    max_steps: int | None = None  # when set, replaces epochs (the windows are cycled)
    batch_size: int = 16
    lr: float = 1e-3  # classifier
    encoder_lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_frac: float = 0.1
    background_weight: float = 1.0
    freeze_encoder: bool = False
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "cpu"
    progress: bool = True


@dataclass
class SegVideo:
    """A video to segment: its id and ground-truth label per second ([T] int64, 0 = background)."""

    video_id: str
    labels: np.ndarray


def coin_seg_videos(videos, subset: str | None = None) -> list[SegVideo]:
    """`SegVideo`s of `CoinVideo`s (a dict or a list), optionally only one subset (training / testing)."""
    from actbert.data.formats import coin_second_labels

    vs = videos.values() if isinstance(videos, Mapping) else videos
    return [SegVideo(v.video_id, coin_second_labels(v)) for v in vs if subset is None or v.subset == subset]


def _checked(videos, store, what: str) -> list[SegVideo]:
    """`SegVideo`s of `videos`; an empty list, a 0-s video or a video missing from `store` is a named error."""
    out = [v if isinstance(v, SegVideo) else coin_seg_videos([v])[0] for v in videos]
    if not out:
        raise ValueError(f"no {what} video")
    empty = [v.video_id for v in out if len(v.labels) == 0]
    if empty:
        raise ValueError(f"{what} video(s) {empty[:5]} have no second to label (duration 0)")
    missing = sorted({v.video_id for v in out if v.video_id not in store})
    if missing:
        raise KeyError(f"{len(missing)} {what} video(s) are not in the feature store "
                       f"{getattr(store, 'root', store)}: {missing[:5]}")
    return out


def second_clip_index(video, num_seconds: int) -> np.ndarray:
    """[T] index of the clip whose span covers each second's centre (nearest centre when several / none)."""
    times = np.asarray(video.action_times, dtype=np.float64).reshape(-1, 2)
    if len(times) == 0:
        raise ValueError(f"video {video.video_id!r} has no action clip: nothing to segment")
    centre = np.arange(num_seconds) + 0.5
    dist = np.abs(centre[:, None] - times.mean(1)[None])
    covers = (times[None, :, 0] <= centre[:, None]) & (centre[:, None] < times[None, :, 1])
    return np.where(covers, dist, dist + 1e9).argmin(1)  # covering clips first, then the nearest


def video_windows(video, num_seconds: int, head: SegmentHeadConfig, max_frames: int = 64) -> tuple[list[int], list[dict]]:
    """Window starts and inputs (per-second action tokens + the window's regions) of one video."""
    idx = second_clip_index(video, num_seconds)
    starts = window_starts(num_seconds, head.window, head.stride)
    items = []
    for s in starts:
        e = min(num_seconds, s + head.window)
        w = S.window_inputs(video, float(s), float(e), 1, head.max_regions, max_frames)
        w["action"] = np.asarray(video.action, dtype=np.float32)[idx[s:e]]
        items.append(w)
    return starts, items


class Segmenter(nn.Module):
    """ActBERT encoder + per-second step classifier; `predict(video)` labels every second."""

    def __init__(self, encoder: nn.Module, head: SegmentHeadConfig, step_names: dict[int, str] | None = None):
        super().__init__()
        self.step_names: dict[int, str] = dict(step_names or {})  # class id -> step name, saved with the head
        c = encoder.config
        if head.window + 1 > c.max_action_positions:
            raise ValueError(f"window {head.window} + [ACT] exceeds the encoder's max_action_positions "
                             f"{c.max_action_positions}")
        for name in ("cls_id", "sep_id"):
            if not 0 <= getattr(head, name) < c.vocab_size:
                raise ValueError(f"{name} {getattr(head, name)} is outside the vocabulary (size {c.vocab_size})")
        self.encoder, self.head = encoder, head
        self.classifier = nn.Sequential(nn.Dropout(head.dropout), nn.Linear(c.action_hidden, head.num_classes))
        nn.init.normal_(self.classifier[1].weight, 0.0, 0.02)
        nn.init.zeros_(self.classifier[1].bias)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def window_logits(self, items: Sequence[dict]) -> torch.Tensor:
        """[B, window, C] logits of a batch of windows (rows past a short window's end are padding)."""
        n_r = max(1, max(it["region"].shape[0] for it in items))
        vb = S.collate_windows(items, self.head.window, n_r, self.device)
        B = len(items)
        text = torch.tensor([[self.head.cls_id, self.head.sep_id]], device=self.device).expand(B, 2)
        enc = self.encoder
        out = enc.fuse(enc.encode_text(text, torch.ones_like(text)),
                       enc.encode_video(vb["action_feats"], vb["action_mask"], vb["region_feats"], vb["region_loc"],
                                        vb["region_mask"], vb["region_frame"]))
        return self.classifier(enc.action_clips(out.action_hidden))

    @torch.no_grad()
    def predict_logits(self, video, num_seconds: int | None = None, batch_size: int = 16) -> np.ndarray:
        """[T, C] logits averaged over the overlapping windows; T = `num_seconds` or ceil(duration)."""
        T = int(num_seconds if num_seconds is not None else math.ceil(float(video.duration)))
        if T <= 0:
            raise ValueError(f"video {video.video_id!r}: nothing to segment ({T} seconds)")
        starts, items = video_windows(video, T, self.head, self.encoder.config.max_region_frames)
        with S.eval_mode(self):
            logits = [self.window_logits(items[i:i + batch_size]).float().cpu().numpy()
                      for i in range(0, len(items), batch_size)]
        return average_window_logits(list(np.concatenate(logits)), starts, T)

    def predict(self, video, num_seconds: int | None = None, batch_size: int = 16) -> np.ndarray:
        """[T] predicted label per second (0 = background)."""
        return self.predict_logits(video, num_seconds, batch_size).argmax(1).astype(np.int64)

    def save(self, directory: str | Path) -> Path:
        """`segmentation.json` (head + ActBERT config) + `model.safetensors`, atomic writes."""
        names = {str(k): v for k, v in sorted(self.step_names.items())}
        return save_task_checkpoint(directory, TASK, self, {"head": asdict(self.head),
                                                            "actbert": self.encoder.config.to_dict(),
                                                            "step_names": names})

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> "Segmenter":
        from actbert.model import ActBERTModel

        directory = task_checkpoint_dir(directory, TASK)
        meta, enc_cfg = read_task_checkpoint(directory, TASK)
        try:
            head = SegmentHeadConfig(**meta["head"])  # unknown fields: TypeError
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{Path(directory) / (TASK + '.json')}: bad head config ({exc})") from exc
        model = cls(ActBERTModel(enc_cfg), head)
        model.step_names = {int(k): str(v) for k, v in meta.get("step_names", {}).items()}
        load_task_weights(model, directory)
        return model.to(device).eval()


def train_segmenter(model, train_videos: Sequence, store, cfg: SegmentTrainConfig | None = None,
                    tokenizer=None) -> Segmenter:
    """Train a `Segmenter` on a copy of `model`'s encoder (the caller's model is not changed).

    `train_videos` are `SegVideo`s or `CoinVideo`s; `tokenizer` (optional) gives the `[CLS]`/`[SEP]`
    ids. The per-step history is in `segmenter.history`.
    """
    cfg = cfg or SegmentTrainConfig()
    videos = _checked(train_videos, store, "training")
    head = cfg.head
    if tokenizer is not None:
        head = replace(head, cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id)
    top = max(int(v.labels.max()) for v in videos)
    if top >= head.num_classes:
        raise ValueError(f"training labels go up to {top} but the head has {head.num_classes} classes")
    torch.manual_seed(cfg.seed)
    seg = Segmenter(copy.deepcopy(getattr(model, "actbert", model)), head).to(cfg.device)
    items, labels = [], []
    for v in tqdm(videos, desc="windows", disable=not cfg.progress, leave=False):
        starts, its = video_windows(store[v.video_id], len(v.labels), head, seg.encoder.config.max_region_frames)
        for s, it in zip(starts, its):
            lab = np.full(head.window, -100, dtype=np.int64)
            part = v.labels[s:s + head.window]
            lab[:len(part)] = part
            items.append(it)
            labels.append(lab)
    labels_t = torch.from_numpy(np.stack(labels))
    if cfg.freeze_encoder:
        seg.encoder.requires_grad_(False)
    groups = [{"params": list(seg.classifier.parameters()), "lr": cfg.lr}]
    if not cfg.freeze_encoder:
        groups.append({"params": list(seg.encoder.parameters()), "lr": cfg.encoder_lr})
    weight = torch.ones(head.num_classes, device=seg.device)
    weight[0] = cfg.background_weight

    def loss_fn(rows: list[int]) -> torch.Tensor:
        logits = seg.window_logits([items[r] for r in rows])
        return F.cross_entropy(logits.reshape(-1, head.num_classes).float(), labels_t[rows].to(seg.device).reshape(-1),
                               weight=weight, ignore_index=-100)

    seg.history = fit(seg, groups, len(items), cfg, loss_fn, "train segmenter",
                      seg.encoder if cfg.freeze_encoder else None)
    return seg.eval()


def evaluate_segmentation(segmenter: Segmenter, test_videos: Sequence, store, progress: bool = True,
                          batch_size: int = 16) -> dict:
    """Frame accuracy (background included) and non-background accuracy, pooled over `test_videos`.

    Also: the same two numbers for an all-background predictor (``background_only``), and
    ``predictions`` = {video id: [label per second]} (the CLI writes them to their own file).
    """
    videos = _checked(test_videos, store, "test")
    preds = {}
    for v in tqdm(videos, desc="segment", disable=not progress):
        preds[v.video_id] = segmenter.predict(store[v.video_id], len(v.labels), batch_size)
    gts = [v.labels for v in videos]
    out = frame_accuracy([preds[v.video_id] for v in videos], gts)
    bg = frame_accuracy([np.zeros_like(g) for g in gts], gts)
    out["background_only"] = {"frame_acc": bg["frame_acc"], "nonbg_acc": bg["nonbg_acc"]}
    out["window"], out["stride"] = segmenter.head.window, segmenter.head.stride
    out["predictions"] = {k: p.tolist() for k, p in preds.items()}
    return out


def plot_timeline(pred, gt, step_names=None, path="timeline.png", title: str | None = None) -> Path:
    """PNG of the predicted segmentation (bottom) against the ground truth (top), one colour per step.

    `step_names`: {step id: name} or a list indexed by id (else "step <id>"). Drawn with matplotlib's Agg
    canvas directly (no pyplot), so the caller's backend and figures are left alone.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from actbert.utils import atomic_path

    pred, gt = np.asarray(pred, dtype=np.int64), np.asarray(gt, dtype=np.int64)
    if pred.shape != gt.shape or pred.ndim != 1:
        raise ValueError(f"pred and gt must be 1-D and of equal length, got {pred.shape} and {gt.shape}")
    classes = sorted((set(gt.tolist()) | set(pred.tolist())) - {0})
    colour = {c: matplotlib.colormaps["tab20"](i % 20) for i, c in enumerate(classes)}
    colour[0] = (0.88, 0.88, 0.88, 1.0)
    names = dict(step_names) if isinstance(step_names, Mapping) else dict(enumerate(step_names or []))
    names[0] = "background"
    fig = Figure(figsize=(10, 2.2 + 0.18 * len(classes)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for row, seq in enumerate((gt, pred)):
        change = np.flatnonzero(np.diff(seq)) + 1
        for s, e in zip(np.r_[0, change], np.r_[change, len(seq)]):
            ax.broken_barh([(s, e - s)], (1 - row + 0.1, 0.8), facecolors=colour[int(seq[s])])
    ax.set_yticks([1.5, 0.5], ["truth", "prediction"])
    ax.set_xlim(0, len(gt))
    ax.set_xlabel("seconds")
    ax.set_title(title or f"frame accuracy {100.0 * float((pred == gt).mean()):.1f} %")
    ax.legend(handles=[Patch(color=colour[c], label=str(names.get(c, f"step {c}"))) for c in [0, *classes]],
              loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=3, fontsize=7, frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return Path(path)


# --- command line ---------------------------------------------------------------------------------------
def add_evaluate_arguments(parser: argparse.ArgumentParser,
                           what: str = "fine-tuned segmentation model (`actbert finetune segmentation --out`)") -> None:
    parser.description = ("COIN action segmentation with a fine-tuned segmenter (`actbert finetune segmentation` "
                          "makes one): frame accuracy with background and on non-background seconds.")
    S.add_common_arguments(parser, what=what)
    parser.set_defaults(batch_size=16)
    parser.add_argument("--annotations", required=True, help="COIN.json (taxonomy csvs beside it name the steps)")
    parser.add_argument("--subset", default="testing", help="COIN subset to evaluate on")
    parser.add_argument("--plots", type=int, default=3, help="timeline PNGs of the first N test videos")
    parser.add_argument("--limit", type=int, default=None, help="only the first N videos (a smoke test, labelled)")
    parser.add_argument("--skip-missing", action="store_true",
                        help="leave out videos absent from the store (and say how many) instead of failing")
    parser.add_argument("--dataset", default="coin", help="dataset name written to results.json")


def _coin(args, subset: str):
    from actbert.data.formats import read_coin, read_coin_taxonomy
    from actbert.data.formats.coin import ACTION_CSV

    folder = Path(args.annotations).parent
    tax = read_coin_taxonomy(folder) if (folder / ACTION_CSV).is_file() else None
    videos = read_coin(args.annotations, tax)
    names = {k: s.label for k, s in tax.steps.items()} if tax else \
        {s.step_id: s.label for v in videos.values() for s in v.segments if s.label}
    return [v for v in videos.values() if v.subset == subset], names, videos, tax


def _present(videos, store, args, what: str):
    absent = [v.video_id for v in videos if v.video_id not in store]
    if absent and not args.skip_missing:
        raise KeyError(f"{len(absent)} {what} video(s) of {args.annotations} are not in the feature store "
                       f"{args.store}: {absent[:5]} (use --skip-missing to leave them out)")
    return [v for v in videos if v.video_id in store], len(absent)


def _evaluate_and_write(seg: Segmenter, store, args, checkpoint: str, extra_config=None) -> dict:
    from actbert.tasks.results import write_results
    from actbert.utils import atomic_write_json

    test, names, _, _ = _coin(args, args.subset)
    test, n_missing = _present(test, store, args, args.subset)
    split = args.subset
    if args.limit:
        test, split = test[:args.limit], f"{split}[:{args.limit}]"
    m = evaluate_segmentation(seg, test, store, not args.no_progress, args.batch_size)
    preds = m.pop("predictions")
    m["missing_from_store"] = n_missing
    out = Path(args.out)
    atomic_write_json(out / "predictions.json", preds)
    for v in coin_seg_videos(test[:args.plots]):
        plot_timeline(preds[v.video_id], v.labels, names, out / f"timeline_{v.video_id}.png", f"{v.video_id}")
    protocol = (f"COIN frame accuracy per second, background included + non-background accuracy; windows "
                f"{seg.head.window} s stride {seg.head.stride} s, logits averaged over overlaps")
    write_results(out, "segmentation", args.dataset, protocol, split, m, checkpoint,
                  {**S.run_config(args), **(extra_config or {})})
    print(f"{args.dataset} {split}: frame accuracy {m['frame_acc']:.2f} %, non-background {m['nonbg_acc']:.2f} % "
          f"(all-background: {m['background_only']['frame_acc']:.2f} / 0.00 %) -> {out}")
    return m


def run_evaluate(args: argparse.Namespace) -> int:
    from actbert.data.store import FeatureStore

    _evaluate_and_write(Segmenter.load(args.model, args.device), FeatureStore(args.store), args,
                        str(args.model))
    return 0


def add_finetune_arguments(parser: argparse.ArgumentParser) -> None:
    add_evaluate_arguments(parser, what="ActBERT model to fine-tune")
    parser.description = ("Train the per-second step classifier over ActBERT on COIN `training`, then evaluate "
                          "on --subset (testing).")
    g = parser.add_argument_group("fine-tuning")
    g.add_argument("--train-subset", default="training", help="COIN subset to fine-tune on")
    g.add_argument("--num-classes", type=int, default=None,
                   help="steps + 1 (default: largest step id of the taxonomy, else of the json, + 1)")
    for flag, typ, default, text in (
            ("--window", int, 32, "window length in seconds (at most 63: one action token per second)"),
            ("--stride", int, 16, "seconds between window starts; overlapping logits are averaged"),
            ("--max-regions", int, 32, "regions per window (best box of each key frame first)"),
            ("--epochs", int, 5, "passes over the training windows"),
            ("--max-steps", int, None, "stop after this many optimizer steps (default: all epochs)"),
            ("--train-batch-size", int, 16, "windows per training step"),
            ("--lr", float, 1e-3, "learning rate of the classifier"),
            ("--encoder-lr", float, 5e-5, "learning rate of the ActBERT encoder (when not frozen)"),
            ("--background-weight", float, 1.0, "cross-entropy weight of background seconds")):
        g.add_argument(flag, type=typ, default=default, help=text)
    g.add_argument("--freeze-encoder", action="store_true", help="train only the classifier; keep ActBERT's weights fixed")
    g.add_argument("--seed", type=int, default=0, help="seed of data order and initialisation")


def run_finetune(args: argparse.Namespace) -> int:
    from actbert.data.store import FeatureStore
    from actbert.utils import atomic_write_json, seed_everything

    seed_everything(args.seed)
    store = FeatureStore(args.store)
    train, step_names, everything, tax = _coin(args, args.train_subset)
    train, n_missing = _present(train, store, args, args.train_subset)
    if not train:
        raise ValueError(f"{args.annotations}: no {args.train_subset!r} video with features in {args.store}")
    top = max(tax.steps) if tax else max((s.step_id for v in everything.values() for s in v.segments), default=0)
    head = SegmentHeadConfig(num_classes=args.num_classes or top + 1, window=args.window, stride=args.stride,
                             max_regions=args.max_regions)
    cfg = SegmentTrainConfig(head=head, epochs=args.epochs, max_steps=args.max_steps, batch_size=args.train_batch_size,
                             lr=args.lr, encoder_lr=args.encoder_lr, background_weight=args.background_weight,
                             freeze_encoder=args.freeze_encoder, seed=args.seed, device=args.device,
                             progress=not args.no_progress)
    try:
        tokenizer = S.load_tokenizer(args.model, args.tokenizer)
    except FileNotFoundError:
        tokenizer = None  # BERT's [CLS]/[SEP] ids (the head's defaults)
    seg = train_segmenter(S.load_model(args.model, args.device), train, store, cfg, tokenizer)
    seg.step_names = step_names  # saved with the head: Pipeline.segment answers with these names
    model_dir = seg.save(Path(args.out) / "model")
    atomic_write_json(model_dir / "train_history.json", seg.history)
    _evaluate_and_write(seg, store, args, str(model_dir),
                        {"finetuned_from": str(args.model), "train_videos": len(train),
                         "train_missing_from_store": n_missing, "steps": len(seg.history),
                         "train": {k: v for k, v in asdict(cfg).items() if k != "head"}, "head": asdict(seg.head)})
    return 0
