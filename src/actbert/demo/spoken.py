"""`actbert demo --spoken`: the demo's world spoken aloud, recognised, and pre-trained on what was heard.

After the demo's first stages (world, verb vocabulary, action net, detector, feature extraction: the same
stages and cache as `actbert demo`), this
1. speaks each video's narration into its audio track (`actbert.world.speech`);
2. transcribes the spoken videos with the default recogniser twice: pocketsphinx's general English model,
   and pocketsphinx with a domain language model of the world's *catalog* (recipe steps and verb synonyms,
   no narration: text a cook could write without seeing a video), and scores both against the spoken
   ground truth (WER, content-word recall, audio-seconds per second);
3. pre-trains the full model (same budget) on the TRAIN videos' narration as written (the lines actually
   spoken), as recognised (general model), as recognised with the domain model, and as recognised with the
   domain model after dropping words whose confidence is under `CONFIDENCE_FLOOR` (the robustness
   technique), and evaluates each zero-shot on the TEST videos with the demo's evaluations;
4. compares them on the same test items with 95 % bootstrap intervals (`paired_differences`).
The action vocabulary, the action net and the features stay those of the written narration, so the runs
differ only in the text pre-training reads; each run gets a word vocabulary of its own text.
"""
from __future__ import annotations

import functools
import json
import time
from pathlib import Path

from actbert.demo.config import DemoConfig
from actbert.demo.steps import Stages, fresh_dir, pretrain_settings, pretrain_variant, run_feature_stages, \
    write_word_vocab
from actbert.utils import atomic_write_json

CONFIDENCE_FLOOR = 0.5
RECOGNIZERS = ("general", "catalog")
TEXTS = ("written", "asr_general", "asr_catalog", "asr_catalog_conf")


def _speak(out: Path, progress: bool) -> dict:
    from actbert.world.speech import speak_world

    s = speak_world(out / "world", progress=progress)
    return {"videos": s.videos, "lines_spoken": s.lines_spoken, "lines_dropped": s.lines_dropped,
            "seconds_of_speech": s.seconds_of_speech}


def _transcribe(out: Path, which: str, progress: bool) -> dict:
    from actbert.cli.transcribe import build_recognizer
    from actbert.speech.evaluation import score_transcripts
    from actbert.speech.transcribe import transcribe_videos
    from actbert.world import load_world
    from actbert.world.speech import SPOKEN_DIR, catalog_text

    world = load_world(out / "world")
    spoken = out / "world" / SPOKEN_DIR
    d = out / "spoken"
    d.mkdir(exist_ok=True)
    target = d / f"captions_{which}.json"
    for stale in d.glob(f"captions_{which}*"):
        stale.unlink()
    text = catalog_text(out / "world") if which == "catalog" else None
    rec = build_recognizer("pocketsphinx", None, text, str(fresh_dir(d / f"lm_{which}")))
    t0 = time.perf_counter()
    s = transcribe_videos(spoken / "videos", target, lambda: rec, sources=("asr",), progress=progress)
    wall = time.perf_counter() - t0
    truth = json.loads((spoken / "narration_spoken.json").read_text())
    hyp = json.loads(target.read_text())
    return {"recognizer": rec.describe(), "audio_seconds": round(s.audio_seconds, 1), "wall_seconds": round(wall, 1),
            "audio_s_per_s": round(s.realtime_factor, 2), "skipped": s.skipped,
            "all": score_transcripts(truth, hyp).as_dict(),
            "test": score_transcripts(truth, hyp, videos=world.split("test")).as_dict()}


def _narrations(out: Path) -> dict:
    """The four training texts of the TRAIN videos, each with its own word vocabulary."""
    from actbert.world import load_world

    world = load_world(out / "world")
    train = set(world.split("train"))
    truth = json.loads((out / "world" / "spoken" / "narration_spoken.json").read_text())
    sources = {"written": truth,
               "asr_general": json.loads((out / "spoken" / "captions_general.json").read_text()),
               "asr_catalog": json.loads((out / "spoken" / "captions_catalog.json").read_text())}
    sources["asr_catalog_conf"] = {vid: _drop_unsure(rec) for vid, rec in sources["asr_catalog"].items()}
    stats = {}
    for name, caps in sources.items():
        kept = {vid: {k: rec[k] for k in ("start", "end", "text")} for vid, rec in caps.items() if vid in train}
        d = fresh_dir(out / "spoken" / f"text_{name}")
        atomic_write_json(d / "narration_train.json", kept)
        texts = [t for rec in kept.values() for t in rec["text"]]
        write_word_vocab(texts, d / "tokenizer")
        stats[name] = {"videos": len(kept), "lines": len(texts), "words": sum(len(t.split()) for t in texts)}
    return stats


def _drop_unsure(rec: dict) -> dict:
    """Keep only the words heard with confidence >= CONFIDENCE_FLOOR; a line left empty is dropped."""
    out = {"start": [], "end": [], "text": []}
    for s, e, words in zip(rec["start"], rec["end"], rec["words"]):
        kept = [w[0] for w in words if w[3] is None or w[3] >= CONFIDENCE_FLOOR]
        if kept:
            out["start"].append(s)
            out["end"].append(e)
            out["text"].append(" ".join(kept))
    return out


