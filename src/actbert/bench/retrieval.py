"""`actbert bench retrieval`: time vs N of naive / cached exhaustive / two-stage retrieval, and R@1 lost.

Data: synthetic clips whose video features are built from their caption's words (a word → feature
prototype, plus noise), so that a model can learn the pairing. A `tiny` model is first fine-tuned on a
disjoint training set of such clips (matching with hard negatives + the contrastive loss, which trains
the first stage), then each test set of N clips is ranked by:

* ``naive``      — a full forward pass (stage 0 included) for every one of the N² pairs (the public code's way);
* ``cached``     — stage-0 states once per caption / video, N² fused pairs (`actbert.tasks.scoring`);
* ``two-stage``  — contrastive top-k per query (k = 10, 50), full model on those only.

R@1 (t2v, percent, reference ties) is measured on the same test set for every mode. With `--base-n`
the untrained `base` preset is timed too (time only: its scores are random).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from actbert.data.store_format import VideoFeatures
from actbert.tasks import retrieval as R
from actbert.tasks import scoring as S

WORDS = ("cut slice chop fry boil stir pour mix whisk bake grill peel add season roll knead onion tomato egg "
         "pasta water oil salt flour dough garlic pepper cheese butter sauce rice bread meat fish").split()


class _MemStore(dict):
    root = "<in-memory synthetic store>"


def synthetic_clips(n: int, seed: int, action_dim: int, region_dim: int, prototypes: np.ndarray,
                    noise: float = 0.5) -> tuple[list[S.Clip], _MemStore]:
    """`n` clips (one video each): 3–6 caption words; each clip / box feature = word prototypes + noise."""
    rng = np.random.default_rng(seed)
    clips, store = [], _MemStore()
    for i in range(n):
        words = rng.choice(len(WORDS), size=int(rng.integers(3, 7)), replace=False)
        vid = f"s{seed}_{i}"
        clips.append(S.Clip(vid, " ".join(WORDS[w] for w in words)))
        T, F, K = 4, 4, 4
        base = prototypes[words]  # [W, D_a + D_r]
        pick = lambda *shape: base[rng.integers(0, len(words), size=shape)]  # noqa: E731
        act = pick(T)[:, :action_dim] + noise * rng.standard_normal((T, action_dim))
        reg = pick(F, K)[..., action_dim:] + noise * rng.standard_normal((F, K, region_dim))
        boxes = np.tile(np.array([10, 10, 200, 150], np.float32), (F, K, 1))
        store[vid] = VideoFeatures(
            vid, act.astype(np.float32), np.stack([np.arange(T) * 2.0, np.arange(T) * 2.0 + 2], 1).astype(np.float32),
            reg.astype(np.float32), boxes, np.full((F, K, 5), 0.2, np.float32), np.ones((F, K), np.float32),
            np.ones((F, K), bool), (np.arange(F) * 2.0 + 1).astype(np.float32), (360, 640), float(2 * T))
    return clips, store


def _time_naive(model, tok, clips, store, batch_size) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    with S.eval_mode(model):
        ids, mask = S.tokenize(tok, [c.text for c in clips], model.config.max_text_len)
        items = S.windows_for(store, [c.window for c in clips], model.config)
        vb = S.collate_windows(items, max(x["action"].shape[0] for x in items),
                               max(x["region"].shape[0] for x in items), next(model.parameters()).device)
        n = len(clips)
        ti, vj = np.divmod(np.arange(n * n), n)
        scores = S.naive_score_pairs(model, ids, mask, vb, ti, vj, batch_size).reshape(n, n)
    return time.perf_counter() - t0, scores


def _r1(S_: np.ndarray) -> float:
    from actbert.metrics.retrieval import retrieval_metrics

    return retrieval_metrics(S_, "reference")["R1"]


def bench_sizes(model, tok, sizes, naive_max: int, ks, batch_size: int, protos, seed: int, label: str) -> list[dict]:
    rows = []
    d_a, d_r = model.config.action_feat_dim, model.config.region_feat_dim
    for n in sizes:
        clips, store = synthetic_clips(n, seed + n, d_a, d_r, protos)
        row: dict = {"model": label, "N": n, "pairs": n * n}
        if n <= naive_max:
            row["naive_s"], naive = _time_naive(model, tok, clips, store, batch_size)
            row["naive_R1"] = _r1(naive)
        t0 = time.perf_counter()
        sc = R.retrieval_scores(model, tok, clips, store, "exhaustive", batch_size=batch_size, progress=False)
        row["cached_s"], row["cached_R1"] = time.perf_counter() - t0, _r1(sc["t2v"])
        if "naive_R1" in row:
            row["naive_equals_cached"] = bool(np.allclose(naive, sc["t2v"], atol=1e-4))
        for k in ks:
            if k >= n:
                continue
            t0 = time.perf_counter()
            two = R.retrieval_scores(model, tok, clips, store, "two-stage", k=k, batch_size=batch_size,
                                     progress=False)
            row[f"two_stage_k{k}_s"], row[f"two_stage_k{k}_R1"] = time.perf_counter() - t0, _r1(two["t2v"])
            row[f"two_stage_k{k}_pairs"] = two["n_pairs_scored"]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    return rows


def to_markdown(rows: list[dict], ks) -> str:
    cols = ["model", "N", "naive_s", "cached_s"] + [f"two_stage_k{k}_s" for k in ks] + \
           ["naive_R1", "cached_R1"] + [f"two_stage_k{k}_R1" for k in ks]
    fmt = lambda v: "–" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="actbert bench retrieval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400], help="numbers of clips N to time")
    p.add_argument("--naive-max", type=int, default=200, help="largest N timed naively (N² full passes)")
    p.add_argument("--ks", type=int, nargs="+", default=[10, 50], help="two-stage re-ranking depths k")
    p.add_argument("--train-steps", type=int, default=200, help="fine-tuning steps of the tiny model first")
    p.add_argument("--train-clips", type=int, default=512, help="synthetic clips the tiny model is fine-tuned on first")
    p.add_argument("--lr", type=float, default=2e-3, help="fine-tuning learning rate")
    p.add_argument("--batch-size", type=int, default=256, help="pairs per fused batch")
    p.add_argument("--base-n", type=int, default=0, help="also time the untrained base preset at this N (0: skip)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data and model")
    p.add_argument("--out", default=None, help="write results JSON here (a .md table beside it)")
    args = p.parse_args(argv)
    from actbert.data.tokenizer import WordPieceTokenizer
    from actbert.model import ActBERTForPretraining, get_preset

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    tok = WordPieceTokenizer.train([" ".join(WORDS)] * 4, vocab_size=200, min_frequency=1)
    dims = dict(action_feat_dim=64, region_feat_dim=64, num_region_classes=5, max_actions=4, max_regions=16,
                max_text_len=12)
    protos = np.random.default_rng(args.seed).standard_normal((len(WORDS), 128)).astype(np.float32)
    model = ActBERTForPretraining(get_preset("tiny", vocab_size=len(tok), **dims))
    t0 = time.perf_counter()
    train, store = synthetic_clips(args.train_clips, args.seed + 10_000, 64, 64, protos)
    hist = R.finetune_retrieval(model, tok, train, store, batch_size=32, lr=args.lr, hard_negatives=2,
                                contrastive_weight=1.0, max_steps=args.train_steps, seed=args.seed, progress=True)
    train_s = time.perf_counter() - t0
    rows = bench_sizes(model, tok, args.sizes, args.naive_max, args.ks, args.batch_size, protos, args.seed, "tiny")
    if args.base_n:
        base = ActBERTForPretraining(get_preset("base", **{k: v for k, v in dims.items() if k != "max_text_len"}))
        rows += bench_sizes(base, tok, [args.base_n], args.base_n, [10], 64, protos, args.seed, "base (untrained)")
    result = {"rows": rows, "train_steps": len(hist), "train_seconds": train_s,
              "final_train_loss": float(np.mean([h["loss"] for h in hist[-20:]])),
              "threads": torch.get_num_threads(), "torch": torch.__version__, "args": vars(args)}
    md = to_markdown(rows, args.ks)
    print(md)
    if args.out:
        from actbert.bench import write_bench_outputs

        write_bench_outputs(args.out, result, md)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
