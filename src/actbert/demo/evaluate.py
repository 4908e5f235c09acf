"""The demo's evaluations: every number on the world's TEST videos, each with its chance level.

Zero-shot (every pre-training variant and the no-pre-training model): text->video retrieval on
`youcook2_val.csv`, multiple-choice QA on `msrvtt_mc.jsonl`, CrossTask step localization on
`videos_val.csv` (= the test videos, docs/world.md), and masked-action accuracy on the test videos'
narration windows. Fine-tuned (pre-trained vs no pre-training only, to fit the time budget): retrieval,
captioning and segmentation, trained on the TRAIN split's annotations and evaluated on the test split.
"""
from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from actbert.demo.config import SCRATCH, DemoConfig
from actbert.demo.steps import Stages, load_variant

TIE_POLICY = "mean"  # an untrained model that scores everything alike gets chance, not a lucky R@1
# Zero-shot retrieval ranks with both retrieval objectives pre-training trains: the contrastive embeddings
# shortlist, the matching head (a cross-encoder) reranks the shortlist, as ALBEF / BLIP retrieve. The
# report gives each scorer's R@1 alone too. Fine-tuned retrieval, which trains the matching head on
# all pairs, is scored exhaustively.
ZERO_SHOT_MODE, ZERO_SHOT_K = "two-stage", 10


def _context(out: Path):
    from actbert.data.store import FeatureStore
    from actbert.world import load_world

    return load_world(out / "world"), FeatureStore(out / "store")


def retrieval(model, tok, world, store, mode: str = "exhaustive") -> dict:
    """t2v / v2t metrics on the test csv, the per-query ranks (for the histogram) and the chance levels.

    `mode`: "exhaustive" scores every pair with the matching head; "two-stage" shortlists `ZERO_SHOT_K`
    videos per caption (and captions per video) by the contrastive embeddings, then ranks them with the
    matching head; its result also gives the R@1 of the contrastive stage alone (``R1_first_stage``).
    """
    from actbert.metrics.retrieval import ranks, retrieval_metrics
    from actbert.tasks.retrieval import load_clips, retrieval_scores

    clips = load_clips("youcook2", world.path("youcook2_val"))
    sc = retrieval_scores(model, tok, clips, store, mode=mode, k=ZERO_SHOT_K, progress=False)
    n = len(clips)
    out = {"t2v": retrieval_metrics(sc["t2v"], TIE_POLICY, direction="t2v"),
           "v2t": retrieval_metrics(sc["v2t"], TIE_POLICY, direction="v2t"),
           "ranks": ranks(sc["t2v"], TIE_POLICY).tolist(), "n_queries": n, "mode": mode,
           "distinct_captions": len({c.text for c in clips}),
           "chance": {"R1": 100.0 / n, "R5": 100.0 * min(5, n) / n, "R10": 100.0 * min(10, n) / n,
                      "MedR": (n + 1) / 2}}
    if "first_stage_t2v" in sc:
        out["R1_first_stage"] = retrieval_metrics(sc["first_stage_t2v"], TIE_POLICY, direction="t2v")["R1"]
    return out


def zero_shot_retrieval(model, tok, world, store) -> dict:
    """Two-stage retrieval (the judged number), with the R@1 of each stage alone beside it."""
    res = retrieval(model, tok, world, store, mode=ZERO_SHOT_MODE)
    res["R1_by_scorer"] = {
        "two-stage": res["t2v"]["R1"],
        "matching head, all pairs": retrieval(model, tok, world, store, mode="exhaustive")["t2v"]["R1"],
        "contrastive embeddings": res.pop("R1_first_stage")}
    return res


def localization(model, tok, world, store) -> dict:
    """CrossTask recall on the videos of `videos_val.csv` (the world's test split), zero-shot."""
    from actbert.data.formats import read_crosstask
    from actbert.tasks.localization import LocVideo, evaluate_localization

    rel = read_crosstask(world.path("crosstask"))
    videos = []
    for v in sorted(rel.videos_val, key=lambda v: (v.task_id, v.video_id)):  # grouped by task: steps encoded once
        ann = rel.annotations.get((v.task_id, v.video_id))
        if ann:
            videos.append(LocVideo(v.task_id, v.video_id, rel.tasks[v.task_id].steps,
                                   tuple((a.step - 1, a.start, a.end) for a in ann)))
    test = set(world.split("test"))
    assert all(v.video_id in test for v in videos), "step localization must run on test videos only"
    r = evaluate_localization(model, tok, videos, store, progress=False)
    return {"avg_recall": r["avg_recall"], "chance": r["random_baseline"]["avg_recall"],
            "chance_std": r["random_baseline"]["std"], "n_videos": r["n_videos"], "n_tasks": r["n_tasks"],
            "skipped": len(r["skipped"]), "per_video": r["per_video"]}


