"""`actbert evaluate retrieval --format paddlevideo-lmdb`: PaddleVideo's MSR-VTT test, on our model."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def run_paddlevideo_retrieval(args: argparse.Namespace) -> int:
    from actbert.interop import paddlevideo_msrvtt as P
    from actbert.tasks import scoring as S
    from actbert.tasks.results import write_results
    from actbert.utils import atomic_path

    missing = [f"--{n}" for n in ("model", "csv", "features") if not getattr(args, n)]
    if missing:
        print(f"actbert evaluate retrieval: --format paddlevideo-lmdb needs {', '.join(missing)}", file=sys.stderr)
        return 2
    model = S.load_model(args.model, args.device)
    tokenizer = S.load_tokenizer(args.model, args.tokenizer)
    rows = P.read_paddle_csv(args.csv)
    if args.limit:
        rows = rows[:args.limit]
    features = P.PaddleFeatureLMDB(args.features, model.config.region_feat_dim, model.config.action_feat_dim)
    scores = P.score_matrix(model, tokenizer, rows, features, args.batch_size, not args.no_progress)
    ranks = P.paddle_ranks(scores, rows)
    metrics = {**P.paddle_metrics(ranks), "n_captions": len(rows), "ranks": ranks.tolist()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "scores.npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, scores)
    protocol = ("PaddleVideo MSRVTTDataset + test_step + MSRVTTMetric: softmax(match)[matched], rank of the first "
                "true video in argsort(-score), MedR = floor(median+1), MeanR = mean+1")
    split = "test" if not args.limit else f"test[:{args.limit}]"
    write_results(out, "retrieval", "msrvtt (paddlevideo-lmdb)", protocol, split, metrics, str(args.model),
                  S.run_config(args))
    print(f"msrvtt (paddlevideo-lmdb) {split}: R@1 {metrics['R@1']:.2f} R@5 {metrics['R@5']:.2f} "
          f"R@10 {metrics['R@10']:.2f} MedR {metrics['MedR']:.0f} MeanR {metrics['MeanR']:.2f} "
          f"({len(rows)} captions x {len(rows)} videos) -> {out / 'results.json'}")
    return 0
