"""`actbert world`: generate the synthetic narrated-video world (videos + annotations in real formats)."""
from __future__ import annotations

import argparse

DESCRIPTION = ("Generate a deterministic world of narrated cooking videos with ground truth: mp4 videos, "
               "HowTo100M-style narration, YouCook2 / COIN / CrossTask / MSR-VTT-MC annotations and COCO boxes. "
               "Reruns with the same seed and preset reuse the world on disk.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from actbert.cli.options import add_no_progress, add_out
    from actbert.world.config import PRESETS

    add_out(parser, "world folder to create (replaced as a whole)")
    parser.add_argument("--preset", default="quick", choices=sorted(PRESETS),
                        help="world size: tiny (tests), quick (CI smoke demo), default (the demo)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same bytes")
    parser.add_argument("--num-videos", type=int, default=None, help="override the preset's number of videos")
    parser.add_argument("--speak", action="store_true",
                        help="also speak each video's narration with eSpeak NG into OUT/spoken/videos/*.mp4 (audio "
                             "track added; ground truth in OUT/spoken/narration_spoken.json); see docs/transcribe.md")
    add_no_progress(parser)


def run(args: argparse.Namespace) -> int:
    from actbert.world import generate_world, get_world_config

    overrides = {} if args.num_videos is None else {"num_videos": args.num_videos}
    summary = generate_world(args.out, get_world_config(args.preset, **overrides), seed=args.seed,
                             progress=not args.no_progress)
    print(summary.table())
    if args.speak:
        from actbert.world.speech import speak_world

        spoken = speak_world(args.out, progress=not args.no_progress)
        print(f"spoken narration          {spoken.lines_spoken} lines ({spoken.seconds_of_speech:.0f} s of speech; "
              f"{spoken.lines_dropped} left out: they would end after their video) -> {spoken.root}"
              f"{' (reused)' if spoken.reused else ''}")
    return 0
