"""The pre-training loop: four objectives, AdamW with warm-up and decay, accumulation, clipping, autocast,
DDP, periodic held-out evaluation, and checkpoints that resume bit for bit.

Why resuming is exact: the data order is a pure function of (seed, epoch, batch) (`sampling.py`), the
collate randomness is seeded per batch, and the dropout RNG is re-seeded from (seed, step, micro-step, rank)
before every forward pass (as fairseq does), so nothing depends on how many steps ran in this process.
The RNG states are checkpointed too, for code (e.g. a custom collate) that uses them between steps.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from actbert.model import ActBERTConfig, ActBERTForPretraining
from actbert.training import checkpointing as ckpt
from actbert.training import distributed as D
from actbert.training.config import TrainConfig, lr_factor
from actbert.training.evaluation import masked_metrics, to_device, zero_shot_retrieval
from actbert.errors import ActbertError
from actbert.training.metrics_log import MetricsLog, summary_table, write_summary
from actbert.training.optim import make_optimizer
from actbert.training.sampling import DataPosition, KeyedDataset, RankBatchSampler, SeededCollate, mix_seed, seeded_call

log = logging.getLogger(__name__)
LOSS_KEYS = ("mlm", "action", "region", "match", "contrastive")
EVAL_SEED = 20240611  # eval masking / negatives are drawn with this fixed seed at every evaluation


class PretrainError(ActbertError, ValueError):
    """Bad input to a pre-training run (data, tokenizer, run folder); the message names the item."""


class NonFiniteLossError(ActbertError, RuntimeError):
    """The loss or the gradient became NaN/inf; the run stopped before updating the weights."""


@dataclass
class PretrainResult:
    out_dir: Path
    step: int
    final_losses: dict[str, float]
    eval: dict[str, float]
    samples_per_s: float
    data_time_share: float
    checkpoint: Path | None
    model_dir: Path | None
    summary: dict[str, Any] = field(default_factory=dict)


def vocab_size_of(tokenizer: Any) -> int:
    size = getattr(tokenizer, "vocab_size", None)
    return int(size if size is not None else len(tokenizer))


def make_autocast(precision: str, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    if precision == "fp32":
        return contextlib.nullcontext
    if precision == "fp16" and device.type != "cuda":
        raise PretrainError("--precision fp16 needs a CUDA GPU: on this CPU fp16 matmuls run at 2-3 GFLOP/s "
                            "(about 100x slower than fp32); use --precision bf16 or fp32")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return functools.partial(torch.autocast, device_type=device.type, dtype=dtype)


def check_batch(batch: dict[str, torch.Tensor], cfg: ActBERTConfig, where: str) -> None:
    """Ids and class counts that would index out of range, named, instead of an opaque IndexError."""
    ids = batch["text_ids"]
    if ids.numel() and int(ids.max()) >= cfg.vocab_size:
        raise PretrainError(f"{where}: word-piece id {int(ids.max())} >= the model's vocabulary size {cfg.vocab_size}: "
                            "the tokenizer does not match the model config")
    labels = batch.get("action_labels")
    if labels is not None and labels.numel() and int(labels.max()) >= cfg.num_action_classes:
        raise PretrainError(f"{where}: action label {int(labels.max())} >= num_action_classes {cfg.num_action_classes}: "
                            "the action vocabulary does not match the model config")
    cls = batch.get("region_cls")
    if cls is not None and cls.shape[-1] != cfg.num_region_classes:
        raise PretrainError(f"{where}: region_cls has {cls.shape[-1]} classes, the model {cfg.num_region_classes}")


def _nonfinite_inputs(batches: list[dict[str, torch.Tensor]]) -> list[str]:
    found = set()
    for b in batches:
        for k, v in b.items():
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all()):
                found.add(k)
    return sorted(found)


def _resolve_data(data: Any, collate_fn: Callable | None, tokenizer: Any, cfg: ActBERTConfig, what: str):
    """(map-style dataset, collate) from a dataset + collate, or from a corpus via the data layer's collator."""
    if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        raise PretrainError(f"the {what} data must be a map-style dataset (len + indexing), got {type(data).__name__}")
    if len(data) == 0:
        raise PretrainError(f"the {what} corpus is empty: no caption window overlaps the feature store "
                            f"(check that the caption file and the store share video ids)")
    if collate_fn is None:
        from actbert.training.data import default_collator

        collate_fn = default_collator(tokenizer, cfg)
    return data, collate_fn


