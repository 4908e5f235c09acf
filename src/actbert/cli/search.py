"""`actbert search`: text query → ranked clips of an index (first stage + full-model re-ranking)."""
from __future__ import annotations

import argparse

DESCRIPTION = """Search an index built by `actbert index` with a text query. The first stage ranks every clip by the
cosine of the contrastive embeddings (streamed from disk); the best --rerank clips are then re-scored by the full
Tangled Transformer (score = log P(matched)). Prints rank, video, start, end, score and first-stage score."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from actbert.cli.options import add_device, add_model

    parser.add_argument("query", help="what to look for, e.g. \"cut the tomato\"")
    parser.add_argument("--index", required=True, help="index folder (actbert index)")
    add_model(parser, required=False, help="ActBERT model folder (checkpoint or run folder; default: the one "
                                           "recorded in the index)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the model folder's vocab.txt)")
    parser.add_argument("--top-k", type=int, default=10, help="clips to print")
    parser.add_argument("--rerank", type=int, default=50, help="first-stage candidates re-scored by the full model")
    parser.add_argument("--no-rerank", action="store_true", help="first stage only (same as --rerank 0)")
    parser.add_argument("--faiss", action="store_true",
                        help="first stage with a faiss flat inner-product index (loads all embeddings in RAM)")
    parser.add_argument("--json", action="store_true", help="print the hits as JSON lines instead of a table")
    add_device(parser)


def format_table(hits) -> str:
    """The ranked table: rank, video, start, end, score (– when not re-ranked), first-stage score."""
    rows = [("rank", "video", "start", "end", "score", "first-stage")]
    for r, h in enumerate(hits, 1):
        rows.append((str(r), h.video, f"{h.start:.1f}", f"{h.end:.1f}",
                     f"{h.score:.4f}" if h.reranked else "–", f"{h.first_stage_score:.4f}"))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    left = {1}  # the video column reads best left-aligned; numbers right-aligned
    return "\n".join("  ".join(v.ljust(w) if c in left else v.rjust(w) for c, (v, w) in enumerate(zip(row, widths)))
                     for row in rows)


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from dataclasses import asdict

    from actbert.api import ClipIndex
    from actbert.api.pipeline import pipeline_for_index
    from actbert.cli.options import resolve_device
    from actbert.api.index import IndexMismatchError

    try:  # a non-UTF-8 command-line argument arrives as lone surrogates, which no tokenizer can read
        args.query.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(exc.object[exc.start])  # surrogateescape keeps a bad byte b as U+DC00 + b
        shown = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"character U+{code:04X}"
        print(f"actbert search: error: the query is not valid UTF-8 ({shown} at character {exc.start + 1})",
              file=sys.stderr)
        return 2
    device = resolve_device(args.device)
    try:
        index = ClipIndex(args.index)
        pipe = pipeline_for_index(index, args.model, args.tokenizer, device)
        hits = pipe.search(args.query, top_k=args.top_k, rerank=0 if args.no_rerank else args.rerank, index=index,
                           backend="faiss" if args.faiss else "exact")
    except (FileNotFoundError, IndexMismatchError, ValueError, KeyError, RuntimeError) as exc:
        print(f"actbert search: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        for h in hits:
            print(json.dumps(asdict(h)))
    else:
        print(format_table(hits))
    return 0
