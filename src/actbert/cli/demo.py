"""`actbert demo`: the whole pipeline on a world generated on the spot, ending in report.md + results.json."""
from __future__ import annotations

import argparse

DESCRIPTION = ("Generate a world of narrated cooking videos, mine verbs, train the action network and the region "
               "detector, extract features, pre-train ActBERT (tiny) and its ablations on the train videos, evaluate "
               "all five downstream tasks on the held-out test videos, and write DIR/report.md, DIR/results.json "
               "and plots. Finished stages are cached: a rerun resumes. See docs/demo.md.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from actbert.cli.options import add_no_progress, add_out
    from actbert.demo.config import VARIANTS, DemoConfig

    parser.add_argument("--quick", action="store_true",
                        help="CI smoke test: a 16-video world and tiny budgets (about 2 minutes); numbers not meaningful")
    add_out(parser, "output folder (world, models, report)", required=False, default="demo_out")
    parser.add_argument("--seed", type=int, default=None, help="seed of the world and every training stage (default 0)")
    parser.add_argument("--seeds", default=None, metavar="SPEC",
                        help="several worlds, e.g. 0-4 (also 0,2,7): one demo per seed in DIR/seed-N, then one "
                             "summary table in DIR/summary.md (targets met per task, mean difference and spread)")
    add_no_progress(parser, "hide progress bars and stage messages")
    parser.add_argument("--spoken", action="store_true",
                        help="instead of the demo: speak the world's narration into the videos (eSpeak NG), "
                             "transcribe it offline (pocketsphinx, general and domain model), score WER / content-word "
                             "recall, and pre-train on written vs recognised narration (DIR/spoken/results.json; "
                             "docs/transcribe.md). Shares the demo's first stages and cache")
    parser.add_argument("--variants", default=None, metavar="LIST",
                        help="pre-training variants to compare, comma-separated, from " + ", ".join(VARIANTS) +
                             " (default " + ",".join(DemoConfig.variants) + "; must include actbert). Adding one to a "
                             "finished demo runs only the new variant's stages (e.g. "
                             "--variants actbert,kv_add,coattention,no_action,no_region)")
    parser.add_argument("--force", action="store_true", help="redo every stage even when its cached result is valid")
    parser.add_argument("--processes", type=int, default=None,
                        help="independent stages (pre-training variants, fine-tunings) run this many at a time, "
                             "each on 2/N torch threads (default 2; 1 runs everything in this process). "
                             "Numbers depend on it: compare runs made with the same value")


def run(args: argparse.Namespace) -> int:
    import json

    from actbert.demo import get_demo_config, run_demo, run_demos
    from actbert.demo.config import parse_variants
    from actbert.demo.summary import parse_seeds

    overrides = {} if args.processes is None else {"processes": args.processes}
    if args.processes is not None and args.processes < 1:
        raise SystemExit(f"--processes must be >= 1, got {args.processes}")
    if args.variants is not None:
        overrides["variants"] = parse_variants(args.variants)
    config = get_demo_config(args.quick, **overrides)
    if args.seeds is not None and args.seed is not None:
        raise SystemExit("give --seed (one world) or --seeds (several), not both")
    if args.spoken:
        if args.seeds is not None:
            raise SystemExit("--spoken runs one world: give --seed, not --seeds")
        from actbert.demo.spoken import run_spoken_demo

        results, records, seconds = run_spoken_demo(args.out, config, seed=args.seed or 0,
                                                    progress=not args.no_progress, force=args.force)
        print("\n".join(results["table"]))
        print(f"results: {args.out}/spoken/results.json; total {seconds:.1f} s")
        return 0
    if args.seeds is not None:
        try:
            seeds = parse_seeds(args.seeds)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        many = run_demos(args.out, seeds, progress=not args.no_progress, force=args.force, config=config)
        print(f"\n{many.summary.read_text()}\nsummary: {many.summary}\nper world: {args.out}/seed-N/report.md")
        return 0
    result = run_demo(args.out, seed=args.seed or 0, progress=not args.no_progress, force=args.force, config=config)
    print(f"\nreport: {result.report}\nresults: {result.results_json}")
    print("targets:")
    for t in json.loads(result.results_json.read_text())["targets"]:
        print(f"  [{'met' if t['met'] else 'MISSED'}] {t['target']}: {t['detail']}")
    print("stages (wall s):", ", ".join(f"{r.name} {'cached' if r.cached else format(r.seconds, '.1f')}"
                                        for r in result.timings))
    print(f"total {result.seconds:.1f} s")
    return 0