def _check_run_dir(out_dir: Path, resume: bool, tc: TrainConfig, mc: ActBERTConfig) -> None:
    has_ckpt = bool(ckpt.list_checkpoints(out_dir / "checkpoints"))
    if not resume and has_ckpt:
        raise PretrainError(f"{out_dir} already holds checkpoints: pass --resume to continue that run, or choose a new --out")
    if resume and (out_dir / "config.json").is_file():
        saved = ActBERTConfig.load(out_dir)
        if saved.vocab_size != mc.vocab_size:
            raise PretrainError(f"{out_dir}: the run was trained with a vocabulary of {saved.vocab_size} word pieces, "
                                f"the tokenizer given now has {mc.vocab_size}: resume with the run's own vocab.txt")
        diff = {k: v for k, v in saved.to_dict().items() if mc.to_dict().get(k) != v}
        if diff:
            raise PretrainError(f"{out_dir}: the model config differs from the run's config.json in {sorted(diff)}")
    if resume and (out_dir / "train_config.json").is_file():
        changed = TrainConfig.load(out_dir).differences(tc)
        if "optimizer_in_backward" in changed:  # the two modes keep differently shaped optimizer states
            raise PretrainError(f"{out_dir}: the run was trained with optimizer_in_backward="
                                f"{changed['optimizer_in_backward'][0]}; resume it with the same setting")
        inexact = sorted(set(changed) - {"eval_every", "save_every", "keep", "workers", "log_every", "steps",
                                         "eval_batches", "eval_retrieval", "device"})
        if inexact:
            log.warning("resuming with changed settings %s: the result will differ from an uninterrupted run",
                        {k: changed[k] for k in inexact})


def pretrain(train_config: TrainConfig, model_config: ActBERTConfig, train_data: Dataset, eval_data: Dataset | None,
             tokenizer: Any, out_dir: str | Path, resume: bool = False, progress: bool = True, *,
             collate_fn: Callable | None = None, retrieval_collate_fn: Callable | None = None,
             stop_after: int | None = None, on_step: Callable[[int, torch.nn.Module], None] | None = None) -> PretrainResult:
    """Pre-train ActBERT; run under torchrun for DDP (same call in every process).

    `train_data` / `eval_data`: map-style datasets of samples (e.g. `NarratedCorpus`) and `collate_fn`
    turning a list of them into a masked model batch with match labels (default: the data layer's
    PretrainCollator). `retrieval_collate_fn` makes clean matched batches for zero-shot R@1 (default: the
    collator's `clean()` variant when it has one; without either, R@1 is skipped). `stop_after` stops
    (checkpoint written, as for a preempted job) once that many steps are done; `on_step(step, model)`
    is called with final, averaged, unscaled gradients just before each optimizer step (tests).
    """
    info = D.setup(train_config.device)
    try:
        return _train(info, train_config, model_config, train_data, eval_data, tokenizer, Path(out_dir), resume,
                      progress, collate_fn, retrieval_collate_fn, stop_after, on_step)
    finally:
        D.teardown(info)  # _train's locals (DDP model, optimizer) are gone by now, as environment.md asks