def qa(model, tok, world, store) -> dict:
    from actbert.data.formats import read_msrvtt_mc
    from actbert.tasks.qa import evaluate_qa

    r = evaluate_qa(model, tok, read_msrvtt_mc(world.path("msrvtt_mc")), store, progress=False)
    return {"accuracy": r["accuracy"], "chance": r["chance"], "n_questions": r["n"], "correct": r["correct"],
            **{k: r[k] for k in ("accuracy_pessimistic", "n_tied") if k in r}}


def masked_action(model, tok, world, store, out: Path, cfg: DemoConfig, seed: int) -> dict:
    """Masked-action (and word / region) accuracy on windows of the TEST videos' narration.

    The windows are masked `cfg.masked_eval_batches` times with fixed seeds (a window holds only a few
    clips, 15 % of which are masked: one draw would give too few targets), identically for every model.
    Captions are never swapped (negative_prob 0): the masked objectives are scored on matched pairs.
    """
    from actbert.data.corpus import CorpusConfig, NarratedCorpus
    from actbert.data.formats.howto100m import read_captions
    from actbert.data.vocab import ActionVocab
    from actbert.training.data import default_collator
    from actbert.training.evaluation import masked_metrics

    test = set(world.split("test"))
    caps = {k: v for k, v in read_captions(world.path("narration")).items() if k in test}
    vocab = ActionVocab.load(out / "data" / "vocab.json")
    c = model.config
    corpus = NarratedCorpus(store, caps, vocab, CorpusConfig(split="all", max_actions=c.max_actions,
                                                             max_regions=c.max_regions))
    samples = [s for s in (corpus[i] for i in range(len(corpus))) if s is not None]
    collate = default_collator(tok, c, negative_prob=0.0)
    bs = 16
    chunks = [samples[i:i + bs] for i in range(0, len(samples), bs)]
    batches, row_videos = [], []
    for k in range(cfg.masked_eval_batches):
        batches.append(collate(chunks[k % len(chunks)], generator=torch.Generator().manual_seed(seed * 1000 + k)))
        row_videos += [s.video_id for s in chunks[k % len(chunks)]]
    rows: list = []
    m = masked_metrics(model, batches, torch.device("cpu"), action_rows=rows)
    # per test video: [right, scored, right by always saying the majority verb] (intervals over videos)
    majority = Counter(t for _, targets in rows for t in targets).most_common(1)[0][0] if rows else -1
    per_video: dict = {}
    for vid, (pred, targets) in zip(row_videos, rows):
        v = per_video.setdefault(vid, [0, 0, 0])
        v[0] += sum(p == t for p, t in zip(pred, targets))
        v[1] += len(targets)
        v[2] += sum(t == majority for t in targets)
    return {"action_acc": 100.0 * m.get("action_acc", float("nan")),
            "majority": 100.0 * m.get("action_majority_acc", float("nan")),
            "n_targets": m.get("action_count", 0), "mlm_acc": 100.0 * m.get("mlm_acc", float("nan")),
            "region_acc": 100.0 * m.get("region_acc", float("nan")), "windows": len(samples),
            "chance": 100.0 / max(1, c.num_action_classes), "per_video": per_video}


def zero_shot(out: Path, cfg: DemoConfig, variant: str, seed: int) -> dict:
    model, tok = load_variant(out, variant)
    world, store = _context(out)
    with torch.no_grad():
        return {"retrieval": zero_shot_retrieval(model, tok, world, store), "qa": qa(model, tok, world, store),
                "localization": localization(model, tok, world, store),
                "masked_action": masked_action(model, tok, world, store, out, cfg, seed)}


def _disjoint(train_ids, world) -> None:
    test = set(world.split("test"))
    leak = sorted(set(train_ids) & test)
    if leak:
        raise AssertionError(f"fine-tuning data contains test videos {leak[:5]}")


