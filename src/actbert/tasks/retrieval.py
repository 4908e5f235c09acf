"""Text→video retrieval (YouCook2 val csv, MSR-VTT 1k-A): zero-shot / fine-tuned, exhaustive or two-stage.

Score = the matching head's log P(matched) (`model.score_pairs`). Query `i` is row `i` of the csv and its
true video is gallery column `i` (file order, protocols.md); identical windows / captions are encoded once
and share their cached state, so duplicated rows cost nothing and tie exactly as in HowTo100M's code.

Modes:
* ``exhaustive`` — every (caption, video) pair through the fused layers, from cached stage-0 states.
* ``two-stage`` — the contrastive embeddings of the stage-0 streams (`model.embed_text/embed_video`) rank the
  whole gallery; the full model re-scores the top `k` of each query. Final order of a row: the `k`
  re-ranked items by full-model score, then every other item in its first-stage order. The same is done
  per video for video→text (top `k` captions per video), each pair scored once. With `k` = gallery size
  the ranking is exactly the exhaustive one. Only useful with a checkpoint pre-trained with
  ``loss_weights["contrastive"] > 0`` (otherwise the first stage is a random projection).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from actbert.tasks import scoring as S
from actbert.tasks.scoring import Clip

__all__ = ["retrieval_scores", "evaluate_retrieval", "first_stage_topk", "two_stage_matrix", "finetune_retrieval",
           "load_clips", "add_evaluate_arguments", "run_evaluate", "add_finetune_arguments", "run_finetune"]

MODES = ("exhaustive", "two-stage")


# --- first stage + re-ranking ------------------------------------------------------------------------------
def first_stage_topk(sim: np.ndarray, k: int, index: str = "exact", q_emb=None, g_emb=None) -> np.ndarray:
    """Top-`k` gallery columns per row of `sim` [Q, G] (best first).

    ``exact``: argsort of the similarity rows (torch.topk). ``faiss``: an exact inner-product index
    (IndexFlatIP) over `g_emb`, searched with `q_emb` — the same answer, the path to a large gallery.
    """
    k = min(int(k), sim.shape[1])
    if index == "faiss":
        try:
            import faiss
        except ImportError:
            raise RuntimeError("index='faiss' needs faiss-cpu (pip install 'actbert[faiss]')") from None
        idx = faiss.IndexFlatIP(g_emb.shape[1])
        idx.add(np.ascontiguousarray(g_emb, dtype=np.float32))
        return idx.search(np.ascontiguousarray(q_emb, dtype=np.float32), k)[1].astype(np.int64)
    if index != "exact":
        raise ValueError(f"index must be 'exact' or 'faiss', got {index!r}")
    return torch.topk(torch.from_numpy(sim), k, dim=1).indices.numpy()


def two_stage_matrix(sim: np.ndarray, top: np.ndarray, full: np.ndarray) -> np.ndarray:
    """Composite scores whose row order is: re-ranked top items by `full`, then the rest by `sim`.

    `top` [Q, k] are the re-ranked columns, `full` [Q, k] their full-model scores. Re-ranked scores are
    shifted per row above every first-stage score of that row (a per-row affine shift keeps their order
    and ties exactly); the metrics then read ranks off this matrix like any other.
    """
    out = sim.astype(np.float64).copy()
    rows = np.arange(sim.shape[0])[:, None]
    reranked = np.zeros(sim.shape, dtype=bool)
    reranked[rows, top] = True
    rest_max = np.where(reranked, -np.inf, out).max(axis=1, initial=-np.inf)
    rest_max = np.where(np.isfinite(rest_max), rest_max, 0.0)
    out[rows, top] = full - full.min(axis=1, keepdims=True) + rest_max[:, None] + 1.0
    return out


def _encode(model, tokenizer, clips: Sequence[Clip], store, batch_size: int, progress: bool):
    """Cached states of the unique captions / windows, and the row → unique maps."""
    texts, t_map = np.unique([c.text for c in clips], return_inverse=True)
    windows = list(dict.fromkeys(c.window for c in clips))
    w_pos = {w: i for i, w in enumerate(windows)}
    v_map = np.array([w_pos[c.window] for c in clips], dtype=np.int64)
    cfg = model.config
    ids, mask = S.tokenize(tokenizer, list(texts), cfg.max_text_len)
    text = S.encode_texts(model, ids, mask, batch_size, progress)
    video = S.encode_windows(model, S.windows_for(store, windows, cfg, "retrieval clips"), batch_size, progress)
    return text, video, t_map.reshape(-1), v_map


def retrieval_scores(model, tokenizer, clips: Sequence[Clip], store, mode: str = "exhaustive", k: int = 50,
                     index: str = "exact", batch_size: int = 256, progress: bool = True) -> dict:
    """Score matrices of `clips` (query i ↔ gallery column i): ``t2v`` [N, N] and ``v2t`` [N, N].

    ``t2v[i, j]`` ranks video j for caption i; ``v2t[j, i]`` ranks caption i for video j (the transpose
    of ``t2v`` in exhaustive mode). Also returns ``n_pairs_scored`` and ``seconds`` (encode / score), and
    in two-stage mode ``first_stage_t2v``: the contrastive similarities alone [N, N].
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if len(clips) == 0:
        raise ValueError("no clip to retrieve")
    extra: dict = {}
    with S.eval_mode(model):
        t0 = time.perf_counter()
        text, video, t_map, v_map = _encode(model, tokenizer, clips, store, batch_size, progress)
        t1 = time.perf_counter()
        if mode == "exhaustive":
            U = S.score_matrix(model, text, video, batch_size, progress)  # [unique texts, unique windows]
            t2v = U[t_map][:, v_map]
            v2t, n_pairs = t2v.T.copy(), U.size
        else:
            with torch.no_grad():
                te = model.embed_text(text).float().cpu().numpy()
                ve = model.embed_video(video).float().cpu().numpy()
            sim = te[t_map] @ ve[v_map].T  # [N, N] first stage, rows = queries in file order
            top_t = first_stage_topk(sim, k, index, te[t_map], ve[v_map])
            top_v = first_stage_topk(sim.T.copy(), k, index, ve[v_map], te[t_map])
            # the union of both directions' candidates, in unique (text, window) terms, each scored once
            n = len(clips)
            pairs_t = np.stack([np.repeat(np.arange(n), top_t.shape[1]), top_t.reshape(-1)], 1)
            pairs_v = np.stack([top_v.reshape(-1), np.repeat(np.arange(n), top_v.shape[1])], 1)
            uniq = np.unique(np.stack([t_map[np.r_[pairs_t[:, 0], pairs_v[:, 0]]],
                                       v_map[np.r_[pairs_t[:, 1], pairs_v[:, 1]]]], 1), axis=0)
            scores = S.score_pairs(model, text, video, uniq[:, 0], uniq[:, 1], batch_size, progress)
            lookup = {(int(a), int(b)): s for (a, b), s in zip(uniq, scores)}
            full_t = np.array([lookup[(int(t_map[i]), int(v_map[j]))] for i, j in pairs_t]).reshape(top_t.shape)
            full_v = np.array([lookup[(int(t_map[i]), int(v_map[j]))] for i, j in pairs_v]).reshape(top_v.shape)
            t2v = two_stage_matrix(sim, top_t, full_t)
            v2t = two_stage_matrix(sim.T, top_v, full_v)
            n_pairs = len(uniq)
            extra["first_stage_t2v"] = sim
        t2 = time.perf_counter()
    return {"t2v": S.finite_or_raise(t2v, "t2v scores"), "v2t": S.finite_or_raise(v2t, "v2t scores"),
            "n_pairs_scored": int(n_pairs), "n_unique_texts": len(text), "n_unique_videos": len(video),
            "seconds": {"encode": t1 - t0, "score": t2 - t1}, **extra}