def _train(info, tc: TrainConfig, model_config, train_data, eval_data, tokenizer, out_dir: Path, resume, progress,
           collate_fn, retrieval_collate_fn, stop_after, on_step) -> PretrainResult:
    autocast = make_autocast(tc.precision, info.device)
    if tc.loss_weights:
        model_config = model_config.replace(loss_weights={**model_config.loss_weights, **tc.loss_weights})
    if vocab_size_of(tokenizer) != model_config.vocab_size:
        raise PretrainError(f"the tokenizer has {vocab_size_of(tokenizer)} word pieces but the model config expects "
                            f"{model_config.vocab_size}: build the config from the same vocab.txt")
    train_ds, collate = _resolve_data(train_data, collate_fn, tokenizer, model_config, "training")
    if retrieval_collate_fn is None and hasattr(collate, "clean"):
        retrieval_collate_fn = collate.clean()
    _check_run_dir(out_dir, resume, tc, model_config)

    torch.manual_seed(tc.seed)  # identical initial weights on every rank
    module = ActBERTForPretraining(model_config)
    if tc.init_text and not resume:
        from actbert.model.bert_init import load_bert_text_stream

        report = load_bert_text_stream(module, tc.init_text)
        log.info("text stream initialised from BERT: %s", report)
    module.to(info.device)
    if tc.optimizer_in_backward and info.distributed:
        raise PretrainError("optimizer_in_backward updates each parameter before DDP has averaged its gradient: "
                            "run it in one process, or drop --optimizer-in-backward")
    if tc.optimizer_in_backward and on_step is not None:
        raise PretrainError("on_step needs the gradients of a whole step, which optimizer_in_backward never holds")
    optimizer = make_optimizer(module, lr=tc.lr, weight_decay=tc.weight_decay, betas=tc.betas, eps=tc.adam_eps,
                               in_backward=tc.optimizer_in_backward)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(lr_factor, config=tc))
    scaler = torch.amp.GradScaler("cuda", enabled=tc.precision == "fp16")

    step, pos, samples_done, loaded = 0, DataPosition(), 0, None
    ckpt_root = out_dir / "checkpoints"
    if resume:
        loaded = ckpt.load_latest(ckpt_root, module, optimizer, scheduler, scaler)
        if loaded is None:
            log.warning("--resume: no checkpoint under %s, starting from step 0", ckpt_root)
        else:
            state = loaded[1]["trainer"]
            step, pos, samples_done = state["step"], DataPosition(**state["data"]), state["samples"]
            if info.device.type == "cpu" and state.get("threads", torch.get_num_threads()) != torch.get_num_threads():
                log.warning("the checkpoint was written with %d torch threads and this process has %d: fused AdamW "
                            "rounds differently, so the run will not be bit-identical to an uninterrupted one",
                            state["threads"], torch.get_num_threads())
            if state["num_samples"] != len(train_ds):
                log.warning("the training set had %d samples when checkpointed and has %d now: the data order changed",
                            state["num_samples"], len(train_ds))
    model = module
    if info.distributed:
        # find_unused_parameters: the contrastive head (weight 0) and the frame embedding (no region_frame) can
        # sit out a step; DDP would otherwise wait forever for their gradients
        model = torch.nn.parallel.DistributedDataParallel(
            module, device_ids=[info.device.index] if info.device.type == "cuda" else None, find_unused_parameters=True)

    mlog = None
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        tc.save(out_dir)
        model_config.save(out_dir)
        if hasattr(tokenizer, "save"):
            tokenizer.save(out_dir)
        mlog = MetricsLog(out_dir, resume_step=step if resume else None)
    D.barrier(info)

    sampler = RankBatchSampler(len(train_ds), tc.batch_size, info.rank, info.world_size, tc.seed, start=pos)
    loader = DataLoader(KeyedDataset(train_ds), batch_sampler=sampler, collate_fn=SeededCollate(collate),
                        num_workers=tc.workers, pin_memory=info.device.type == "cuda",
                        generator=torch.Generator().manual_seed(tc.seed))
    evaluator = _Evaluator(module, eval_data, collate, retrieval_collate_fn, tc, model_config, info, autocast)
    bar = None
    if progress and info.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=tc.steps, initial=step, desc="pretrain", unit="step", dynamic_ncols=True)
    last_ckpt = loaded[0] if loaded else None
    eval_result: dict[str, float] = {}
    last_losses: dict[str, float] = {}
    t_run, t_data, t_steps, run_samples = time.perf_counter(), 0.0, 0.0, 0
    window: deque[tuple[float, int]] = deque(maxlen=20)  # recent steps, for the progress bar's samples/s
    data_iter = iter(loader)
    try:
        while step < tc.steps:
            t_step, micro_batches = time.perf_counter(), []
            sums = torch.zeros(len(LOSS_KEYS) + 2, dtype=torch.float64)
            for micro in range(tc.grad_accum):
                t0 = time.perf_counter()
                batch = to_device(next(data_iter), info.device)
                t_data += time.perf_counter() - t0
                check_batch(batch, model_config, f"training batch at step {step}")
                micro_batches.append(batch)
                torch.manual_seed(mix_seed(tc.seed, step, micro, info.rank, 1))  # dropout stream of this micro-step
                sync = model.no_sync() if info.distributed and micro < tc.grad_accum - 1 else contextlib.nullcontext()
                with sync:
                    with autocast():
                        out = model(batch)
                    losses = _loss_vector(out)
                    if tc.optimizer_in_backward and not math.isfinite(float(losses[0])):
                        # backward would update the weights, so the check cannot wait for the step's end
                        raise NonFiniteLossError(_nan_message(step, losses, micro_batches, last_ckpt))
                    scaler.scale(out.loss / tc.grad_accum).backward()
                sums += losses
            sums[-1] = float(not all(math.isfinite(float(v)) for v in sums[:-1]))
            means = D.all_reduce_mean(sums / tc.grad_accum, info)
            if means[-1] > 0:
                raise NonFiniteLossError(_nan_message(step, means, micro_batches, last_ckpt))
            grad_norm = None  # optimizer_in_backward: the gradients are gone by now
            if not tc.optimizer_in_backward:
                scaler.unscale_(optimizer)
                if on_step is not None:
                    on_step(step, module)
                grad_norm = torch.nn.utils.clip_grad_norm_(module.parameters(), tc.clip_grad if tc.clip_grad > 0 else math.inf)
                if not torch.isfinite(grad_norm) and not scaler.is_enabled():  # fp16 skips such steps by design
                    raise NonFiniteLossError(_nan_message(step, means, micro_batches, last_ckpt, "gradient norm"))
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            lr = optimizer.param_groups[0]["lr"]
            scheduler.step()
            step += 1
            pos = pos.advance(sampler.batches_per_epoch, tc.grad_accum)
            n = tc.batch_size * tc.grad_accum
            samples_done += n
            run_samples += n
            window.append((time.perf_counter() - t_step, n))
            t_steps += window[-1][0]
            last_losses = {"loss": float(means[0]), **{f"loss_{k}": float(means[1 + i]) for i, k in enumerate(LOSS_KEYS)
                                                       if k in model_config.loss_weights and model_config.loss_weights[k] > 0}}
            speed = sum(s for _, s in window) / max(sum(t for t, _ in window), 1e-9)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{last_losses['loss']:.4f}", samples_s=f"{speed:.1f}")
            if mlog is not None and (step % tc.log_every == 0 or step == tc.steps):
                norm = {} if grad_norm is None else {"grad_norm": float(grad_norm)}
                mlog.log(step, "train", {**last_losses, "lr": lr, **norm, "samples_per_s": speed, "epoch": pos.epoch})
            final = step == tc.steps
            if (tc.eval_every and step % tc.eval_every == 0) or final:
                eval_result = evaluator.run()
                if mlog is not None and eval_result:
                    mlog.log(step, "eval", eval_result)
            stopping = stop_after is not None and step >= stop_after
            if (tc.save_every and step % tc.save_every == 0) or final or stopping:
                last_ckpt = _save(ckpt_root, step, module, optimizer, scheduler, scaler, tokenizer, tc, info,
                                  {"step": step, "data": {"epoch": pos.epoch, "batch": pos.batch}, "samples": samples_done,
                                   "num_samples": len(train_ds), "world_size": info.world_size,
                                   "threads": torch.get_num_threads()})
            if stopping:
                break
    finally:
        if bar is not None:
            bar.close()
        if mlog is not None:
            mlog.close()
        del data_iter, loader
    wall = time.perf_counter() - t_run
    # throughput over training steps only (data loading included; evaluation and checkpoints excluded)
    result = PretrainResult(out_dir, step, last_losses, eval_result, run_samples / max(t_steps, 1e-9),
                            t_data / max(t_steps, 1e-9), last_ckpt, None)
    if info.is_main:
        if step >= tc.steps:
            result.model_dir = module.save_pretrained(out_dir / "model", tokenizer=tokenizer if hasattr(tokenizer, "save") else None)
        paths = mlog.finish() if mlog is not None else {}
        result.summary = {"steps": step, "world_size": info.world_size, "global_batch": tc.batch_size * tc.grad_accum,
                          "samples_per_s": result.samples_per_s, "data_time_share": result.data_time_share,
                          "wall_s": wall,
                          **last_losses, **{f"eval_{k}": v for k, v in eval_result.items() if not k.endswith("_count")},
                          "checkpoint": str(last_ckpt), "curves": str(paths.get("plot"))}
        write_summary(result.summary, out_dir)
        if progress:
            print(summary_table(result.summary), flush=True)
    return result


