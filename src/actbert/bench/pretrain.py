"""`actbert bench pretrain`: end-to-end pre-training samples/s (data loading included), the share of step
time spent waiting for data, and DDP scaling from 1 to 2 processes, on this machine.

The path timed is the real one: a synthetic feature store at base sizes (D_a 512, D_r 2048, 1,601 region
classes, 60 s videos, 2 s clips, 12 boxes per key frame) -> NarratedCorpus -> PretrainCollator (WordPiece,
negatives, masking) -> `actbert.training.pretrain` (AdamW, clipping, the four losses). Evaluation is off;
the final checkpoint is written but not timed. Throughput counts the steps after `--warmup-steps`
(first-step allocation and lazy initialisation excluded); the data share counts every step.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

DIMS = dict(action_feat_dim=512, region_feat_dim=2048, num_region_classes=1601)
VERBS = ("cut", "add", "mix", "pour", "whisk", "slice", "fry", "stir", "bake")


class _FirstVerbVocab:
    """Stand-in action vocabulary (class = first known verb): spaCy labelling happens once at corpus build
    and is not part of a training step, so the benchmark skips it."""

    def __len__(self) -> int:
        return len(VERBS)

    def label(self, text: str):
        return next((VERBS.index(w) for w in text.split() if w in VERBS), None)


class _StepClock:
    """on_step hook: a timestamp per optimizer step (called just before the step's optimizer update)."""

    def __init__(self):
        self.times: list[float] = []
        self.params = 0

    def __call__(self, step, model) -> None:
        self.times.append(time.perf_counter())
        self.params = self.params or sum(p.numel() for p in model.parameters())


def _setup(root: Path, videos: int, seconds: int, preset: str):
    from actbert.bench.data_loading import _tokenizer, build
    from actbert.data.corpus import CorpusConfig, NarratedCorpus
    from actbert.data.store import FeatureStore
    from actbert.model import get_preset

    if not (root / "captions.json").is_file():
        caps = build(root / "store", videos, seconds)
        (root / "captions.json").write_text(json.dumps(caps))
    caps = {k: [tuple(x) for x in v] for k, v in json.loads((root / "captions.json").read_text()).items()}
    corpus = NarratedCorpus(FeatureStore(root / "store"), caps, _FirstVerbVocab(),
                            CorpusConfig(min_window_s=8.0, max_actions=5, max_regions=36))
    tok, _name = _tokenizer()
    cfg = get_preset(preset, **DIMS, num_action_classes=len(VERBS), vocab_size=tok.vocab_size)
    return corpus, tok, cfg


def _one_run(root: Path, preset: str, steps: int, batch: int, workers: int, precision: str, warmup: int,
             videos: int, seconds: int, device: str = "cpu") -> dict:
    from actbert.training.config import TrainConfig
    from actbert.training.data import default_collator
    from actbert.training.distributed import env_world
    from actbert.training.pretrain import pretrain

    corpus, tok, cfg = _setup(root, videos, seconds, preset)
    tc = TrainConfig(steps=steps, batch_size=batch, lr=1e-4, warmup=1, eval_every=0, save_every=0, keep=1,
                     log_every=1, workers=workers, precision=precision, device=device)
    clock = _StepClock()
    rank, world, _ = env_world()
    out = Path(tempfile.mkdtemp(prefix=f"run-{preset}-", dir=root))
    try:
        res = pretrain(tc, cfg, corpus, None, tok, out, progress=False, collate_fn=default_collator(tok, cfg),
                       on_step=clock)
    finally:
        if rank == 0:
            shutil.rmtree(out, ignore_errors=True)
    t = clock.times
    timed = len(t) - 1 - warmup
    if timed < 1:
        raise ValueError(f"--steps must exceed --warmup-steps + 1 to time anything (got {steps} and {warmup})")
    return {"preset": preset, "processes": world, "threads_per_process": __import__("torch").get_num_threads(),
            "workers": workers, "precision": precision, "device": device, "global_batch": batch, "steps_timed": timed,
            "samples_per_s": batch * timed / (t[-1] - t[warmup]), "s_per_step": (t[-1] - t[warmup]) / timed,
            "data_time_share": res.data_time_share, "params_M": clock.params / 1e6}


def _ddp_worker(rank: int, world: int, port: int, kw: dict, result_path: str) -> None:
    import torch

    from actbert.training.distributed import local_env

    os.environ.update(local_env(rank, world, port))
    torch.set_num_threads(kw.pop("threads"))
    res = _one_run(**kw)
    if rank == 0:
        Path(result_path).write_text(json.dumps(res))


def _ddp(kw: dict, world: int, threads: int) -> dict:
    import torch.multiprocessing as mp

    from actbert.training.distributed import free_port

    path = Path(kw["root"]) / f"ddp-{world}.json"
    mp.spawn(_ddp_worker, args=(world, free_port(), {**kw, "threads": threads}, str(path)), nprocs=world, join=True)
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="actbert bench pretrain", description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "base"], help="model sizes to time")
    ap.add_argument("--steps", type=int, nargs="+", default=[24, 5], help="steps per preset (same order)")
    ap.add_argument("--batch-size", type=int, nargs="+", default=[32, 8], help="global batch per preset")
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], help="autocast settings to time")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers to try (1 process)")
    ap.add_argument("--threads", type=int, nargs="+", default=[0],
                    help="torch threads of the 1-process runs (0: torch's default); 1 is steadier on a busy machine")
    ap.add_argument("--warmup-steps", type=int, default=1, help="steps not timed at the start of each run")
    ap.add_argument("--videos", type=int, default=48, help="synthetic videos in the store")
    ap.add_argument("--seconds", type=int, default=60, help="length of each synthetic video")
    ap.add_argument("--ddp", action=argparse.BooleanOptionalAction, default=True,
                    help="also time tiny with 1 and 2 processes (gloo, one thread each)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto (DDP scaling always runs on CPU with gloo)")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args(argv)
    if not (len(args.presets) == len(args.steps) == len(args.batch_size)):
        ap.error("--presets, --steps and --batch-size need the same number of values")
    import torch

    default_threads = torch.get_num_threads()
    root = Path(tempfile.mkdtemp(prefix="actbert-bench-pretrain-"))
    res = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_avg_1min_before": os.getloadavg()[0],
           "runs": []}
    try:
        _setup(root, args.videos, args.seconds, "tiny")  # builds the store once
        for preset, steps, batch in zip(args.presets, args.steps, args.batch_size):
            for precision, workers, threads in itertools.product(args.precisions, args.workers, args.threads):
                torch.set_num_threads(threads or default_threads)
                r = _one_run(root, preset, steps, batch, workers, precision, args.warmup_steps, args.videos,
                             args.seconds, args.device)
                res["runs"].append(r)
                _print(r)
        torch.set_num_threads(default_threads)
        if args.ddp:
            i = args.presets.index("tiny") if "tiny" in args.presets else None
            if i is not None:
                kw = dict(root=root, preset="tiny", steps=args.steps[i], batch=args.batch_size[i], workers=0,
                          precision="fp32", warmup=args.warmup_steps, videos=args.videos, seconds=args.seconds)
                for world in (1, 2):
                    r = _ddp(kw, world, threads=1)
                    r["mode"] = "ddp-scaling"
                    res["runs"].append(r)
                    _print(r)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    res["load_avg_1min_after"] = os.getloadavg()[0]
    if args.json:
        from actbert.utils import atomic_write_json

        atomic_write_json(args.json, res)
    print(json.dumps({k: v for k, v in res.items() if k != "runs"}))
    return 0


def _print(r: dict) -> None:
    print(f"{r['preset']:5s} procs={r['processes']} threads={r['threads_per_process']} workers={r['workers']} "
          f"{r['precision']:4s} batch={r['global_batch']:3d}: {r['samples_per_s']:7.2f} samples/s "
          f"({r['s_per_step']:.2f} s/step), data {100 * r['data_time_share']:.1f} % of step time", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
