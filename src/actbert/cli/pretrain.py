"""`actbert pretrain`: pre-train ActBERT on a feature store + narration captions (one CPU to many GPUs)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

DESCRIPTION = """Pre-train ActBERT with its four objectives (masked words with visual cues, masked actions,
masked regions, video-text matching; optional contrastive alignment) on the caption windows of --captions
(HowTo100M json {video_id: {"start", "end", "text"}}) that overlap videos of --store (actbert extract).
Feature sizes come from the store's store.json, action classes from --vocab (actbert vocab). Videos are
split into training and held-out by a hash of their id (--val-fraction).

Writes into --out: train_config.json, config.json, vocab.txt, checkpoints/step-N/ (atomic; the last --keep
kept), metrics.jsonl + metrics.csv, tensorboard/, curves.png, summary.json and model/ (the final model).
--resume continues the latest intact checkpoint bit for bit. Multi-process: `torchrun --nproc_per_node N
-m actbert.cli.main pretrain ...` (any number of machines; gloo on CPU, NCCL on GPU) or `--nproc N` on one
machine. --batch-size is the global batch over all processes."""

PRESETS = ("tiny", "base")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from actbert.cli.options import add_device, add_no_progress, add_out, add_val_fraction
    from actbert.training.config import TrainConfig

    d = TrainConfig()
    io = parser.add_argument_group("data and model")
    io.add_argument("--store", required=True, help="feature store folder written by `actbert extract`")
    io.add_argument("--captions", required=True, help='narration json {video_id: {"start", "end", "text"}}')
    io.add_argument("--vocab", required=True, help="action vocabulary json written by `actbert vocab`")
    io.add_argument("--preset", default="tiny", choices=PRESETS, help="model size: tiny (CPU tests, demo) or base (paper)")
    io.add_argument("--init-text", default=None, metavar="BERT_DIR",
                    help="initialise the text stream from a local Hugging Face BERT folder (config.json, weights, "
                         "vocab.txt); its vocab.txt becomes the tokenizer")
    io.add_argument("--tokenizer", default=None, metavar="DIR",
                    help="folder with the vocab.txt to use without --init-text (default: trained on the captions)")
    io.add_argument("--tokenizer-vocab-size", type=int, default=8000,
                    help="size of the WordPiece vocabulary trained on the captions when no tokenizer is given")
    add_val_fraction(io, 0.05)
    add_out(io, "run folder (checkpoints, logs, final model in RUN_DIR/model)", metavar="RUN_DIR")
    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--steps", type=int, default=d.steps, help="optimizer steps in total")
    opt.add_argument("--batch-size", type=int, default=d.batch_size,
                     help="global batch per micro-step, summed over all processes")
    opt.add_argument("--grad-accum", type=int, default=d.grad_accum,
                     help="micro-steps per optimizer step (effective batch = batch-size x grad-accum)")
    opt.add_argument("--lr", type=float, default=d.lr, help="peak AdamW learning rate")
    opt.add_argument("--warmup", type=int, default=d.warmup, help="linear warm-up steps from 0 to --lr")
    opt.add_argument("--schedule", default=d.schedule, choices=("linear", "cosine", "constant"),
                     help="learning-rate decay after the warm-up (to 0 at --steps)")
    opt.add_argument("--weight-decay", type=float, default=d.weight_decay,
                     help="AdamW weight decay (not on biases, LayerNorm weights)")
    opt.add_argument("--clip-grad", type=float, default=None,
                     help=f"max global gradient norm; 0 disables (default: {d.clip_grad}, or 0 with --optimizer-in-backward)")
    opt.add_argument("--optimizer-in-backward", action="store_true",
                     help="update each parameter as soon as its gradient is ready and free the gradient: about 0.5 GiB less "
                          "peak memory for `base` (batch 8) for about 7 %% more time per step; no --clip-grad, --grad-accum, fp16 or --nproc > 1")
    opt.add_argument("--precision", default=d.precision, choices=("fp32", "bf16", "fp16"),
                     help="autocast: bf16 on CPU or GPU; fp16 with a gradient scaler, GPU only")
    opt.add_argument("--loss-weights", default=None, metavar="mlm=1,action=1,region=1,match=1,contrastive=0",
                     help="weights of the objectives (unnamed ones keep the model's defaults; 0 switches one off)")
    opt.add_argument("--seed", type=int, default=d.seed, help="seed of weights, data order, masking and dropout")
    run = parser.add_argument_group("evaluation, checkpoints, processes")
    run.add_argument("--eval-every", type=int, default=d.eval_every, help="held-out evaluation every N steps (0: at the end)")
    run.add_argument("--eval-batches", type=int, default=d.eval_batches, help="held-out batches per evaluation")
    run.add_argument("--eval-retrieval", type=int, default=d.eval_retrieval,
                     help="held-out clips scored pairwise for zero-shot text-to-video R@1 (0: off)")
    run.add_argument("--save-every", type=int, default=d.save_every, help="checkpoint every N steps (0: at the end)")
    run.add_argument("--keep", type=int, default=d.keep, help="checkpoints kept (newest)")
    run.add_argument("--log-every", type=int, default=d.log_every, help="training metrics logged every N steps")
    run.add_argument("--workers", type=int, default=d.workers, help="DataLoader worker processes per process")
    add_device(run)
    run.add_argument("--threads", type=int, default=None, help="torch CPU threads per process (default: torch's)")
    run.add_argument("--resume", action="store_true", help="continue the run in --out from its latest intact checkpoint")
    run.add_argument("--nproc", type=int, default=1,
                     help="spawn this many local processes (DDP); under torchrun leave it at 1")
    add_no_progress(run, "no progress bar and no summary table")


def _train_config(args: argparse.Namespace, init_text: str | None):
    from actbert.training.config import TrainConfig, parse_loss_weights

    return TrainConfig(
        steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr, warmup=args.warmup,
        schedule=args.schedule, weight_decay=args.weight_decay, clip_grad=_clip_grad(args), precision=args.precision,
        optimizer_in_backward=args.optimizer_in_backward,
        eval_every=args.eval_every, eval_batches=args.eval_batches, eval_retrieval=args.eval_retrieval,
        save_every=args.save_every, keep=args.keep, log_every=args.log_every, seed=args.seed, workers=args.workers,
        loss_weights=parse_loss_weights(args.loss_weights or ""), init_text=init_text, device=args.device or "auto")


def _clip_grad(args: argparse.Namespace) -> float:
    if args.clip_grad is not None:
        return args.clip_grad
    from actbert.training.config import TrainConfig

    return 0.0 if args.optimizer_in_backward else TrainConfig.clip_grad


def _worker(rank: int, world: int, port: int, args: argparse.Namespace) -> None:
    from actbert.training.distributed import local_env

    from actbert.cli.main import run_reporting_errors

    os.environ.update(local_env(rank, world, port))
    # each spawned process prints its own expected failure in one line, like the parent would
    code = run_reporting_errors(f"actbert pretrain (process {rank})", lambda: _run_one(args, quiet=args.no_progress or rank != 0),
                                getattr(args, "debug", False))
    if code:
        raise SystemExit(code)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.nproc > 1:
        if "WORLD_SIZE" in os.environ:
            print("error: --nproc spawns its own processes; under torchrun use --nproc 1", file=sys.stderr)
            return 2
        import torch.multiprocessing as mp

        from actbert.training.distributed import free_port

        try:
            mp.spawn(_worker, args=(args.nproc, free_port(), args), nprocs=args.nproc, join=True)
        except mp.ProcessExitedException as exc:  # a rank exited with an error it already printed
            print(f"error: pre-training process {exc.error_index} exited with code {exc.exit_code}", file=sys.stderr)
            return exc.exit_code if exc.exit_code in (2, 3) else 1
        return 0
    return _run_one(args, quiet=args.no_progress or int(os.environ.get("RANK", 0)) != 0)


def _run_one(args: argparse.Namespace, quiet: bool) -> int:
    import torch

    from actbert.data.formats.errors import FormatError
    from actbert.model.checkpoint import CheckpointError
    from actbert.training.data import build_corpus_run, default_collator
    from actbert.training.pretrain import NonFiniteLossError, PretrainError, pretrain

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        tc = _train_config(args, args.init_text)
        built = build_corpus_run(args.store, args.captions, args.vocab, args.preset, init_text=args.init_text,
                                 tokenizer_dir=args.tokenizer, run_dir=args.out, resume=args.resume,
                                 val_fraction=args.val_fraction, tokenizer_vocab_size=args.tokenizer_vocab_size,
                                 seed=args.seed)
        if not quiet:
            for note in built.notes:
                print(note)
        collate = default_collator(built.tokenizer, built.model_config)
        result = pretrain(tc, built.model_config, built.train, built.eval, built.tokenizer, Path(args.out),
                          resume=args.resume, progress=not quiet, collate_fn=collate)
    except NonFiniteLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (FileNotFoundError, FormatError, PretrainError, CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not quiet:
        print(f"final model: {result.model_dir}")
    return 0