def evaluate_retrieval(model, tokenizer, clips: Sequence[Clip], store, mode: str = "exhaustive", k: int = 50,
                       index: str = "exact", tie_policy: str = "reference", batch_size: int = 256,
                       progress: bool = True) -> dict:
    """R@1/5/10, MedR, MeanR in both directions (``t2v``; ``v2t`` labelled), plus how they were computed."""
    from actbert.metrics.retrieval import retrieval_metrics

    sc = retrieval_scores(model, tokenizer, clips, store, mode, k, index, batch_size, progress)
    out = {"t2v": retrieval_metrics(sc["t2v"], tie_policy, direction="t2v"),
           "v2t": retrieval_metrics(sc["v2t"], tie_policy, direction="v2t"),
           "mode": mode, "tie_policy": tie_policy, "n_clips": len(clips),
           "n_pairs_scored": sc["n_pairs_scored"], "n_unique_videos": sc["n_unique_videos"],
           "n_unique_texts": sc["n_unique_texts"], "seconds": sc["seconds"]}
    if mode == "two-stage":
        out.update(k=int(min(k, len(clips))), first_stage_index=index)
    return out


# --- fine-tuning: matching CE with in-batch hard negatives -------------------------------------------------
def finetune_retrieval(model, tokenizer, clips: Sequence[Clip], store, epochs: int = 1, batch_size: int = 32,
                       lr: float = 2e-5, hard_negatives: int = 1, contrastive_weight: float = 0.0,
                       weight_decay: float = 0.01, seed: int = 0, max_steps: int | None = None,
                       progress: bool = True) -> list[dict]:
    """Fine-tune `model` in place on (caption, window) pairs; returns the per-step loss history.

    Each step: stage-0 states of the B captions and B windows; every B×B pair is scored without
    gradients by the current model; for each caption the `hard_negatives` highest-scoring windows of
    other videos become negatives. Loss = cross-entropy of the matching head on the B positives and
    B×h hard negatives, + `contrastive_weight` × the symmetric InfoNCE of the contrastive embeddings.
    `max_steps`, when given, replaces `epochs` as the length of the run (the data is cycled).
    """
    from actbert.model.losses import contrastive_loss

    if len(clips) < 2:
        raise ValueError(f"fine-tuning needs at least 2 training clips, got {len(clips)}")
    cfg = model.config
    dev = next(model.parameters()).device
    windows = list(dict.fromkeys(c.window for c in clips))
    w_pos = {w: i for i, w in enumerate(windows)}
    inputs = S.windows_for(store, windows, cfg, "training clips")
    n_a = max(1, max(x["action"].shape[0] for x in inputs))
    n_r = max(1, max(x["region"].shape[0] for x in inputs))
    ids, mask = S.tokenize(tokenizer, [c.text for c in clips], cfg.max_text_len)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = max(1, len(clips) // batch_size) if len(clips) >= batch_size else 1
    total = epochs * steps_per_epoch if max_steps is None else int(max_steps)  # max_steps overrides epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / max(1, total)))
    history: list[dict] = []
    model.train()
    bar = tqdm(total=total, desc="finetune retrieval", disable=not progress)
    epoch = 0
    while len(history) < total:
        order = torch.randperm(len(clips), generator=gen).tolist()
        for b in range(steps_per_epoch):
            if len(history) >= total:
                break
            rows = order[b * batch_size:(b + 1) * batch_size]
            w_idx = [w_pos[clips[r].window] for r in rows]
            vb = S.collate_windows([inputs[w] for w in w_idx], n_a, n_r, dev)
            text = model.actbert.encode_text(ids[rows].to(dev), mask[rows].to(dev))
            video = model.actbert.encode_video(vb["action_feats"], vb["action_mask"], vb["region_feats"],
                                               vb["region_loc"], vb["region_mask"], vb["region_frame"])
            B = len(rows)
            vids = np.array([clips[r].video_id for r in rows])
            same = torch.from_numpy(vids[:, None] == vids[None, :])  # a window of the same video is no negative
            h = min(hard_negatives, int((~same).sum(1).min()))
            ti, vj = [torch.arange(B)], [torch.arange(B)]
            if h > 0:
                with torch.no_grad():
                    tt, vv = (torch.arange(B).repeat_interleave(B), torch.arange(B).repeat(B))
                    mined = model.score_pairs(_detach(text).index(tt), _detach(video).index(vv)).view(B, B)
                    hard = mined.masked_fill(same.to(mined.device), -float("inf")).topk(h, dim=1).indices.cpu()
                ti.append(torch.arange(B).repeat_interleave(h))
                vj.append(hard.reshape(-1))
            ti_all, vj_all = torch.cat(ti), torch.cat(vj)
            labels = torch.cat([torch.ones(B), torch.zeros(len(ti_all) - B)]).long().to(dev)
            logits = model.match_logits(model.actbert.fuse(text.index(ti_all), video.index(vj_all)))
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
            rec = {"step": len(history), "epoch": epoch, "match": loss.item()}
            if contrastive_weight > 0:
                first = torch.from_numpy(np.unique(vids, return_index=True)[1]).to(dev)  # one caption per video
                keep = torch.zeros(B, dtype=torch.bool, device=dev).index_fill_(0, first, True)
                c = contrastive_loss(model.embed_text(text), model.embed_video(video),
                                     model.contrastive_head.logit_scale, keep)
                loss = loss + contrastive_weight * c
                rec["contrastive"] = c.item()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite fine-tuning loss at step {len(history)}: {rec}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            rec["loss"] = loss.item()
            history.append(rec)
            bar.update(1)
            bar.set_postfix(loss=f"{rec['loss']:.3f}")
        epoch += 1
    bar.close()
    model.eval()
    return history


def _detach(state):
    from dataclasses import fields, replace

    return replace(state, **{f.name: getattr(state, f.name).detach() for f in fields(state)})


# --- annotation files -> clips -----------------------------------------------------------------------------
def load_clips(dataset: str, path, ids_path=None, subset: str | None = None) -> list[Clip]:
    """Clips of a benchmark file, in file order.

    ``youcook2`` + a retrieval csv (end,start,task,text,video_id) → one windowed clip per row;
    ``youcook2`` + the annotations json → every clip of `subset` (default "training");
    ``msrvtt`` + the 1k-A csv → one whole-video clip per row;
    ``msrvtt`` + MSRVTT_data.json → every caption of the videos in `ids_path` (or of split `subset`, default "train").
    """
    from actbert.data import formats as F

    p = str(path)
    if dataset == "youcook2":
        if p.endswith(".csv"):
            return [Clip(r.video_id, r.text, r.start, r.end) for r in F.read_youcook2_csv(path)]
        vids = F.read_youcook2(path, subset=subset or "training")
        return [Clip(c.video_id, c.sentence, c.start, c.end) for v in vids.values() for c in v.clips]
    if dataset == "msrvtt":
        if p.endswith(".csv"):
            return [Clip(r.video_id, r.sentence) for r in F.read_msrvtt_csv(path)]
        data = F.read_msrvtt_json(path)
        keep = set(F.read_msrvtt_ids(ids_path)) if ids_path else {v for v, r in data.videos.items()
                                                                   if r.split == (subset or "train")}
        return [Clip(s.video_id, s.caption) for s in data.sentences if s.video_id in keep]
    raise ValueError(f"unknown retrieval dataset {dataset!r}; known: youcook2, msrvtt")


PROTOCOLS = {"youcook2": "HowTo100M/MIL-NCE YouCook2 val csv, file order", "msrvtt": "MSR-VTT 1k-A csv, file order"}


# --- command line ------------------------------------------------------------------------------------------
def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Text→video retrieval: R@1/5/10, median / mean rank, both directions, with the "
                          "matching head's log P(matched) as the score.")
    S.add_common_arguments(parser, store_required=False)
    parser.add_argument("--format", choices=("store", "paddlevideo-lmdb"), default="store",
                        help="store: our feature store (--store) and a benchmark csv (--dataset, --annotations); "
                             "paddlevideo-lmdb: PaddleVideo's MSR-VTT protocol on its feature LMDB (--csv, --features)")
    parser.add_argument("--dataset", choices=sorted(PROTOCOLS), help="format store: which test protocol: file order and caption column of that benchmark's csv")
    parser.add_argument("--annotations", help="format store: the test csv (YouCook2 val csv or MSR-VTT 1k-A csv)")
    g = parser.add_argument_group("format paddlevideo-lmdb (docs/paddlevideo.md)")
    g.add_argument("--csv", help="PaddleVideo's test csv: 'video_id,caption' lines, no header")
    g.add_argument("--features", help="PaddleVideo's feature LMDB folder (e.g. msrvtt_test.lmdb); opened read-only")
    parser.add_argument("--mode", choices=MODES, default="exhaustive", help="exhaustive: every (caption, video) pair through the full model; two-stage: contrastive top-k, then re-rank")
    from actbert.cli.options import deprecated, flag

    flag(parser, "--rerank", "--k", type=int, default=50, metavar="K",
         help="two-stage: first-stage candidates re-ranked by the full model per query")
    parser.add_argument("--faiss", action="store_true",
                        help="two-stage: first stage with a faiss flat inner-product index (exact numpy by default)")
    deprecated(parser, "--index", "--faiss", "first_stage", choices=("exact", "faiss"))
    parser.add_argument("--tie-policy", choices=("reference", "optimistic", "pessimistic", "mean"), default="reference", help="how tied scores are ranked (reference = HowTo100M's compute_metrics)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows (a smoke test, labelled)")


