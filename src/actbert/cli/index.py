"""`actbert index`: build a clip search index from videos or a feature store."""
from __future__ import annotations

import argparse

DESCRIPTION = """Build a search index of clips (fixed windows over every video) for `actbert search`. The source is
a feature store (from `actbert extract`) or videos (a folder, a text file of paths, or one file); videos are
extracted into INDEX/store first, which needs --action-net and --detector, and a re-run resumes the extraction.
Per clip the index stores the model's contrastive video embedding (the fast first stage) and the clip's video,
start and end; index.json records the model and vocabulary, so searching with another model is refused."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from actbert.cli.options import add_device, add_model, add_no_progress, add_out

    parser.add_argument("source", metavar="VIDEOS_OR_STORE",
                        help="feature store folder, or videos: a folder (searched recursively), a list file, one file")
    add_out(parser, "index folder to create")
    add_model(parser)
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the model folder's vocab.txt)")
    parser.add_argument("--action-net", default=None, help="action network folder (needed for raw videos)")
    parser.add_argument("--detector", default=None, help="region extractor folder (needed for raw videos)")
    parser.add_argument("--clip-seconds", type=float, default=8.0, help="length of an indexed clip (s)")
    parser.add_argument("--stride", type=float, default=None, help="seconds between clip starts (default: the clip "
                                                                     "length, no overlap)")
    parser.add_argument("--batch-size", type=int, default=64, help="clips embedded per forward pass")
    parser.add_argument("--chunk-rows", type=int, default=32768, help="clips per embedding chunk file")
    parser.add_argument("--float16", action="store_true",
                        help="store embeddings in float16: half the disk, but exact search ~4x slower (float32 default)")
    parser.add_argument("--overwrite", action="store_true", help="rebuild an existing index (its store/ is kept)")
    add_device(parser)
    add_no_progress(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    import logging

    from actbert.api import Pipeline
    from actbert.cli.options import resolve_device

    # the summary below lists every video that was not indexed: the library's warning would repeat it
    logging.getLogger("actbert.api.pipeline").setLevel(logging.ERROR)
    from actbert.api.index import IndexMismatchError

    device = resolve_device(args.device)
    tokenizer = None
    if args.tokenizer:
        from actbert.data.tokenizer import WordPieceTokenizer

        tokenizer = WordPieceTokenizer.from_pretrained(args.tokenizer)
    try:
        pipe = Pipeline(args.model, tokenizer=tokenizer, device=device, action_net=args.action_net,
                        detector=args.detector, batch_size=args.batch_size)
        idx = pipe.index(args.source, out=args.out, clip_seconds=args.clip_seconds, stride=args.stride,
                         chunk_rows=args.chunk_rows, dtype="float16" if args.float16 else "float32",
                         overwrite=args.overwrite, progress=not args.no_progress)
    except (FileNotFoundError, FileExistsError, IndexMismatchError, ValueError, KeyError) as exc:
        print(f"actbert index: error: {exc}", file=sys.stderr)
        return 2
    failed = idx.info.get("extraction", {}).get("failed", [])
    print(f"indexed {idx.n_clips} clips of {len(idx.videos)} videos "
          f"({idx.info['clip_seconds']:g} s every {idx.info['stride']:g} s) -> {idx.path}")
    for f in failed:
        print(f"  not indexed: {f['video']} ({f['path']}): {f['reason']}")
    return 1 if failed else 0