def finetuned(out: Path, cfg: DemoConfig, variant: str, seed: int, progress: bool) -> dict:
    """Fine-tune retrieval, captioning and segmentation on the train split; evaluate on the test split."""
    from actbert.data.formats import read_coin
    from actbert.metrics.captioning import caption_metrics, cider_per_caption
    from actbert.tasks.captioning import CaptionTrainConfig, evaluate_captioning, train_captioner, youcook2_clips
    from actbert.tasks.retrieval import finetune_retrieval, load_clips
    from actbert.tasks.segmentation import (SegmentHeadConfig, SegmentTrainConfig, coin_seg_videos,
                                            evaluate_segmentation, train_segmenter)

    world, store = _context(out)
    res: dict = {}
    # retrieval: matching CE with hard negatives on the training clips of youcook2.json
    model, tok = load_variant(out, variant)
    train_clips = load_clips("youcook2", world.path("youcook2"), subset="training")
    _disjoint([c.video_id for c in train_clips], world)
    torch.manual_seed(seed)
    finetune_retrieval(model, tok, train_clips, store, batch_size=cfg.ft_batch, lr=1e-4, hard_negatives=2,
                       max_steps=cfg.ft_retrieval_steps, seed=seed, progress=progress)
    with torch.no_grad():
        res["retrieval"] = retrieval(model, tok, world, store)

    # captioning: decoder over the ActBERT encoder, greedy decoding; baseline = the most frequent training sentence
    model, tok = load_variant(out, variant)
    cap_train = youcook2_clips(world.path("youcook2"), "training")
    cap_test = youcook2_clips(world.path("youcook2"), "validation")
    _disjoint([c.video_id for c in cap_train], world)
    captioner = train_captioner(model, tok, cap_train, store, CaptionTrainConfig(
        max_steps=cfg.ft_caption_steps, batch_size=cfg.ft_batch, lr=1e-3, encoder_lr=1e-4, seed=seed,
        progress=progress))
    captioner.save(out / "runs" / variant / "captioning")  # kept: Pipeline(..., captioner=this folder)
    r = evaluate_captioning(captioner, cap_test, store, protocol="corpus", method="greedy",
                            meteor=cfg.caption_meteor, progress=False)
    constant = Counter(c.text for c in cap_train).most_common(1)[0][0]
    refs = {i: [c.text] for i, c in enumerate(cap_test)}
    base = caption_metrics({i: constant for i in refs}, refs, protocol="corpus", meteor=cfg.caption_meteor)
    preds = {i: rec["prediction"] for i, rec in enumerate(r["predictions"])}
    res["captioning"] = {"metrics": _caption_numbers(r["corpus"]), "chance": _caption_numbers(base),
                         "chance_rule": f"every clip captioned with the most frequent training sentence ({constant!r})",
                         "examples": r["predictions"][:6], "n_clips": r["n_clips"],
                         # per test clip, for intervals over clips (the corpus CIDEr is their mean)
                         "cider_per_clip": cider_per_caption(preds, refs),
                         "chance_cider_per_clip": cider_per_caption({i: constant for i in refs}, refs)}

    # segmentation: per-second step classes (38 steps + background), windows of the whole video
    model, tok = load_variant(out, variant)
    coin = read_coin(world.path("coin"))
    seg_train, seg_test = coin_seg_videos(coin, "training"), coin_seg_videos(coin, "testing")
    _disjoint([v.video_id for v in seg_train], world)
    n_cls = 1 + max(int(v.labels.max()) for v in seg_train + seg_test)
    seg = train_segmenter(model, seg_train, store, SegmentTrainConfig(
        head=SegmentHeadConfig(num_classes=n_cls, window=32, stride=16), max_steps=cfg.ft_segment_steps,
        batch_size=8, lr=cfg.ft_segment_lr, encoder_lr=cfg.ft_segment_encoder_lr, seed=seed, progress=progress),
        tokenizer=tok)
    seg.step_names = dict(world.step_names)
    seg.save(out / "runs" / variant / "segmentation")  # kept: Pipeline(..., segmenter=this folder)
    s = evaluate_segmentation(seg, seg_test, store, progress=False)
    gts = np.concatenate([v.labels for v in seg_test])
    steps = gts[gts > 0]
    res["segmentation"] = {
        "frame_acc": s["frame_acc"], "nonbg_acc": s["nonbg_acc"], "background_only": s["background_only"],
        "chance_nonbg": 100.0 * Counter(steps.tolist()).most_common(1)[0][1] / max(1, len(steps)),
        "chance_rule": "non-background: always the most frequent test step; frame: all background",
        "predictions": s["predictions"], "truth": {v.video_id: v.labels.tolist() for v in seg_test},
        "num_classes": n_cls}
    return res


def _caption_numbers(m: dict) -> dict:
    return {k: m[k] for k in ("BLEU3", "BLEU4", "METEOR", "ROUGE_L", "CIDEr") if k in m and m[k] is not None}


def eval_stages(stages: Stages, cfg: DemoConfig) -> dict:
    """Zero-shot evaluation of every model, fine-tuned tasks for pre-trained vs no pre-training."""
    out, seed = stages.out, stages.seed
    res: dict = {"zero_shot": {}, "finetuned": {}}
    for v in [*cfg.variants, SCRATCH]:
        res["zero_shot"][v] = stages.run(f"zeroshot_{v}", {"batches": cfg.masked_eval_batches, "ties": TIE_POLICY,
                                                            "retrieval": [ZERO_SHOT_MODE, ZERO_SHOT_K]},
                                         [f"pretrain_{v}"], lambda v=v: zero_shot(out, cfg, v, seed))
    ft = {k: getattr(cfg, k) for k in ("ft_retrieval_steps", "ft_caption_steps", "ft_segment_steps", "ft_segment_lr",
                                       "ft_segment_encoder_lr", "ft_batch", "caption_meteor")}
    ft["keeps"] = ["captioning", "segmentation"]  # heads saved under runs/<model>/ (older caches lack them)
    models = [v for v in ("actbert", SCRATCH) if v == SCRATCH or v in cfg.variants]
    jobs = [(f"finetune_{v}", ft, [f"pretrain_{v}"], functools.partial(finetuned, out, cfg, v, seed)) for v in models]
    res["finetuned"] = dict(zip(models, stages.run_parallel(jobs, cfg.processes, cfg.threads_per_process)))
    return res
