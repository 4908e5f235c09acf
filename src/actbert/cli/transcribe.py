"""`actbert transcribe`: narration captions from videos (subtitles, else offline speech recognition)."""
from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

DESCRIPTION = """Write HowTo100M-style caption JSON ({video_id: {"start", "end", "text"}}, with word times and
confidences beside them) for a folder of videos, read by `actbert vocab`, `pretrain` and `Pipeline` like
HowTo100M's captions. Each video's narration comes from the first source that has it: a sidecar subtitle
file (VIDEO.srt, VIDEO.en.vtt, .ass, .ttml...; YouTube auto-captions included), a subtitle stream in the
container, or speech recognition of its audio track (offline: pocketsphinx's bundled US-English model, or a
local Whisper folder). Resumable (re-run the same command after a crash) and shardable over machines like
`actbert extract`. Videos without usable audio or subtitles are skipped, counted and listed; exit status 1
when some were skipped. See docs/transcribe.md."""


def _env_shards():
    from actbert.cli.extract import _env_int

    return _env_int("SLURM_ARRAY_TASK_COUNT", "WORLD_SIZE"), _env_int("SLURM_ARRAY_TASK_ID", "RANK")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from actbert.cli.options import add_device, add_no_progress

    parser.add_argument("videos", help="directory of videos (searched recursively), a text file with one path per "
                                       "line, or a single video / audio file")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE",
                        help="caption JSON to write (resumed if it exists); shard I of K writes "
                             "FILE-stem.partIIIofKKK.json and the last shard to finish merges them into FILE")
    parser.add_argument("--recognizer", choices=("pocketsphinx", "whisper"), default="pocketsphinx",
                        help="speech recognizer for videos without subtitles: pocketsphinx (offline, model in "
                             "its wheel) or whisper (a local model folder given with --model)")
    parser.add_argument("--model", type=Path, default=None, metavar="DIR",
                        help="Whisper model folder (save_pretrained of WhisperForConditionalGeneration + "
                             "WhisperProcessor); never downloaded")
    parser.add_argument("--vocabulary-from", type=Path, default=None, metavar="FILE",
                        help="domain text (one sentence per line, or a caption JSON): pocketsphinx decodes with a "
                             "trigram language model of it instead of its general English model")
    parser.add_argument("--sources", default="sidecar,stream,asr",
                        help="comma-separated sources tried in order: sidecar (subtitle file beside the video), "
                             "stream (subtitle stream in the container), asr (speech recognition)")
    parser.add_argument("--max-line-seconds", type=float, default=8.0,
                        help="a recognised utterance longer than this is split into several caption lines")
    parser.add_argument("--num-shards", type=int, default=None,
                        help="split the videos into K shards by a stable hash of the video id "
                             "(default $SLURM_ARRAY_TASK_COUNT or $WORLD_SIZE, else 1)")
    parser.add_argument("--shard-index", type=int, default=None,
                        help="which shard this process transcribes, 0..K-1 (default $SLURM_ARRAY_TASK_ID or $RANK, "
                             "else 0)")
    parser.add_argument("--no-resume", action="store_true", help="refuse to write into a caption file that has videos")
    parser.add_argument("--retry-skipped", action="store_true",
                        help="try again the videos an earlier run skipped (they are not retried by default)")
    add_device(parser)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for Whisper (default: torch's)")
    add_no_progress(parser)


def run(args: argparse.Namespace) -> int:
    from actbert.cli.options import resolve_device
    from actbert.speech.transcribe import transcribe_videos

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    sources = tuple(s.strip() for s in args.sources.split(",") if s.strip())
    if args.recognizer == "whisper" and args.model is None and "asr" in sources:
        raise SystemExit("actbert transcribe: --recognizer whisper needs --model DIR (a local Whisper folder)")
    if args.model is not None and not (args.model / "config.json").is_file():
        raise SystemExit(f"actbert transcribe: {args.model}: not a model folder (no config.json)")
    env_k, env_i = _env_shards()
    num_shards = args.num_shards or env_k or 1
    shard_index = args.shard_index if args.shard_index is not None else (env_i or 0)
    single = Path(args.videos).is_file() and not args.videos.endswith((".txt", ".lst", ".list"))
    if not Path(args.videos).exists():
        raise SystemExit(f"actbert transcribe: {args.videos}: no such file or directory")

    settings = {"recognizer": args.recognizer, "max_line_seconds": args.max_line_seconds}
    if args.recognizer == "whisper":
        settings["model"] = str(args.model)
    vocab_text = None
    if args.vocabulary_from is not None:
        from actbert.speech.lm import read_vocabulary_text

        try:
            vocab_text = read_vocabulary_text(args.vocabulary_from)
        except ValueError as exc:
            raise SystemExit(f"actbert transcribe: {exc}")
        settings["vocabulary_from"] = str(args.vocabulary_from)
    workdir = tempfile.TemporaryDirectory(prefix="actbert-lm-")

    def make_recognizer():
        return build_recognizer(args.recognizer, args.model, vocab_text, workdir.name, args.max_line_seconds,
                                resolve_device(args.device), args.threads)

    try:
        summary = transcribe_videos(args.videos, args.out, make_recognizer, sources=sources, settings=settings,
                                    num_shards=num_shards, shard_index=shard_index, resume=not args.no_resume,
                                    retry_skipped=args.retry_skipped, progress=not args.no_progress)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        raise SystemExit(f"actbert transcribe: {exc}")
    finally:
        workdir.cleanup()
    if single and summary.skipped:
        _vid, path, reason = summary.skipped[0]
        raise SystemExit(f"actbert transcribe: {path}: {reason}")
    print(summary.table())
    return 1 if summary.skipped else 0


def build_recognizer(kind: str, model: Path | None, vocab_text: list[str] | None, workdir: str,
                     max_line_seconds: float = 8.0, device: str = "cpu", threads: int | None = None):
    """The recognizer a `transcribe` run uses (built on the first video that needs speech recognition)."""
    if kind == "whisper":
        import torch

        from actbert.speech.recognizers import WhisperRecognizer

        if threads:
            torch.set_num_threads(threads)
        rec = WhisperRecognizer(model, device=device)
    else:
        from pocketsphinx import get_model_path

        from actbert.speech.lm import build_domain_model
        from actbert.speech.recognizers import PocketSphinxRecognizer

        domain = None
        if vocab_text is not None:
            domain = build_domain_model(vocab_text, workdir, Path(get_model_path()) / "en-us" / "cmudict-en-us.dict")
        rec = PocketSphinxRecognizer(domain)
    rec.max_line_seconds = max_line_seconds
    return rec