def _evaluate_and_write(model, tokenizer, store, args, checkpoint, extra_config=None) -> dict:
    from actbert.tasks.results import write_results

    clips = load_clips(args.dataset, args.annotations)
    split = "test" if args.dataset == "msrvtt" else "val"
    if args.limit:
        clips, split = clips[:args.limit], f"{split}[:{args.limit}]"
    m = evaluate_retrieval(model, tokenizer, clips, store, args.mode, args.rerank, _first_stage(args), args.tie_policy,
                           args.batch_size, not args.no_progress)
    protocol = PROTOCOLS[args.dataset] + f"; {args.mode}" + (f" k={m['k']}" if args.mode == "two-stage" else "")
    write_results(args.out, "retrieval", args.dataset, protocol, split, m, checkpoint,
                  {**S.run_config(args), **(extra_config or {})})
    t = m["t2v"]
    print(f"{args.dataset} {split} t2v R@1 {t['R1']:.2f} R@5 {t['R5']:.2f} R@10 {t['R10']:.2f} MedR {t['MedR']} "
          f"({m['tie_policy']} ties) -> {args.out}")
    return m


def _first_stage(args: argparse.Namespace) -> str:
    return "faiss" if args.faiss or getattr(args, "first_stage", "exact") == "faiss" else "exact"


