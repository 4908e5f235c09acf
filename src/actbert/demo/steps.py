"""The demo's pipeline stages, each a function whose result is cached on disk (resumable reruns).

A stage's cache key hashes its settings together with the keys of the stages it reads from, so a
changed budget or seed redoes that stage and everything downstream, while a plain rerun (or a rerun
after a crash) skips whatever finished. The marker `<out>/stages/<name>.json` is written last and
atomically: its presence means the stage's files are complete. Every stage reseeds torch / numpy first,
so its result does not depend on which stages ran earlier in the same process (a cached rerun gives
the same numbers as a fresh one).
"""
from __future__ import annotations

import functools
import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from actbert.demo.config import SCRATCH, VARIANTS, DemoConfig
from actbert.utils import atomic_write_json, atomic_write_text, seed_everything


@dataclass
class StageRecord:
    name: str
    seconds: float        # wall clock of this run (0 when cached)
    cpu_seconds: float    # process CPU time: on a shared machine, the figure that shows the work itself
    cached: bool
    first_seconds: float  # wall clock of the run that produced the cached result


@dataclass
class Stages:
    """Runs stages with the on-disk cache; `records` is the per-stage timing table."""

    out: Path
    seed: int
    force: bool = False
    progress: bool = True
    keys: dict[str, str] = field(default_factory=dict)
    records: list[StageRecord] = field(default_factory=list)

    def run(self, name: str, settings: dict, upstream: list[str], fn: Callable[[], dict]) -> dict:
        key, cached = self._lookup(name, settings, upstream)
        if cached is not None:
            return cached
        self._say(f"[demo] {name} ...")
        result, wall, cpu = _timed(fn, self.seed)
        return self._finish(name, key, result, wall, cpu)

    def run_parallel(self, jobs: list[tuple[str, dict, list[str], Callable[[], dict]]], processes: int,
                     threads: int) -> list[dict]:
        """Independent stages (name, settings, upstream, fn), `processes` at a time in spawned processes.

        Each process runs torch on `threads` threads, which is part of every stage's key (thread counts
        change float reductions, so the same settings give the same numbers only with the same count).
        `fn(progress=...)` must be picklable (a `functools.partial` of a module-level function); it is
        told to show progress bars only when it runs alone in this process. A stage's marker is written as
        soon as it finishes, so a failure in one keeps the others' results.
        """
        keys, results, todo = {}, {}, []
        for name, settings, upstream, fn in jobs:
            keys[name], results[name] = self._lookup(name, {**settings, "threads": threads}, upstream)
            if results[name] is None:
                todo.append((name, fn))
        alone = processes <= 1 or len(todo) <= 1
        todo = [(name, functools.partial(fn, progress=self.progress and alone)) for name, fn in todo]
        if alone:
            for name, fn in todo:
                self._say(f"[demo] {name} ...")
                previous = torch.get_num_threads()
                torch.set_num_threads(threads)
                try:
                    results[name] = self._finish(name, keys[name], *_timed(fn, self.seed))
                finally:
                    torch.set_num_threads(previous)
        elif todo:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            self._say(f"[demo] {', '.join(n for n, _ in todo)} ... ({processes} processes x {threads} thread(s))")
            # spawn, not fork: a forked child of a process whose OpenMP pool already ran can deadlock
            with ProcessPoolExecutor(min(processes, len(todo)), mp_context=multiprocessing.get_context("spawn")) as pool:
                running = {pool.submit(_stage_process, fn, self.seed, threads): name for name, fn in todo}
                failed: list[tuple[str, BaseException]] = []
                for future in as_completed(running):  # every stage runs to its end; successes are kept
                    name = running[future]
                    try:
                        outcome = future.result()
                    except Exception as exc:  # noqa: BLE001 - re-raised below, after the others finish
                        failed.append((name, exc))
                        self._say(f"[demo] {name}: FAILED ({exc})")
                        continue
                    results[name] = self._finish(name, keys[name], *outcome)
            if failed:
                name, exc = failed[0]
                exc.add_note(f"demo stage {name!r} failed; the stages that finished were kept "
                             f"({', '.join(n for n, _ in todo if results[n] is not None) or 'none'})")
                raise exc
        return [results[name] for name, *_ in jobs]

    def _lookup(self, name: str, settings: dict, upstream: list[str]) -> tuple[str, dict | None]:
        """The stage's key, and its cached result when the marker holds that key (else None)."""
        key = hashlib.sha1(json.dumps({"settings": settings, "seed": self.seed,
                                       "up": [self.keys[u] for u in upstream]},
                                      sort_keys=True, default=str).encode()).hexdigest()
        self.keys[name] = key
        marker = self.out / "stages" / f"{name}.json"
        if not self.force and marker.is_file():
            saved = json.loads(marker.read_text())
            if saved.get("key") == key:
                self.records.append(StageRecord(name, 0.0, 0.0, True, saved.get("seconds", 0.0)))
                self._say(f"[demo] {name}: cached")
                return key, saved["result"]
        return key, None

    def _finish(self, name: str, key: str, result: dict, wall: float, cpu: float) -> dict:
        marker = self.out / "stages" / f"{name}.json"
        atomic_write_json(marker, {"key": key, "seconds": wall, "cpu_seconds": cpu, "result": result})
        self.records.append(StageRecord(name, wall, cpu, False, wall))
        self._say(f"[demo] {name}: {wall:.1f} s")
        return result

    def _say(self, text: str) -> None:
        if self.progress:
            print(text, flush=True)