def run_spoken(stages: Stages, cfg: DemoConfig) -> dict:
    """Every stage of the spoken-world experiment; returns its results (also written to spoken/results.json)."""
    from actbert.demo.evaluate import TIE_POLICY, ZERO_SHOT_K, ZERO_SHOT_MODE, zero_shot
    from actbert.demo.config import VARIANTS

    out, seed, prog = stages.out, stages.seed, stages.progress
    res: dict = {}
    # the demo's own first stages, with the demo's cache keys: a demo run in the same folder is reused
    run_feature_stages(stages, cfg)
    res["speak"] = stages.run("spoken_speak", {}, ["world"], lambda: _speak(out, prog))
    res["asr"] = {w: stages.run(f"spoken_asr_{w}", {"recognizer": w}, ["spoken_speak"],
                                lambda w=w: _transcribe(out, w, prog)) for w in RECOGNIZERS}
    res["texts"] = stages.run("spoken_texts", {"floor": CONFIDENCE_FLOOR},
                              [f"spoken_asr_{w}" for w in RECOGNIZERS], lambda: _narrations(out))
    pre = pretrain_settings(cfg)
    jobs = [(f"pretrain_spoken_{t}", {**pre, "overrides": VARIANTS["actbert"], "text": t}, ["extract", "spoken_texts"],
             functools.partial(pretrain_variant, out, cfg, "actbert", seed, run_name=f"spoken_{t}",
                               narration=out / "spoken" / f"text_{t}" / "narration_train.json",
                               tokenizer=out / "spoken" / f"text_{t}" / "tokenizer")) for t in TEXTS]
    res["pretrain"] = dict(zip(TEXTS, stages.run_parallel(jobs, cfg.processes, cfg.threads_per_process)))
    res["zero_shot"] = {t: stages.run(f"zeroshot_spoken_{t}", {"batches": cfg.masked_eval_batches, "ties": TIE_POLICY,
                                                                "retrieval": [ZERO_SHOT_MODE, ZERO_SHOT_K]},
                                      [f"pretrain_spoken_{t}"], lambda t=t: zero_shot(out, cfg, f"spoken_{t}", seed))
                        for t in TEXTS}
    res["paired"] = paired_differences(res)
    res["table"] = summary_rows(res)
    atomic_write_json(out / "spoken" / "results.json", res)
    return res


# (model, baseline): the ASR noise gap of each recogniser, and what the robustness technique changes
COMPARISONS = (("written", "asr_general"), ("written", "asr_catalog"), ("asr_catalog_conf", "asr_catalog"),
               ("written", "asr_catalog_conf"))


def paired_differences(res: dict) -> dict:
    """Per zero-shot task and comparison, model minus baseline on the same test items with its 95 % bootstrap
    interval (`demo.stats.compare`), and per task the share of the written-vs-`asr_catalog` gap that dropping
    low-confidence words closes (None when there is no gap to close)."""
    from actbert.demo.stats import ZERO_SHOT_TASKS, compare

    out: dict = {"differences": {}, "gap_closed": {}}
    for task in ZERO_SHOT_TASKS:
        for model, baseline in COMPARISONS:
            c = compare(res, task, baseline=baseline, model=model)
            if c is not None:
                out["differences"][f"{task}: {model} - {baseline}"] = c
        gap = out["differences"].get(f"{task}: written - asr_catalog")
        fix = out["differences"].get(f"{task}: asr_catalog_conf - asr_catalog")
        if gap and fix:
            out["gap_closed"][task] = round(fix["diff"] / gap["diff"], 3) if gap["diff"] > 0 else None
    return out


def summary_rows(res: dict) -> list[str]:
    """A markdown table: one row per training text, the downstream numbers side by side."""
    rows = ["| pre-training text | words | zero-shot R@1 (t2v) | QA acc | localization recall | masked action acc |",
            "|---|---|---|---|---|---|"]
    for t in TEXTS:
        z = res["zero_shot"][t]
        rows.append(f"| {t} | {res['texts'][t]['words']} | {z['retrieval']['t2v']['R1']:.1f} | {z['qa']['accuracy']:.1f} "
                    f"| {z['localization']['avg_recall']:.1f} | {z['masked_action']['action_acc']:.1f} |")
    paired = res.get("paired")
    if paired:
        rows += ["", "| zero-shot task: model - baseline | difference | 95 % interval | supported |", "|---|---|---|---|"]
        rows += [f"| {k} | {c['diff']:+.1f} | [{c['low']:+.1f}, {c['high']:+.1f}] | {'yes' if c['supported'] else 'no'} |"
                 for k, c in paired["differences"].items()]
        closed = [f"{t} {'no gap' if f is None else format(100 * f, '.0f') + ' %'}" for t, f in paired["gap_closed"].items()]
        rows.append("\nShare of the written - asr_catalog gap closed by dropping low-confidence words: " + "; ".join(closed))
    for w in RECOGNIZERS:
        a = res["asr"][w]
        rows.append(f"\nASR {w}: WER {a['all']['wer']:.1f} %, content-word recall {a['all']['content_recall']:.1f} % "
                    f"(verbs {a['all']['verb_recall']:.1f}, nouns {a['all']['noun_recall']:.1f}); test videos: WER "
                    f"{a['test']['wer']:.1f} %, recall {a['test']['content_recall']:.1f} %; {a['audio_s_per_s']:.2f} "
                    f"audio-s/s")
    return rows


def run_spoken_demo(out_dir: str | Path, cfg: DemoConfig, seed: int = 0, progress: bool = True,
                    force: bool = False) -> tuple[dict, list, float]:
    """Run (or resume) the spoken-world experiment into `out_dir`: (results, stage records, seconds)."""
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    try:
        stages = Stages(out, seed, force=force, progress=progress)
        results = run_spoken(stages, cfg)
    finally:
        torch.set_num_threads(threads)
    return results, stages.records, time.perf_counter() - t0