def run_evaluate(args: argparse.Namespace) -> int:
    from actbert.data.store import FeatureStore

    if args.format == "paddlevideo-lmdb":
        from actbert.interop.evaluate import run_paddlevideo_retrieval

        return run_paddlevideo_retrieval(args)
    if not _store_arguments_given(args, "evaluate"):
        return 2
    model = S.load_model(args.model, args.device)
    tokenizer = S.load_tokenizer(args.model, args.tokenizer)
    _evaluate_and_write(model, tokenizer, FeatureStore(args.store), args, str(args.model))
    return 0


def add_finetune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Fine-tune retrieval: matching cross-entropy with in-batch hard negatives "
                           "(+ optional contrastive loss); then evaluate on a held-out test file only.")
    add_evaluate_arguments(parser)
    parser.description = ("Fine-tune retrieval: matching cross-entropy with in-batch hard negatives "
                          "(+ optional contrastive loss); then evaluate on the held-out --annotations file.")
    g = parser.add_argument_group("fine-tuning")
    g.add_argument("--train-annotations", required=True,
                   help="youcook2: youcookii_annotations_trainval.json (training subset); msrvtt: MSRVTT_data.json")
    g.add_argument("--train-ids", default=None, help="msrvtt: training video-id list (e.g. MSRVTT_train.9k.csv)")
    g.add_argument("--epochs", type=int, default=1, help="passes over the training clips")
    g.add_argument("--train-batch-size", type=int, default=32, help="clips per training step (in-batch negatives)")
    g.add_argument("--lr", type=float, default=2e-5, help="learning rate")
    g.add_argument("--hard-negatives", type=int, default=1, help="hardest in-batch wrong videos per caption added to the matching loss")
    g.add_argument("--contrastive-weight", type=float, default=0.0, help="weight of the contrastive loss (trains the two-stage first stage)")
    g.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps (default: all epochs)")
    g.add_argument("--seed", type=int, default=0, help="seed of data order")