def _loss_vector(out) -> torch.Tensor:
    """[total, one value per LOSS_KEYS entry (0 where absent), 0 (the non-finite flag slot)] of one forward."""
    zero = out.loss.new_zeros((), dtype=torch.float32)
    values = [out.loss] + [out.losses.get(k, zero) for k in LOSS_KEYS] + [zero]
    return torch.stack([v.detach().float() for v in values]).cpu().double()  # one device -> host copy


def _nan_message(step: int, means: torch.Tensor, batches: list, last_ckpt: Path | None, what: str = "loss") -> str:
    losses = ", ".join(f"{k}={float(means[1 + i]):.4g}" for i, k in enumerate(LOSS_KEYS))
    bad = _nonfinite_inputs(batches)
    hint = f" The batch holds non-finite values in {bad}: check the feature store (actbert data check)." if bad else \
        " Inputs were finite: lower --lr, raise --warmup, or use --precision fp32."
    keep = f"the last good checkpoint is {last_ckpt}" if last_ckpt else "no checkpoint had been written yet"
    return (f"non-finite {what} at step {step} (total={float(means[0]):.4g}; {losses}); stopped without updating "
            f"the weights or saving; {keep}.{hint}")


def _save(root, step, module, optimizer, scheduler, scaler, tokenizer, tc, info, state) -> Path:
    path = ckpt.checkpoint_dir(root, step)
    if info.is_main:
        path = ckpt.save_checkpoint(root, step, module, optimizer, scheduler, scaler, state,
                                    tokenizer=tokenizer if hasattr(tokenizer, "save") else None, keep=tc.keep)
    D.barrier(info)  # no rank runs ahead of a checkpoint it could be resumed from
    return path