def _timed(fn: Callable[[], dict], seed: int) -> tuple[dict, float, float]:
    seed_everything(seed)
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - t0, time.process_time() - c0


def _stage_process(fn: Callable[[], dict], seed: int, threads: int) -> tuple[dict, float, float]:
    """Body of a stage in a worker process (`Stages.run_parallel`)."""
    torch.set_num_threads(threads)
    return _timed(fn, seed)


def fresh_dir(path: Path) -> Path:
    """An empty folder for a stage that (re)runs: leftovers of another key would mix two runs."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# --- stages ------------------------------------------------------------------------------------------------
def make_world(out: Path, cfg: DemoConfig, seed: int, progress: bool) -> dict:
    from actbert.world import generate_world, get_world_config, load_world

    sizes = {"num_videos": cfg.world_videos} if cfg.world_videos else {}
    summary = generate_world(out / "world", get_world_config(cfg.world_preset, **sizes), seed=seed, progress=progress)
    world = load_world(out / "world")
    return {"preset": cfg.world_preset, "videos": len(world.videos), "train": len(world.split("train")),
            "test": len(world.split("test")), "seconds_of_video": round(sum(v.duration for v in world.videos.values()), 1),
            "timing": {"generate_seconds": summary.seconds_taken, "reused": summary.reused}}


def mine_vocab(out: Path, cfg: DemoConfig) -> dict:
    """Train-only narration json (the only narration pre-training ever sees) + the verb vocabulary."""
    from actbert.data.vocab import ActionVocab
    from actbert.world import load_world

    world = load_world(out / "world")
    train = set(world.split("train"))
    narration = json.loads(world.path("narration").read_text())
    train_narration = {vid: lines for vid, lines in narration.items() if vid in train}
    d = fresh_dir(out / "data")
    atomic_write_json(d / "narration_train.json", train_narration)
    texts = [t for lines in train_narration.values() for t in lines["text"]]
    vocab = ActionVocab.build(texts, top_k=cfg.vocab_top_k, min_count=cfg.vocab_min_count)
    vocab.save(d / "vocab.json")
    write_word_vocab(texts, d / "tokenizer")  # here, once: the parallel pre-training processes only read it
    return {"train_videos": len(train_narration), "lines": len(texts), "verbs": vocab.verbs,
            "counts": vocab.counts, "texts_without_verb": vocab.stats.get("texts_without_verb")}


def train_action(out: Path, cfg: DemoConfig, seed: int, progress: bool) -> dict:
    from actbert.data.vocab import ActionVocab
    from actbert.video.action_net import ActionTrainConfig, build_action_samples, save_action_net, train_action_net
    from actbert.world import load_world

    world = load_world(out / "world")
    vocab = ActionVocab.load(out / "data" / "vocab.json")
    captions = json.loads((out / "data" / "narration_train.json").read_text())
    samples, skipped = build_action_samples(captions, vocab, {v: str(world.video_path(v)) for v in captions})
    tc = ActionTrainConfig(arch="tiny3d", epochs=cfg.action_epochs, batch_size=cfg.action_batch, lr=cfg.action_lr,
                           held_out_fraction=0.2, seed=seed, resize=cfg.action_resize, crop=cfg.action_crop,
                           device="cpu", verbs=list(vocab.verbs), progress=progress)
    net = train_action_net(samples, len(vocab), tc)
    save_action_net(net, fresh_dir(out / "action_net"))
    r = net.report
    return {"samples": len(samples), "skipped": skipped, "train_clips": r.train_clips,
            "held_out_clips": r.held_out_clips, "train_accuracy": r.train_accuracy,
            "held_out_accuracy": r.held_out_accuracy, "classes": len(vocab),
            "majority": _majority([s.label for s in samples])}


def _majority(labels: list[int]) -> float:
    """Share of the most frequent verb among all labelled windows (the constant-guess baseline)."""
    return float(np.bincount(labels).max() / len(labels)) if labels else float("nan")


def train_regions(out: Path, cfg: DemoConfig, seed: int, progress: bool) -> dict:
    from actbert.video.detector_train import train_detector

    world_det = out / "world" / "detection" / "coco.json"  # boxes of TRAIN videos only (docs/world.md)
    r = train_detector(world_det, fresh_dir(out / "detector"), backbone="tiny", epochs=cfg.detector_epochs,
                       batch_size=cfg.detector_batch, optimizer=cfg.detector_optimizer, seed=seed,
                       progress=progress, top_k=cfg.detector_top_k, eval_initial=False)
    m = r.metrics
    return {"map50": m["map50"], "epochs_run": m["epochs_run"], "steps": m["steps"], "train_images": m["num_train_images"],
            "val_images": m["num_val_images"]}


def extract(out: Path, cfg: DemoConfig, progress: bool) -> dict:
    from actbert.video.action_net import load_action_net
    from actbert.video.detector import load_region_extractor
    from actbert.video.extract import default_spec, extract_features
    from actbert.world import load_world

    world = load_world(out / "world")
    net = load_action_net(out / "action_net")
    regions = load_region_extractor(out / "detector")
    paths = [world.video_path(v) for v in sorted(world.videos)]  # ALL videos: test features are needed to evaluate
    s = extract_features(paths, fresh_dir(out / "store"), net, regions, spec=default_spec(net, cfg.keyframe_every_s),
                         progress=progress, action_batch=32, region_batch=16)
    if s.failed:
        raise RuntimeError(f"extraction failed for {len(s.failed)} video(s): {s.failed[:3]}")
    return {"videos": len(s.done), "seconds_of_video": round(s.seconds_of_video, 1),
            "timing": {k: round(v, 2) for k, v in s.timings.items()}}


def write_word_vocab(texts: list[str], directory: Path) -> Path:
    """A deterministic WordPiece vocab.txt: every word of the TRAIN narration + single characters.

    Why not `WordPieceTokenizer.train`: Hugging Face's trainer breaks ties between merge candidates in
    hash-map order, so two runs on the same texts can give different pieces, and the demo promises the
    same numbers for the same seed. Whole words (the world's narration has a few hundred) plus every
    character alone and as a `##` continuation make a valid WordPiece vocabulary: any word encodes.
    """
    from tokenizers.pre_tokenizers import BertPreTokenizer

    from actbert.data.tokenizer import SPECIAL_TOKENS

    pre = BertPreTokenizer()
    words = {w for t in texts for w, _ in pre.pre_tokenize_str(t.lower())}
    chars = {c for w in words for c in w}
    pieces = sorted(words | chars | {"##" + c for c in chars})
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / "vocab.txt", "".join(t + "\n" for t in [*SPECIAL_TOKENS, *pieces]))
    atomic_write_text(directory / "tokenizer_config.json", '{"do_lower_case": true, "tokenizer_class": "BertTokenizer"}\n')
    return directory


def corpus_run(out: Path, seed: int, narration: Path | None = None, tokenizer: Path | None = None):
    """Store + TRAIN narration + vocab + the vocab stage's tokenizer -> corpus, tokenizer, tiny model config.
    `narration` / `tokenizer` replace the written narration and its tokenizer (the spoken-world runs)."""
    from actbert.training.data import build_corpus_run

    data = out / "data"
    return build_corpus_run(out / "store", narration or data / "narration_train.json", data / "vocab.json", "tiny",
                            seed=seed, val_fraction=0.1, tokenizer_dir=str(tokenizer or data / "tokenizer"))


def pretrain_variant(out: Path, cfg: DemoConfig, variant: str, seed: int, progress: bool, run_name: str | None = None,
                     narration: Path | None = None, tokenizer: Path | None = None) -> dict:
    """Pre-train one variant (the ablations differ only by their ActBERTConfig overrides); builds its own
    corpus, so it can run in a process of its own. `run_name` / `narration` / `tokenizer`: another run
    folder and training text (see `corpus_run`)."""
    from actbert.training.config import TrainConfig
    from actbert.training.pretrain import pretrain
    from actbert.training.data import default_collator

    run = corpus_run(out, seed, narration, tokenizer)
    weights = {**run.model_config.loss_weights, "contrastive": cfg.pretrain_contrastive, "match": cfg.pretrain_match}
    model_config = run.model_config.replace(**VARIANTS[variant], loss_weights=weights)
    tc = TrainConfig(steps=cfg.pretrain_steps, batch_size=cfg.pretrain_batch, lr=cfg.pretrain_lr,
                     warmup=cfg.pretrain_warmup,
                     eval_every=max(1, cfg.pretrain_steps // cfg.pretrain_eval_points), save_every=0, keep=1,
                     log_every=max(1, cfg.pretrain_steps // 40), seed=seed, eval_batches=4, eval_retrieval=32,
                     device="cpu")
    res = pretrain(tc, model_config, run.train, run.eval, run.tokenizer, fresh_dir(out / "runs" / (run_name or variant)),
                   progress=progress, collate_fn=default_collator(run.tokenizer, model_config))
    return {"steps": res.step, "final_losses": res.final_losses, "eval": res.eval,
            "model_dir": str(Path(res.model_dir).relative_to(out)), "timing": {"samples_per_s": res.samples_per_s}}


def save_scratch(out: Path, run, seed: int) -> dict:
    """The no-pre-training baseline: exactly the weights `pretrain` starts "actbert" from (same seed)."""
    from actbert.model import ActBERTForPretraining

    torch.manual_seed(seed)  # pretrain() seeds with TrainConfig.seed right before building the model
    model = ActBERTForPretraining(run.model_config)
    d = model.save_pretrained(fresh_dir(out / "runs" / SCRATCH) / "model", tokenizer=run.tokenizer)
    return {"model_dir": str(Path(d).relative_to(out))}


def load_variant(out: Path, variant: str):
    from actbert.data.tokenizer import WordPieceTokenizer
    from actbert.model import ActBERTForPretraining

    d = out / "runs" / variant / "model"
    model = ActBERTForPretraining.from_pretrained(d).eval()
    return model, WordPieceTokenizer.from_pretrained(d)


def run_feature_stages(stages: Stages, cfg: DemoConfig) -> dict[str, Any]:
    """The stages every experiment on a world starts with (world, verb vocabulary, action net, detector,
    features), with one set of cache keys: `actbert demo` and `actbert demo --spoken` share them."""
    out, seed, prog = stages.out, stages.seed, stages.progress
    res: dict[str, Any] = {}
    res["world"] = stages.run("world", {"preset": cfg.world_preset, "videos": cfg.world_videos}, [],
                              lambda: make_world(out, cfg, seed, prog))
    vocab = {"top_k": cfg.vocab_top_k, "min": cfg.vocab_min_count, "writes": "tokenizer"}
    res["vocab"] = stages.run("vocab", vocab, ["world"],
                              lambda: mine_vocab(out, cfg))
    act = {k: getattr(cfg, k) for k in ("action_epochs", "action_batch", "action_lr", "action_resize", "action_crop")}
    res["action_net"] = stages.run("action_net", act, ["vocab"], lambda: train_action(out, cfg, seed, prog))
    det = {k: getattr(cfg, k) for k in ("detector_epochs", "detector_batch", "detector_optimizer", "detector_top_k")}
    res["detector"] = stages.run("detector", det, ["world"], lambda: train_regions(out, cfg, seed, prog))
    res["extract"] = stages.run("extract", {"keyframe_every_s": cfg.keyframe_every_s}, ["action_net", "detector"],
                                lambda: extract(out, cfg, prog))
    return res


def pretrain_settings(cfg: DemoConfig) -> dict[str, Any]:
    """The budget fields of one pre-training run (part of its stage key)."""
    return {k: getattr(cfg, k) for k in ("pretrain_steps", "pretrain_batch", "pretrain_lr", "pretrain_warmup",
                                         "pretrain_contrastive", "pretrain_match", "pretrain_eval_points")}


def run_all(stages: Stages, cfg: DemoConfig, evaluate_fn: Callable[..., dict]) -> dict[str, Any]:
    """Every stage in order; `evaluate_fn(stages, cfg, run)` adds the evaluation stages. Returns results."""
    out, seed = stages.out, stages.seed
    res = run_feature_stages(stages, cfg)
    pre = pretrain_settings(cfg)
    jobs = [(f"pretrain_{v}", {**pre, "overrides": VARIANTS[v]}, ["extract", "vocab"],
             functools.partial(pretrain_variant, out, cfg, v, seed)) for v in cfg.variants]
    res["pretrain"] = dict(zip(cfg.variants, stages.run_parallel(jobs, cfg.processes, cfg.threads_per_process)))
    res["pretrain"][SCRATCH] = stages.run(f"pretrain_{SCRATCH}", {}, ["extract", "vocab"],
                                          lambda: save_scratch(out, corpus_run(out, seed), seed))
    res.update(evaluate_fn(stages, cfg))
    return res
