"""`actbert extract`: decode videos and write action + region features to a feature store."""
from __future__ import annotations

import argparse
import logging
import os

DESCRIPTION = """Decode videos (a directory, a text file of paths, or one file) and write, per video, one action
feature per clip and the top-K region features of each key frame to a feature store. Resumable: re-run the same
command after a crash and finished videos are skipped. Split a large corpus over machines with --num-shards K
--shard-index I (defaults read SLURM array or torchrun variables). Exit status 1 when some videos failed."""


def _env_int(*names: str) -> int | None:
    for n in names:
        if os.environ.get(n, "").isdigit():
            return int(os.environ[n])
    return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from actbert.cli.options import add_device, add_no_progress, add_out, add_regions_per_frame

    parser.add_argument("videos", help="directory of videos (searched recursively), a text file with one path "
                                       "per line, or a single video file")
    add_out(parser, "feature store folder (created; resumed if it exists)")
    parser.add_argument("--action-net", required=True, help="action network directory (actbert train-action-net)")
    parser.add_argument("--detector", required=True, help="region extractor directory (actbert train-detector)")
    parser.add_argument("--num-shards", type=int, default=None,
                        help="split the videos into K shards by a stable hash of the video id "
                             "(default $SLURM_ARRAY_TASK_COUNT or $WORLD_SIZE, else 1)")
    parser.add_argument("--shard-index", type=int, default=None,
                        help="which shard this process extracts, 0..K-1 (default $SLURM_ARRAY_TASK_ID or $RANK, "
                             "else 0)")
    parser.add_argument("--fps", type=float, default=None, help="clip frame rate (default: the action net's)")
    parser.add_argument("--clip-seconds", type=float, default=None,
                        help="clip length in seconds (default: the action net's frames / fps)")
    parser.add_argument("--stride", type=float, default=None,
                        help="seconds between clip starts (default: the clip length, i.e. no overlap)")
    parser.add_argument("--keyframe-every", type=float, default=1.0, help="seconds between detector key frames")
    parser.add_argument("--keyframe-max-side", type=int, default=None,
                        help="downscale key frames so the long side is at most this (boxes are stored in the "
                             "video's pixels either way)")
    add_regions_per_frame(parser, None, "regions kept per key frame (default: the detector's setting)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per action-network call")
    parser.add_argument("--region-batch-size", type=int, default=8, help="key frames per detector call")
    parser.add_argument("--shard-videos", type=int, default=64, help="videos per store shard file")
    parser.add_argument("--no-resume", action="store_true", help="refuse to write into a store that has videos")
    parser.add_argument("--bf16", action="store_true",
                        help="run the action net under bfloat16 autocast: ~2x faster on CPUs with AVX-512 BF16 "
                             "(features within ~0.3 %% of float32), slower elsewhere")
    add_device(parser)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    add_no_progress(parser)


def run(args: argparse.Namespace) -> int:
    import torch

    from actbert.cli.options import resolve_device
    from actbert.video.action_net import load_action_net
    from actbert.video.decode import DecodeSpec
    from actbert.video.detector import load_region_extractor
    from actbert.video.extract import extract_features

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    net = load_action_net(args.action_net, device=device)
    extractor = load_region_extractor(args.detector, top_k=args.regions_per_frame)
    c = net.config
    fps = args.fps or c.fps
    clip_frames = max(1, round(args.clip_seconds * fps)) if args.clip_seconds else c.clip_frames
    spec = DecodeSpec(fps=fps, clip_frames=clip_frames, stride_s=args.stride or clip_frames / fps,
                      resize=c.resize, crop=c.crop, keyframe_every_s=args.keyframe_every,
                      keyframe_max_side=args.keyframe_max_side)
    num_shards = args.num_shards or _env_int("SLURM_ARRAY_TASK_COUNT", "WORLD_SIZE") or 1
    shard_index = args.shard_index if args.shard_index is not None else (_env_int("SLURM_ARRAY_TASK_ID", "RANK") or 0)
    summary = extract_features(args.videos, args.out, net, extractor, spec, num_shards=num_shards,
                               shard_index=shard_index, resume=not args.no_resume, progress=not args.no_progress,
                               action_batch=args.batch_size, region_batch=args.region_batch_size,
                               shard_videos=args.shard_videos, bf16=args.bf16)
    print(summary.table())
    return 1 if summary.failed else 0
