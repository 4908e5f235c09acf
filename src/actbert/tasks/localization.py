"""CrossTask step localization, zero-shot: score every (second, step) with the matching head, decode in order.

For second `t` of a video the visual input is the window `[t - w, t + 1 + w)` seconds: the action tokens
of the clips overlapping it and the regions of its key frames (`scoring.window_inputs`). Every window of
a video is encoded once, every step description of a task once; the T×K pairs are fused from those
cached states. `order_constrained_decode` then gives each of the K steps exactly one second, in the
task's order; `crosstask_recall` pools hits over a task's videos and averages over tasks. A random
baseline (uniform scores, same decoder, mean over seeds) is reported beside the model.

Split (CrossTask's rule, `data.formats.crosstask_split`): videos of `videos_val.csv` dropped, 30 annotated
videos per primary task drawn with a seeded RandomState for training, the rest test. The model is not
trained on the training part (zero-shot); it exists so the numbers compare with the published ones.
"""
from __future__ import annotations

import argparse
import math
import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from actbert.tasks import scoring as S

__all__ = ["LocVideo", "step_scores", "evaluate_localization", "crosstask_videos", "add_evaluate_arguments",
           "run_evaluate", "add_finetune_arguments", "run_finetune"]


@dataclass(frozen=True)
class LocVideo:
    """One video to localize: its task's ordered steps and the ground truth `(step 0-based, start, end)`."""

    task_id: str
    video_id: str
    steps: tuple[str, ...]
    intervals: tuple[tuple[int, float, float], ...]


def crosstask_videos(release, split: str = "test", n_train: int = 30, seed: int = 0,
                     tasks: Sequence[str] | None = None) -> list[LocVideo]:
    """`LocVideo`s of one side of the seeded split, primary tasks only (the only annotated ones)."""
    from actbert.data.formats import crosstask_split

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    side = getattr(crosstask_split(release, n_train=n_train, seed=seed), split)
    wanted = list(tasks) if tasks else release.primary_tasks
    unknown = [t for t in wanted if t not in release.tasks]
    if unknown:
        raise KeyError(f"unknown CrossTask task id(s) {unknown}")
    out = []
    for tid in wanted:
        task = release.tasks[tid]
        for vid in side.get(tid, []):
            ann = release.annotations.get((tid, vid))
            if ann is None:
                continue  # a primary video without annotation csv cannot be scored
            out.append(LocVideo(tid, vid, task.steps, tuple((a.step - 1, a.start, a.end) for a in ann)))
    return out


def step_scores(model, text_state, video, window: int = 1, batch_size: int = 256) -> np.ndarray:
    """`[T, K]` log P(matched) of each second of `video` (a `VideoFeatures`) with each of the K steps.

    `text_state` holds the K step descriptions (`scoring.encode_texts`); T = ceil(duration) seconds.
    """
    T = max(1, int(math.ceil(float(video.duration))))
    items = [S.window_inputs(video, t - window, t + 1 + window, model.config.max_actions, model.config.max_regions,
                             model.config.max_region_frames) for t in range(T)]
    vstate = S.encode_windows(model, items, batch_size)
    K = len(text_state)
    sec, step = np.divmod(np.arange(T * K), K)
    return S.score_pairs(model, text_state, vstate, step, sec, batch_size).reshape(T, K)