class _Evaluator:
    """Held-out metrics on rank 0 (other ranks wait at the barrier); batches are collated once, with fixed seeds."""

    def __init__(self, module, data, collate, retrieval_collate, tc: TrainConfig, cfg: ActBERTConfig, info, autocast):
        self.module, self.data, self.collate, self.retrieval_collate = module, data, collate, retrieval_collate
        self.tc, self.cfg, self.info, self.autocast = tc, cfg, info, autocast
        self.batches: list | None = None
        self.clean: dict | None = None
        self.clean_videos: list = []

    def _prepare(self) -> None:
        n, b = len(self.data), self.tc.batch_size
        # a fixed shuffle: consecutive windows share a video, and a one-video batch has no negative to draw
        order = np.random.default_rng(EVAL_SEED).permutation(n).tolist()
        self.batches = []
        for i, lo in enumerate(range(0, n, b)):
            if i >= self.tc.eval_batches or lo + 2 > n:
                break
            samples = [self.data[j] for j in order[lo:lo + b]]
            batch = seeded_call(self.collate, samples, mix_seed(EVAL_SEED, i), SeededCollate(self.collate).takes_generator)
            check_batch(batch, self.cfg, f"evaluation batch {i}")
            self.batches.append(batch)
        if self.retrieval_collate is not None and self.tc.eval_retrieval >= 2 and n >= 2:
            picked = _distinct_videos(self.data, order, self.tc.eval_retrieval)
            self.clean = seeded_call(self.retrieval_collate, picked, EVAL_SEED, False)
            self.clean_videos = [getattr(s, "video_id", i) for i, s in enumerate(picked)]

    def run(self) -> dict[str, float]:
        result: dict[str, float] = {}
        if self.data is not None and len(self.data) and self.info.is_main:
            with torch.random.fork_rng(devices=[]):  # evaluation never moves the training RNG
                if self.batches is None:
                    self._prepare()
                result = masked_metrics(self.module, self.batches, self.info.device, self.autocast)
                if self.clean is not None:
                    result.update(zero_shot_retrieval(self.module, self.clean, self.info.device, self.autocast,
                                                      self.clean_videos))
        D.barrier(self.info)
        return result


def _distinct_videos(data, order: list[int], count: int) -> list:
    """Up to `count` samples in `order`, one window per video first (two windows of one video often share
    words, which would make a caption's true clip ambiguous), then the rest."""
    picked, rest, seen = [], [], set()
    for j in order[: 8 * count]:  # bounded: a huge held-out split must not be read whole
        sample = data[j]
        if sample is None:
            continue
        vid = getattr(sample, "video_id", None)
        (rest if vid is not None and vid in seen else picked).append(sample)
        seen.add(vid)
        if len(picked) >= count:
            break
    return (picked + rest)[:count]
