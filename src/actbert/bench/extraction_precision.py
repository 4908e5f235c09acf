"""`actbert bench extraction-precision --demo DEMO_OUT`: what bf16 feature extraction does to retrieval.

A speed-up that changes the features (here: the action network under bfloat16 autocast, `actbert
extract --bf16`, 2.3x faster on r3d_18 on a CPU with AVX-512 BF16) must be judged by its effect on the
task, not on the features alone. This takes a finished `actbert demo` folder, extracts its videos again
with the demo's own action network and detector under bf16, and scores the demo's zero-shot retrieval
(the judged number: two-stage, and the matching head over all pairs) with the same trained model on the
float32 store and on the bf16 one. Reported: R@1 of each, the paired difference with a 95 % bootstrap
interval over queries, how many queries changed rank, and the features' relative difference.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from actbert.errors import ActbertError


def feature_difference(store_a, store_b) -> dict:
    """Relative L2 difference of the action (and region) features, video by video."""
    rel = {"action": [], "region": []}
    for video in store_a.iter_videos():
        other = store_b[video.video_id]
        for key, x, y in (("action", video.action, other.action), ("region", video.region, other.region)):
            x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
            if x.size:
                rel[key].append(float(np.linalg.norm(y - x) / max(np.linalg.norm(x), 1e-12)))
    return {k: {"median": float(np.median(v)), "max": float(np.max(v))} for k, v in rel.items() if v}


def run(demo: Path, variant: str, workdir: Path) -> dict:
    import torch

    from actbert.data.store import FeatureStore
    from actbert.demo.evaluate import TIE_POLICY, zero_shot_retrieval
    from actbert.demo.steps import load_variant
    from actbert.metrics.bootstrap import paired_bootstrap
    from actbert.metrics.retrieval import ranks
    from actbert.tasks.retrieval import load_clips, retrieval_scores
    from actbert.video.action_net import load_action_net
    from actbert.video.detector import load_region_extractor
    from actbert.video.decode import DecodeSpec
    from actbert.video.extract import extract_features
    from actbert.world import load_world

    world = load_world(demo / "world")
    net, regions = load_action_net(demo / "action_net"), load_region_extractor(demo / "detector")
    paths = [world.video_path(v) for v in sorted(world.videos)]
    spec = DecodeSpec(**FeatureStore(demo / "store").meta["extractor"]["decode"])  # exactly the demo's settings
    summary = extract_features(paths, workdir / "store-bf16", net, regions, progress=False, action_batch=32,
                               region_batch=16, spec=spec, bf16=True)
    if summary.failed:
        raise ActbertError(f"bf16 extraction failed for {len(summary.failed)} videos, first: {summary.failed[:3]}")
    stores = {"float32": FeatureStore(demo / "store"), "bf16": FeatureStore(workdir / "store-bf16")}
    model, tok = load_variant(demo, variant)
    clips = load_clips("youcook2", world.path("youcook2_val"))
    out = {"demo": str(demo), "variant": variant, "queries": len(clips),
           "feature_relative_difference": feature_difference(stores["float32"], stores["bf16"])}
    hits = {}
    with torch.no_grad():
        for name, store in stores.items():
            res = zero_shot_retrieval(model, tok, world, store)
            scores = retrieval_scores(model, tok, clips, store, mode="exhaustive", progress=False)
            r = ranks(scores["t2v"], TIE_POLICY)
            hits[name] = {"two-stage": np.asarray(res["ranks"]) < 0.5, "exhaustive": r < 0.5}
            out[name] = {"R1_two_stage": res["t2v"]["R1"], "R1_by_scorer": res["R1_by_scorer"],
                         "ranks_two_stage": res["ranks"], "ranks_exhaustive": r.tolist()}
    for scorer in ("two-stage", "exhaustive"):
        boot = paired_bootstrap(hits["bf16"][scorer], hits["float32"][scorer])  # bf16 - float32, per query
        key = "ranks_two_stage" if scorer == "two-stage" else "ranks_exhaustive"
        changed = int(np.sum(np.asarray(out["float32"][key]) != np.asarray(out["bf16"][key])))
        out[f"delta_R1_{scorer}"] = {"points": 100 * boot["diff"], "ci95": [100 * boot["low"], 100 * boot["high"]],
                                     "queries_whose_rank_changed": changed}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="actbert bench extraction-precision", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", required=True, help="a finished `actbert demo --out DIR` folder")
    parser.add_argument("--variant", default="actbert", help="which pre-trained variant of the demo scores (runs/NAME)")
    parser.add_argument("--json", default=None, help="also write the full result (with every rank) here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="actbert-precision-") as tmp:
        res = run(Path(args.demo), args.variant, Path(tmp))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    f = res["feature_relative_difference"]
    print(f"{res['queries']} queries, variant {res['variant']}; bf16 vs float32 features: action rel. diff median "
          f"{f['action']['median']:.2e} (max {f['action']['max']:.2e})")
    for scorer in ("two-stage", "exhaustive"):
        key = "R1_two_stage" if scorer == "two-stage" else None
        r32 = res["float32"][key] if key else res["float32"]["R1_by_scorer"]["matching head, all pairs"]
        r16 = res["bf16"][key] if key else res["bf16"]["R1_by_scorer"]["matching head, all pairs"]
        d = res[f"delta_R1_{scorer}"]
        print(f"  {scorer}: R@1 float32 {r32:.1f}, bf16 {r16:.1f}; paired delta {d['points']:+.1f} points "
              f"(95 % CI {d['ci95'][0]:+.1f} .. {d['ci95'][1]:+.1f}); {d['queries_whose_rank_changed']} queries changed rank")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
