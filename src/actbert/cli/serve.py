"""`actbert serve`: a local web page to search an index and look at what the model found."""
from __future__ import annotations

import argparse

DESCRIPTION = """Start a local web app over an index built by `actbert index`: a search page (thumbnails, time
ranges and scores; click a hit to play that clip), a page per video (player, transcript, timeline of the model's
predicted steps) and the JSON API behind them (docs/api.md). The model is loaded once. By default only this
computer can connect (127.0.0.1); another --host has to be asked for. Stop it with Ctrl-C."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from actbert.cli.options import add_device, add_model

    parser.add_argument("index", metavar="INDEX", help="index folder (actbert index)")
    add_model(parser, required=False, help="ActBERT model folder (checkpoint or run folder; default: the one "
                                           "recorded in the index)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the model folder's vocab.txt)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; 0.0.0.0 lets every host on your network search your videos")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free port)")
    parser.add_argument("--top-k", type=int, default=10, help="hits per query when the request names no k")
    parser.add_argument("--rerank", type=int, default=50,
                        help="first-stage candidates re-scored by the full model (as `actbert search`)")
    parser.add_argument("--no-rerank", action="store_true", help="first stage only (same as --rerank 0)")
    parser.add_argument("--faiss", action="store_true",
                        help="first stage with a faiss flat inner-product index (loads all embeddings in RAM)")
    parser.add_argument("--segmenter", default=None,
                        help="segmentation head folder (actbert finetune segmentation): a timeline of predicted "
                             "steps on every video page; without it the page places steps the user types")
    parser.add_argument("--transcripts", default=None,
                        help="HowTo100M-format caption json {video: {start, end, text}} (default: a subtitle file "
                             "such as NAME.vtt / NAME.srt beside each video, or narration.json / raw_caption.json near the videos)")
    parser.add_argument("--max-concurrent", type=int, default=1,
                        help="model requests run at once (threads; on a CPU one request already uses every core)")
    parser.add_argument("--max-queue", type=int, default=16,
                        help="model requests allowed to wait; more are refused with HTTP 503 (bounds memory)")
    add_device(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    from actbert.api.index import IndexMismatchError
    from actbert.serve import SearchService, ServeOptions, create_app, is_loopback

    try:
        options = ServeOptions(top_k=args.top_k, rerank=0 if args.no_rerank else args.rerank,
                               backend="faiss" if args.faiss else "exact", max_concurrent=args.max_concurrent,
                               max_queue=args.max_queue)
        if not 1 <= options.top_k <= options.max_k or not 0 <= options.rerank <= options.max_k:
            raise ValueError(f"--top-k must be 1..{options.max_k} and --rerank 0..{options.max_k}")
        service = SearchService(args.index, transcripts=args.transcripts, options=options, model=args.model,
                                tokenizer=args.tokenizer, device=args.device, segmenter=args.segmenter)
    except (FileNotFoundError, IndexMismatchError, ValueError, KeyError, RuntimeError) as exc:
        print(f"actbert serve: error: {exc}", file=sys.stderr)
        return 2
    import socket

    import uvicorn

    try:  # bind first, so the address printed is the one served (port 0 picks a free one)
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
        sock.listen(2048)  # connections made once the address is printed wait for uvicorn instead of failing
    except OSError as exc:
        print(f"actbert serve: error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    app = create_app(service, host=args.host, port=port)
    where = "this computer only" if is_loopback(args.host) else "REACHABLE FROM OTHER HOSTS"
    print(f"actbert serve: {service.index.n_clips} clips of {len(service.index.videos)} videos; "
          f"open http://{'[' + args.host + ']' if ':' in args.host else args.host}:{port}/ ({where}); Ctrl-C stops",
          flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
    return 0
