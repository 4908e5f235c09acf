"""`actbert bench search`: clip-search latency and memory at 1k-100k clips, and what re-ranking depth buys.

Two parts:

1. **First stage at scale.** Indexes of N synthetic L2-normalised embeddings (float16, written with the
   real `IndexWriter`, so the files are what `actbert index` writes) are searched by a fresh child process
   per (N, backend) — numpy exact streaming (`exact`, memory-mapped chunks) and `faiss` (IndexFlatIP, built
   on the first query) — which reports the median single-query latency and its memory: peak RSS
   (VmHWM) minus the RSS after opening the index. The child never imports torch, so the numbers are the
   search's own.
2. **Re-ranking depth k.** A `tiny` model is fine-tuned briefly (matching with hard negatives + the
   contrastive loss) on a synthetic world whose clip features are made of their caption's word prototypes.
   Its clips are indexed with `Pipeline.index`; every clip's caption is a query. For k in (0, 10, 50, 100):
   query time of `Pipeline.search(top_k=10, rerank=k)`, recall@10 of the returned list against the
   exhaustive full-model top 10 (every clip scored by the TNT: affordable at this size), and R@1 / R@10 of
   the clip the caption was made from.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WORDS = ("cut slice chop fry boil stir pour mix whisk bake grill peel add season roll knead onion tomato egg "
         "pasta water oil salt flour dough garlic pepper cheese butter sauce rice bread meat fish").split()


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


# --- part 1: first stage at scale --------------------------------------------------------------------------
def write_synthetic_index(out: Path, n: int, dim: int, seed: int = 0, chunk_rows: int = 32768,
                          dtype: str = "float16") -> None:
    """An index folder of `n` random unit embeddings (no store: first-stage benchmarking only)."""
    from actbert.api.index import IndexWriter

    rng = np.random.default_rng(seed)
    w = IndexWriter(out, dim, chunk_rows=chunk_rows, dtype=dtype, overwrite=True)
    for lo in range(0, n, 4096):  # like Pipeline.index: one batch of rows in memory at a time
        m = min(4096, n - lo)
        e = rng.standard_normal((m, dim)).astype(np.float32)
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        w.add(f"vid{lo // 4096:05d}", [(float(i), float(i) + 8) for i in range(m)], e)
    w.close({"store": "none", "model_source": "<synthetic>"})


def child_search(index_dir: str, backend: str, queries: int, top_k: int, seed: int) -> dict:
    """Run in a fresh process: open the index, time `queries` single-query searches, report memory."""
    from actbert.api.index import ClipIndex

    idx = ClipIndex(index_dir)
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((queries + 1, idx.dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    base = _rss_kib("VmRSS")
    t0 = time.perf_counter()
    idx.search(q[:1], top_k, backend)  # faiss: builds the flat index here; exact: warms the page cache
    first = time.perf_counter() - t0
    times = []
    for i in range(1, queries + 1):
        t0 = time.perf_counter()
        idx.search(q[i:i + 1], top_k, backend)
        times.append(time.perf_counter() - t0)
    return {"n_clips": idx.n_clips, "backend": backend, "first_query_s": first,
            "median_ms": 1000 * float(np.median(times)), "p90_ms": 1000 * float(np.percentile(times, 90)),
            "peak_extra_mib": (_rss_kib("VmHWM") - base) / 1024, "rss_after_open_mib": base / 1024}


def first_stage_scale(sizes, dim: int, backends, dtypes, queries: int, top_k: int, workdir: Path) -> list[dict]:
    """One row per (N, stored dtype, backend); faiss holds float32 in RAM whatever is stored: first dtype only."""
    rows = []
    for n in sizes:
        for di, dtype in enumerate(dtypes):
            path = workdir / f"synthetic_{n}_{dtype}"
            t0 = time.perf_counter()
            write_synthetic_index(path, n, dim, dtype=dtype)
            write_s = time.perf_counter() - t0
            for backend in backends:
                if backend == "faiss" and di > 0:
                    continue
                cmd = [sys.executable, "-m", "actbert.bench.search", "--child", str(path), backend, str(queries),
                       str(top_k)]
                res = subprocess.run(cmd, capture_output=True, text=True,
                                     env={**os.environ, "OMP_NUM_THREADS": "1"})  # one core: compare like for like
                if res.returncode != 0:
                    rows.append({"n_clips": n, "dtype": dtype, "backend": backend,
                                 "error": (res.stderr.strip().splitlines() or ["?"])[-1]})
                    continue
                row = {"dtype": dtype, **json.loads(res.stdout.strip().splitlines()[-1]), "index_write_s": write_s}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
            shutil.rmtree(path)  # 100k x 256 float32 is 100 MB: keep the temp folder small
    return rows


# --- part 2: re-ranking depth ------------------------------------------------------------------------------
def _world(n_videos: int, windows: int, dim_a: int, dim_r: int, seed: int):
    """Videos of `windows` 8-s windows; each window's clips / boxes are prototypes of its 2 caption words."""
    from actbert.data.store_format import VideoFeatures
    from actbert.tasks.scoring import Clip

    rng = np.random.default_rng(seed)
    protos = rng.standard_normal((len(WORDS), dim_a + dim_r)).astype(np.float32)
    videos, clips = [], []
    for v in range(n_videos):
        T = 4 * windows  # clips of 2 s
        words = [rng.choice(len(WORDS), 2, replace=False) for _ in range(windows)]
        act = np.stack([protos[words[t // 4][t % 2], :dim_a] for t in range(T)]) + 0.5 * rng.standard_normal((T, dim_a))
        reg = np.stack([protos[words[t // 4][rng.integers(0, 2, 3)], dim_a:] for t in range(T)])
        reg = reg + 0.5 * rng.standard_normal(reg.shape)
        st = np.arange(T, dtype=np.float32) * 2
        vid = f"v{v:04d}"
        videos.append(VideoFeatures(vid, act.astype(np.float32), np.stack([st, st + 2], 1), reg.astype(np.float32),
                                    np.tile(np.array([10, 10, 200, 150], np.float32), (T, 3, 1)),
                                    np.full((T, 3, 5), 0.2, np.float32), np.ones((T, 3), np.float32),
                                    np.ones((T, 3), bool), st + 1, (360, 640), float(2 * T)))
        clips += [Clip(vid, " ".join(WORDS[i] for i in words[w]), 8.0 * w, 8.0 * (w + 1)) for w in range(windows)]
    return videos, clips


def rerank_tradeoff(n_videos: int, windows: int, ks, train_steps: int, queries: int, workdir: Path,
                    seed: int = 0) -> dict:
    import torch

    from actbert.api import Pipeline
    from actbert.data.store import StoreWriter
    from actbert.data.tokenizer import WordPieceTokenizer
    from actbert.model import ActBERTForPretraining, get_preset
    from actbert.tasks import scoring as S
    from actbert.tasks.retrieval import finetune_retrieval

    videos, clips = _world(n_videos, windows, 32, 32, seed)
    with StoreWriter(workdir / "store") as w:
        for v in videos:
            w.add(v)
    tok = WordPieceTokenizer.train([" ".join(WORDS)] * 3, vocab_size=200, min_frequency=1)
    torch.manual_seed(seed)
    model = ActBERTForPretraining(get_preset("tiny", vocab_size=tok.vocab_size, action_feat_dim=32,
                                             region_feat_dim=32, num_region_classes=5, max_actions=4,
                                             max_regions=8, max_text_len=8))
    t0 = time.perf_counter()
    store = {v.video_id: v for v in videos}
    finetune_retrieval(model, tok, clips, _Mem(store), batch_size=32, lr=1e-3, hard_negatives=2,
                       contrastive_weight=1.0, max_steps=train_steps, seed=seed, progress=False)
    train_s = time.perf_counter() - t0
    model.save_pretrained(workdir / "ckpt", tokenizer=tok)
    pipe = Pipeline(str(workdir / "ckpt"), batch_size=128)
    t0 = time.perf_counter()
    idx = pipe.index(workdir / "store", out=workdir / "index", clip_seconds=8.0, progress=False)
    index_s = time.perf_counter() - t0
    order = list(idx.iter_clips())
    pos = {c: i for i, c in enumerate(order)}
    rng = np.random.default_rng(seed)
    qs = [clips[i] for i in rng.choice(len(clips), min(queries, len(clips)), replace=False)]
    with torch.no_grad():  # exhaustive reference: every clip through the full model, per query
        video = S.encode_windows(model, S.windows_for(idx.store(), order, model.config), 256)
        ids, mask = S.tokenize(tok, [q.text for q in qs], model.config.max_text_len)
        text = S.encode_texts(model, ids, mask)
        t0 = time.perf_counter()
        full = S.score_matrix(model, text, video, 512)
        exhaustive_ms = 1000 * (time.perf_counter() - t0) / len(qs)
    ref_order = [np.argsort(-row, kind="stable") for row in full]
    ref_top = [set(o[:10].tolist()) for o in ref_order]
    rows = []
    for k in ks:
        times, rec, agree1, r1, r10 = [], [], [], [], []
        for qi, q in enumerate(qs):
            t0 = time.perf_counter()
            hits = pipe.search(q.text, top_k=10, rerank=k)
            times.append(time.perf_counter() - t0)
            got = [pos[(h.video, h.start, h.end)] for h in hits]
            rec.append(len(set(got) & ref_top[qi]) / 10)
            agree1.append(got[0] == ref_order[qi][0])
            r1.append(got[0] == pos[q.window])
            r10.append(pos[q.window] in got)
        rows.append({"k": k, "median_ms": 1000 * float(np.median(times)), "recall@10_vs_exhaustive": float(np.mean(rec)),
                     "top1_equals_exhaustive": float(np.mean(agree1)),
                     "R@1_true_clip": 100 * float(np.mean(r1)), "R@10_true_clip": 100 * float(np.mean(r10))})
        print(json.dumps(rows[-1]), file=sys.stderr)
    ex_r1 = [int(np.argmax(full[i])) == pos[q.window] for i, q in enumerate(qs)]
    return {"clips": idx.n_clips, "queries": len(qs), "train_steps": train_steps, "train_s": train_s,
            "index_s": index_s, "exhaustive_ms_per_query": exhaustive_ms,
            "exhaustive_R@1_true_clip": 100 * float(np.mean(ex_r1)), "rows": rows}


class _Mem(dict):
    root = "<in-memory synthetic store>"


def to_markdown(result: dict) -> str:
    out = ["| clips | stored | backend | median ms / query | p90 ms | first query s | peak extra RSS MiB |",
           "|---|---|---|---|---|---|---|"]
    for r in result["first_stage"]:
        head = f"| {r['n_clips']} | {r['dtype']} | {r['backend']} |"
        if "error" in r:
            out.append(f"{head} error: {r['error']} | | | |")
        else:
            out.append(f"{head} {r['median_ms']:.2f} | {r['p90_ms']:.2f} | {r['first_query_s']:.3f} | "
                       f"{r['peak_extra_mib']:.1f} |")
    rr = result.get("rerank")
    if rr:
        out += ["", f"re-ranking on {rr['clips']} clips, {rr['queries']} queries (exhaustive: "
                    f"{rr['exhaustive_ms_per_query']:.0f} ms / query, true-clip R@1 {rr['exhaustive_R@1_true_clip']:.1f} %)", "",
                "| k | median ms / query | recall@10 vs exhaustive | top-1 = exhaustive top-1 | true clip R@1 % | "
                "true clip R@10 % |", "|---|---|---|---|---|---|"]
        out += [f"| {r['k']} | {r['median_ms']:.1f} | {r['recall@10_vs_exhaustive']:.3f} | "
                f"{r['top1_equals_exhaustive']:.3f} | {r['R@1_true_clip']:.1f} | {r['R@10_true_clip']:.1f} |"
                for r in rr["rows"]]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:  # internal: one measurement in a fresh process
        print(json.dumps(child_search(argv[1], argv[2], int(argv[3]), int(argv[4]), seed=1)))
        return 0
    p = argparse.ArgumentParser(prog="actbert bench search", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000], help="indexed clips")
    p.add_argument("--dim", type=int, default=256, help="embedding dim (base preset's contrastive_dim)")
    p.add_argument("--backends", nargs="+", default=["exact", "faiss"], help="first-stage backends")
    p.add_argument("--dtypes", nargs="+", default=["float16", "float32"], help="stored embedding dtypes")
    p.add_argument("--queries", type=int, default=30, help="timed single queries per (size, backend)")
    p.add_argument("--top-k", type=int, default=100, help="first-stage candidates per query")
    p.add_argument("--rerank-videos", type=int, default=100, help="videos of the re-ranking world (0: skip part 2)")
    p.add_argument("--rerank-windows", type=int, default=4, help="8-s clips per video in the re-ranking world")
    p.add_argument("--ks", type=int, nargs="+", default=[0, 10, 50, 100], help="re-ranking depths")
    p.add_argument("--rerank-queries", type=int, default=40, help="queries of the re-ranking-depth experiment")
    p.add_argument("--train-steps", type=int, default=150, help="training steps of the tiny model used for re-ranking")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (part 2)")
    p.add_argument("--out", default=None, help="write results JSON here (a .md table beside it)")
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    result: dict = {"args": vars(args), "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="actbert-bench-search-") as tmp:
        result["first_stage"] = first_stage_scale(args.sizes, args.dim, args.backends, args.dtypes, args.queries,
                                                  args.top_k, Path(tmp))
        if args.rerank_videos:
            (Path(tmp) / "rerank").mkdir()
            result["rerank"] = rerank_tradeoff(args.rerank_videos, args.rerank_windows, args.ks, args.train_steps,
                                               args.rerank_queries, Path(tmp) / "rerank")
    md = to_markdown(result)
    print(md)
    if args.out:
        from actbert.bench import write_bench_outputs

        write_bench_outputs(args.out, result, md)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
