"""Our training step in two settings, A and B, in turns (A B A B): the speed ratio of a change.

`actbert bench train-step-ab --b-env ACTBERT_ONEDNN_LINEAR=0` times the same step (`train-step`'s
`build_step`) in two worker processes that differ only by environment variables (`--a-env`, `--b-env`,
repeatable KEY=VALUE). A different checkout is `--b-env PYTHONPATH=/path/to/other/src`. Each round times
`--steps` steps of A, then of B; the ratio A/B (samples/s) is reported per round and as the median, so a
slow spell of a shared machine hits both sides. With `--threads 1` the ratio of CPU seconds per step
(B/A) is also robust to other jobs on the machine (it counts the work, not the waiting); with more threads
it also counts OpenMP's spin-waiting. This is how every change in docs/performance.md's
"Where the time goes" was measured.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from actbert.bench.peer_paddle import Worker, ours_command, thread_env
from actbert.errors import ConfigError


def _env(assignments: list[str], threads: int) -> dict[str, str]:
    env = thread_env(threads)
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--a-env/--b-env: {item!r} is not KEY=VALUE")
        env[key] = value
    return env


def compare(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="actbert-ab-"))
    def command(in_backward: bool) -> list[str]:
        return ours_command(args.preset, args.batch, args.precision, args.threads, args.warmup, in_backward)

    load_before = os.getloadavg()
    a = Worker("A", command(args.a_in_backward), _env(args.a_env, args.threads), workdir / "a.log")
    b = Worker("B", command(args.b_in_backward), _env(args.b_env, args.threads), workdir / "b.log")
    rounds = []
    try:
        for r in range(args.rounds):
            ra, rb = a.run(args.steps), b.run(args.steps)
            sa, sb = args.batch / statistics.median(ra["step_s"]), args.batch / statistics.median(rb["step_s"])
            cpu_ratio = statistics.median(rb["cpu_s"]) / statistics.median(ra["cpu_s"])
            rounds.append({"a_samples_per_s": sa, "b_samples_per_s": sb, "ratio": sa / sb, "cpu_ratio": cpu_ratio, "a_peak_rss_gib": ra["peak_rss_gib"],
                           "b_peak_rss_gib": rb["peak_rss_gib"], "load_average": os.getloadavg()[0]})
            if not args.json:
                print(f"round {r + 1}: A {sa:.2f}  B {sb:.2f} samples/s  A/B {sa / sb:.3f}, CPU time B/A {cpu_ratio:.3f}  (load {rounds[-1]['load_average']:.1f})",
                      flush=True)
    finally:
        a.close()
        b.close()
    return {"preset": args.preset, "batch": args.batch, "precision": args.precision, "threads": args.threads,
            "a_env": args.a_env, "b_env": args.b_env, "rounds": rounds, "median_ratio": statistics.median(r["ratio"] for r in rounds),
            "median_cpu_ratio": statistics.median(r["cpu_ratio"] for r in rounds),
            "load_average_before": list(load_before), "load_average_after": list(os.getloadavg())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="actbert bench train-step-ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a-env", action="append", default=[], metavar="KEY=VALUE", help="environment of side A")
    parser.add_argument("--b-env", action="append", default=[], metavar="KEY=VALUE", help="environment of side B")
    parser.add_argument("--a-in-backward", action="store_true", help="side A steps the optimizer inside backward")
    parser.add_argument("--b-in-backward", action="store_true", help="side B steps the optimizer inside backward")
    parser.add_argument("--preset", default="base", help="model preset (default: base)")
    parser.add_argument("--batch", type=int, default=8, help="samples per step")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="fp32, or bf16 autocast")
    parser.add_argument("--rounds", type=int, default=4, help="A-B turns")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per side per round (the median counts)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps each side runs first")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on each side")
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    result = compare(args)
    if args.json:
        print(json.dumps(result))
    else:
        rss = [max(r[f"{s}_peak_rss_gib"] for r in result["rounds"]) for s in "ab"]
        print(f"median A/B {result['median_ratio']:.3f} (samples/s), {result['median_cpu_ratio']:.3f} (CPU seconds per step, "
              f"B/A) over {args.rounds} rounds; peak RSS A {rss[0]:.2f} GiB, B {rss[1]:.2f} GiB; "
              f"load average {result['load_average_before'][0]:.1f} -> {result['load_average_after'][0]:.1f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