def _store_arguments_given(args: argparse.Namespace, action: str) -> bool:
    if action == "finetune" and args.format != "store":
        print("actbert finetune retrieval: only --format store trains (PaddleVideo's LMDB is a test set)",
              file=sys.stderr)
        return False
    missing = [f"--{n}" for n in ("store", "dataset", "annotations") if not getattr(args, n)]
    if missing:
        print(f"actbert {action} retrieval: --format store needs {', '.join(missing)}", file=sys.stderr)
    return not missing


def run_finetune(args: argparse.Namespace) -> int:
    from actbert.data.store import FeatureStore
    from actbert.utils import atomic_write_json, seed_everything

    if not _store_arguments_given(args, "finetune"):
        return 2
    seed_everything(args.seed)
    store = FeatureStore(args.store)
    model = S.load_model(args.model, args.device)
    tokenizer = S.load_tokenizer(args.model, args.tokenizer)
    train = load_clips(args.dataset, args.train_annotations, args.train_ids)
    test_videos = {c.video_id for c in load_clips(args.dataset, args.annotations)}
    leak = sorted({c.video_id for c in train} & test_videos)
    if leak:  # a test score must never come from training videos
        raise ValueError(f"{len(leak)} video(s) of the test file {args.annotations} are also in the training "
                         f"data {args.train_annotations}: {leak[:5]}")
    history = finetune_retrieval(model, tokenizer, train, store, args.epochs, args.train_batch_size, args.lr,
                                 args.hard_negatives, args.contrastive_weight, seed=args.seed,
                                 max_steps=args.max_steps, progress=not args.no_progress)
    model_dir = model.save_pretrained(Path(args.out) / "model", tokenizer=tokenizer)
    atomic_write_json(Path(model_dir) / "finetune_history.json", history)
    _evaluate_and_write(model, tokenizer, store, args, str(model_dir),
                        {"finetuned_from": str(args.model), "train_clips": len(train), "steps": len(history)})
    return 0
