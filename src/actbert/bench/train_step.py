"""Training-step benchmark: samples/s, peak RSS, achieved GFLOP/s vs the machine's measured matmul peak.

FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode` on one real step (forward, losses,
backward) and broken down per stream, so the count follows the code rather than a formula.
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from contextlib import nullcontext

import torch

from actbert.bench.synthetic import SPECIAL_IDS, random_batch
from actbert.data.masking import MaskingConfig, mask_batch
from actbert.model import ActBERTForPretraining, get_preset
from actbert.training.optim import make_optimizer

STREAM_GROUPS = {
    "text": ("actbert.text_stages", "actbert.text_embeddings"),
    "region": ("actbert.region_stages", "actbert.region_embeddings"),
    "action": ("actbert.action_stages", "actbert.action_embeddings"),
    "tnt": ("actbert.tnt_blocks",),
    "heads": ("mlm_head", "action_head", "region_head", "match_head", "contrastive_head", "actbert.text_pooler",
              "actbert.region_pooler", "actbert.action_pooler"),
}


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 6, onednn: bool = False) -> float:
    """Best-of-N GFLOP/s of an n x n matmul in `dtype` on this machine, now: `a @ b` (MKL for fp32 in
    PyTorch's CPU wheels), or with `onednn` the oneDNN matmul the model's fp32 linears use (model/linear.py)."""
    from actbert.model.linear import _matmul

    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    product = (lambda: _matmul(a, b, None)) if onednn else (lambda: a @ b)
    product()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def count_flops(model, batch) -> tuple[float, dict[str, float]]:
    """Total FLOPs of one training step (forward + backward), and forward FLOPs per part of the model."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        model(batch).loss.backward()
    model.zero_grad(set_to_none=True)
    total = float(counter.get_total_flops())
    forward = FlopCounterMode(display=False)
    with torch.no_grad(), forward:
        model(batch)
    counts = {name: sum(ops.values()) for name, ops in forward.get_flop_counts().items()}
    groups = dict.fromkeys(STREAM_GROUPS, 0.0)
    for name, _module in model.named_modules():
        group = next((g for g, prefixes in STREAM_GROUPS.items() if name in prefixes or _is_unit(name, prefixes)), None)
        if group is not None:
            groups[group] += counts.get(f"{type(model).__name__}.{name}", 0)
    return total, groups


def _is_unit(name: str, prefixes: tuple[str, ...]) -> bool:
    """Layers inside stage lists (`<prefix>.<stage>.<layer>`) and TNT blocks (`<prefix>.<block>`)."""
    for p in prefixes:
        if name.startswith(p + "."):
            depth = name[len(p) + 1:].count(".")
            return depth == (1 if p.endswith("_stages") else 0)
    return False


def masked_batch(config, batch_size: int) -> dict[str, torch.Tensor]:
    """The benchmark's synthetic batch, masked as pre-training masks it (seed 0: every run sees the same)."""
    g = torch.Generator().manual_seed(0)
    return mask_batch(random_batch(config, batch_size, generator=g), MaskingConfig(), SPECIAL_IDS, config.vocab_size, g)


def build_step(preset: str, batch_size: int, precision: str, threads: int | None, in_backward: bool = False,
               heap_threshold: int | None = None):
    """The step `actbert pretrain` runs (its optimizer from training/optim.py, clipping at 1.0 unless the
    optimizer steps inside backward, which cannot clip) on a synthetic masked batch at the preset's sizes.
    Returns (step, model, batch, config)."""
    if heap_threshold:  # process-wide and for good: a benchmark process measures one setting
        from actbert.utils import limit_heap_fragmentation

        limit_heap_fragmentation(heap_threshold)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = get_preset(preset)
    model = ActBERTForPretraining(config).train()
    batch = masked_batch(config, batch_size)
    optimizer = make_optimizer(model, lr=1e-4, weight_decay=0.01, in_backward=in_backward)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()

    def step():
        with autocast:
            loss = model(batch).loss
        loss.backward()
        if not in_backward:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, model, batch, config


def run(preset: str, batch_size: int, steps: int, warmup: int, precision: str, threads: int | None,
        in_backward: bool = False, heap_threshold: int | None = None) -> dict:
    """Time `build_step`'s step: samples/s, GFLOP/s against the matmul peaks measured now, peak RSS."""
    step, model, batch, config = build_step(preset, batch_size, precision, threads, in_backward, heap_threshold)
    flops, per_group = count_flops(model, batch)
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    peak_rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    fp32_peak, bf16_peak = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    from actbert.model.linear import ONEDNN

    onednn_peak = matmul_peak(torch.float32, onednn=True) if ONEDNN else None
    achieved = flops / seconds / 1e9
    return {
        "preset": preset, "batch": batch_size, "precision": precision,
        "optimizer": "in backward (no clipping)" if in_backward else "after backward (clip 1.0)",
        "heap_threshold": heap_threshold, "threads": torch.get_num_threads(),
        "text_len": config.max_text_len, "regions": config.max_regions + 1, "actions": config.max_actions + 1,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "step_s": seconds, "samples_per_s": batch_size / seconds,
        "gflop_per_sample": flops / batch_size / 1e9,
        "forward_gflop_per_sample_by_part": {k: v / batch_size / 1e9 for k, v in per_group.items()},
        "achieved_gflops": achieved, "fp32_peak_gflops": fp32_peak, "bf16_peak_gflops": bf16_peak,
        "fraction_of_fp32_peak": achieved / fp32_peak, "fraction_of_bf16_peak": achieved / bf16_peak,
        "fp32_onednn_peak_gflops": onednn_peak, "fraction_of_fp32_onednn_peak": achieved / onednn_peak if onednn_peak else None,
        "peak_rss_gib": peak_rss_gib,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="tiny", help="model preset (tiny, base)")
    parser.add_argument("--batch", type=int, default=8, help="samples per training step")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (allocator, caches)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="fp32, or bf16 autocast")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--optimizer-in-backward", action="store_true",
                        help="step each parameter inside backward and free its gradient, as `actbert pretrain "
                             "--optimizer-in-backward` does (less memory, no clipping)")
    parser.add_argument("--heap-threshold", type=int, default=None, metavar="BYTES",
                        help="fix glibc's mmap threshold at BYTES: freed activations go back to the OS (lower RSS) "
                             "but are page-faulted in again every step (slower); measured trade-off in docs/performance.md")
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="actbert bench train-step", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    result = run(args.preset, args.batch, args.steps, args.warmup, args.precision, args.threads,
                 args.optimizer_in_backward, args.heap_threshold)
    if args.json:
        print(json.dumps(result))
        return 0
    rows = [
        ("preset / batch / precision", f"{result['preset']} / {result['batch']} / {result['precision']} ({result['threads']} threads)"),
        ("optimizer step", result["optimizer"]),
        ("parameters", f"{result['params_m']:.1f} M"),
        ("samples/s", f"{result['samples_per_s']:.2f}  (step {result['step_s']:.3f} s)"),
        ("GFLOP per sample (train)", f"{result['gflop_per_sample']:.2f}"),
        ("forward GFLOP/sample by part", ", ".join(
            f"{k} {v:.2f}" for k, v in result["forward_gflop_per_sample_by_part"].items())),
        ("achieved GFLOP/s", f"{result['achieved_gflops']:.1f}"),
        ("fp32 / bf16 matmul peak", f"{result['fp32_peak_gflops']:.0f} / {result['bf16_peak_gflops']:.0f} GFLOP/s"),
        ("fraction of fp32 / bf16 peak", f"{result['fraction_of_fp32_peak']:.0%} / {result['fraction_of_bf16_peak']:.0%}"),
        ("fp32 oneDNN matmul peak", "n/a" if result["fp32_onednn_peak_gflops"] is None else
         f"{result['fp32_onednn_peak_gflops']:.0f} GFLOP/s ({result['fraction_of_fp32_onednn_peak']:.0%} of it reached)"),
        ("peak RSS", f"{result['peak_rss_gib']:.2f} GiB"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