def evaluate_localization(model, tokenizer, videos: Sequence[LocVideo], store, window: int = 1,
                          batch_size: int = 256, baseline_seeds: int = 5, progress: bool = True) -> dict:
    """Average recall (percent) of the model and of the random baseline, with per-task tables.

    Videos shorter than their task's step count (fewer seconds than steps) cannot be decoded and are
    listed in ``skipped``; they are left out of both the model's and the baseline's recall.
    """
    from actbert.metrics.localization import crosstask_recall, order_constrained_decode

    if not videos:
        raise ValueError("no video to localize")
    missing = sorted({v.video_id for v in videos if v.video_id not in store})
    if missing:
        raise KeyError(f"{len(missing)} CrossTask video(s) are not in the feature store "
                       f"{getattr(store, 'root', store)}: {missing[:5]}")
    pred: dict = {}
    base: list[dict] = [{} for _ in range(baseline_seeds)]
    gt: dict = {}
    skipped = []
    text_cache: dict = {}
    with S.eval_mode(model):
        for v in tqdm(videos, desc="localize", disable=not progress):
            feats = store[v.video_id]
            T = max(1, int(math.ceil(float(feats.duration))))
            if T < len(v.steps):
                skipped.append({"video": v.video_id, "task": v.task_id, "seconds": T, "steps": len(v.steps)})
                continue
            if v.steps not in text_cache:
                ids, mask = S.tokenize(tokenizer, list(v.steps), model.config.max_text_len)
                text_cache = {v.steps: S.encode_texts(model, ids, mask, batch_size)}  # videos come grouped by task
            scores = S.finite_or_raise(step_scores(model, text_cache[v.steps], feats, window, batch_size),
                                       f"step scores of video {v.video_id!r}")
            pred.setdefault(v.task_id, {})[v.video_id] = order_constrained_decode(scores)
            for s in range(baseline_seeds):
                rng = np.random.default_rng([s, zlib.crc32(v.video_id.encode())])
                base[s].setdefault(v.task_id, {})[v.video_id] = order_constrained_decode(rng.random(scores.shape))
            gt.setdefault(v.task_id, {})[v.video_id] = list(v.intervals)
    if not gt:
        raise ValueError(f"all {len(videos)} videos were shorter than their task's number of steps")
    model_r = crosstask_recall(pred, gt)
    base_r = [crosstask_recall(b, gt)["avg_recall"] for b in base]
    per_video = []  # hits per video, for intervals over videos (metrics.bootstrap, grouped by task)
    for task, videos_gt in gt.items():
        for vid, truth in videos_gt.items():
            one = [crosstask_recall({task: {vid: p[task][vid]}}, {task: {vid: truth}})["per_task"][task]
                   for p in (pred, *base)]
            per_video.append({"task": task, "video": vid, "hits": one[0]["hits"], "steps": one[0]["steps"],
                              "baseline_hits": float(np.mean([r["hits"] for r in one[1:]]))})
    return {"avg_recall": model_r["avg_recall"], "per_task": model_r["per_task"], "n_tasks": model_r["n_tasks"],
            "n_videos": model_r["n_videos"], "unit": "percent", "window_seconds": window,
            "random_baseline": {"avg_recall": float(np.mean(base_r)), "std": float(np.std(base_r)),
                                "seeds": baseline_seeds},
            "per_video": per_video, "skipped": skipped}


HAS_FINETUNE = False  # `actbert finetune` explains and exits 2, whatever options it is given


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("CrossTask step localization (zero-shot): matching-head score of every (second, step), "
                          "order-constrained decoding, average recall over tasks; a random baseline beside it.")
    S.add_common_arguments(parser)
    parser.add_argument("--crosstask", required=True, help="CrossTask release folder (tasks_primary.txt, videos.csv, "
                                                           "videos_val.csv, annotations/)")
    parser.add_argument("--split", choices=("test", "train"), default="test", help="CrossTask split to evaluate (test = the seeded split rule's test videos)")
    parser.add_argument("--n-train", type=int, default=30, help="training videos per primary task (split rule)")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the split rule's 30 random training videos per task")
    parser.add_argument("--window", type=int, default=1, help="second t sees [t - w, t + 1 + w)")
    parser.add_argument("--tasks", nargs="*", default=None, help="task ids (default: every primary task)")
    parser.add_argument("--baseline-seeds", type=int, default=5, help="random-scorer baseline: number of seeds averaged")
    parser.add_argument("--skip-missing", action="store_true",
                        help="leave out videos absent from the store (and say how many) instead of failing")
    parser.add_argument("--dataset", default="crosstask", help="dataset name written to results.json")


def run_evaluate(args: argparse.Namespace) -> int:
    from actbert.data.formats import read_crosstask
    from actbert.data.store import FeatureStore
    from actbert.tasks.results import write_results

    release = read_crosstask(args.crosstask)
    videos = crosstask_videos(release, args.split, args.n_train, args.split_seed, args.tasks)
    store = FeatureStore(args.store)
    absent = [v.video_id for v in videos if v.video_id not in store]
    if absent and args.skip_missing:
        videos = [v for v in videos if v.video_id in store]
    model = S.load_model(args.model, args.device)
    tokenizer = S.load_tokenizer(args.model, args.tokenizer)
    m = evaluate_localization(model, tokenizer, videos, store, args.window, args.batch_size, args.baseline_seeds,
                              not args.no_progress)
    m["missing_from_store"] = len(absent) if args.skip_missing else 0
    protocol = (f"CrossTask average recall, order-constrained DP, zero-shot; split: videos_val dropped, "
                f"{args.n_train} train videos per task (seed {args.split_seed})")
    write_results(args.out, "localization", args.dataset, protocol, args.split, m, str(args.model),
                  S.run_config(args))
    print(f"{args.dataset} {args.split}: average recall {m['avg_recall']:.2f} % over {m['n_tasks']} tasks "
          f"(random {m['random_baseline']['avg_recall']:.2f} %) -> {args.out}")
    return 0


def add_finetune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("CrossTask localization is evaluated zero-shot, as in the paper: there is no "
                          "fine-tuning step. Evaluate a pre-trained checkpoint with `actbert evaluate localization`.")


def run_finetune(args: argparse.Namespace) -> int:
    import sys

    print("actbert finetune localization: zero-shot task, nothing to fine-tune; "
          "use `actbert evaluate localization`", file=sys.stderr)
    return 2
