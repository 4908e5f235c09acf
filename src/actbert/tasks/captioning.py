"""YouCook2 video captioning: ActBERT encodes a clip, a transformer decoder writes its sentence.

Model (`Captioner`): the ActBERT encoder (`ActBERTModel`) sees the clip's window of the video — the
action tokens of the clips overlapping `[start, end)` and the best boxes of its key frames
(`scoring.window_inputs`) — and a text stream holding only `[CLS] [SEP]`, so the caption cannot leak
into the memory. The fused region and action hidden states are the memory of a causal transformer
decoder (`caption_decoder.py` explains the design). Training is teacher-forced cross-entropy with
optional label smoothing; the encoder is fine-tuned (its own, smaller learning rate) or frozen.
Decoding: beam search (beam 5, max 20 word pieces, GNMT length penalty) or greedy.

Data: YouCook2 clips `(video id, start, end, sentence)` of the annotations json; train on the
``training`` subset, evaluate on ``validation`` (the test annotations are not public). Metrics via
`actbert.metrics.captioning.caption_metrics` in both protocols of protocols.md, each labelled.

Checkpoint folder: `captioning.json` (task, head config, ActBERT config), `model.safetensors`
(encoder + decoder), `vocab.txt` (the tokenizer); all files written atomically.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from actbert.tasks import scoring as S
from actbert.tasks.caption_decoder import CaptionDecoder, CaptionHeadConfig, beam_search, greedy_decode
from actbert.tasks.finetuning import (fit, load_task_weights, read_task_checkpoint, save_task_checkpoint,
                                      task_checkpoint_dir)
from actbert.tasks.scoring import Clip

__all__ = ["CaptionHeadConfig", "CaptionTrainConfig", "Captioner", "train_captioner", "caption_clips",
           "evaluate_captioning", "youcook2_clips", "add_evaluate_arguments", "run_evaluate",
           "add_finetune_arguments", "run_finetune"]

TASK = "captioning"


@dataclass
class CaptionTrainConfig:
    """Training settings; `head` is the decoder's architecture (saved with the model)."""

    head: CaptionHeadConfig = field(default_factory=CaptionHeadConfig)
    epochs: int = 10
    max_steps: int | None = None  # when set, replaces epochs (the data is cycled)
    batch_size: int = 32
    lr: float = 1e-4  # decoder
    encoder_lr: float = 2e-5  # ActBERT, when fine-tuned: pre-trained weights move slowly
    weight_decay: float = 0.01
    warmup_frac: float = 0.1
    label_smoothing: float = 0.1
    freeze_encoder: bool = False
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "cpu"
    progress: bool = True


def _encoder_of(model) -> nn.Module:
    """The `ActBERTModel` inside an `ActBERTForPretraining` (or the model itself)."""
    return getattr(model, "actbert", model)


class Captioner(nn.Module):
    """ActBERT encoder + caption decoder + tokenizer. `generate` turns video windows into sentences."""

    def __init__(self, encoder: nn.Module, head: CaptionHeadConfig, tokenizer):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.tokenizer = tokenizer
        c = encoder.config
        self.decoder = CaptionDecoder(head, c.region_hidden, c.action_hidden)
        self.window_config = SimpleNamespace(max_actions=head.max_actions, max_regions=head.max_regions,
                                             max_region_frames=c.max_region_frames)
        self.history: list[dict] = []

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # --- inputs -----------------------------------------------------------------------------------------
    def video_inputs(self, store, clips: Sequence[Clip]) -> list[dict[str, np.ndarray]]:
        """Window inputs (actions + regions inside `[start, end)`) of each clip; missing videos are an error."""
        return S.windows_for(store, [c.window for c in clips], self.window_config, "captioning clips")

    def _video_batch(self, items: Sequence[dict]) -> dict[str, torch.Tensor]:
        n_a = max(1, max(it["action"].shape[0] for it in items))
        n_r = max(1, max(it["region"].shape[0] for it in items))
        return S.collate_windows(items, n_a, n_r, self.device)

    def encode(self, vb: dict[str, torch.Tensor]):
        """ActBERT's `EncoderOutput` of a video batch; the text stream holds only `[CLS] [SEP]`."""
        B = vb["action_feats"].shape[0]
        text_ids = torch.tensor([[self.head.bos_id, self.head.eos_id]], device=self.device).expand(B, 2)
        enc = self.encoder
        t = enc.encode_text(text_ids, torch.ones_like(text_ids))
        v = enc.encode_video(vb["action_feats"], vb["action_mask"], vb["region_feats"], vb["region_loc"],
                             vb["region_mask"], vb["region_frame"])
        return enc.fuse(t, v)

    def memory(self, vb: dict[str, torch.Tensor]):
        """The decoder's cross-attention memory (and its padding mask) of a video batch."""
        return self.decoder.memory(self.encode(vb))

    def loss(self, vb: dict[str, torch.Tensor], ids: torch.Tensor, mask: torch.Tensor,
             label_smoothing: float = 0.0, memory=None) -> torch.Tensor:
        """Teacher-forced cross-entropy of `[CLS] w1..wn [SEP]` (predict w1..wn [SEP]); padding ignored."""
        mem, mpad = memory if memory is not None else self.memory(vb)
        ids, mask = ids.to(self.device), mask.to(self.device).bool()
        logits = self.decoder(ids[:, :-1], mem, mpad, ids_pad=~mask[:, :-1])
        target = ids[:, 1:].masked_fill(~mask[:, 1:], -100)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
                               ignore_index=-100, label_smoothing=label_smoothing)

    # --- decoding ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate_ids(self, items: Sequence[dict], method: str = "beam", beam_size: int | None = None,
                     max_len: int | None = None, length_penalty: float | None = None,
                     batch_size: int = 32, progress: bool = False) -> list[list[int]]:
        """Word-piece ids (no `[CLS]`/`[SEP]`) of the caption of each window input."""
        if method not in ("beam", "greedy"):
            raise ValueError(f"method must be 'beam' or 'greedy', got {method!r}")
        out: list[list[int]] = []
        with S.eval_mode(self):
            for i in tqdm(range(0, len(items), batch_size), desc=f"caption ({method})", disable=not progress,
                          leave=False):
                mem, mpad = self.memory(self._video_batch(items[i:i + batch_size]))
                if method == "greedy":
                    out += greedy_decode(self.decoder, mem, mpad, max_len)
                else:
                    out += beam_search(self.decoder, mem, mpad, beam_size, max_len, length_penalty)
        return out

    def generate(self, items: Sequence[dict], method: str = "beam", beam_size: int | None = None,
                 max_len: int | None = None, length_penalty: float | None = None, batch_size: int = 32,
                 progress: bool = False) -> list[str]:
        """The caption (a string) of each window input (`video_inputs(store, clips)` makes them)."""
        ids = self.generate_ids(items, method, beam_size, max_len, length_penalty, batch_size, progress)
        return [self.tokenizer.decode(x) for x in ids]

    def caption(self, video, start: float | None = None, end: float | None = None, **decode) -> str:
        """Caption of one window `[start, end)` of a `VideoFeatures` (the whole video by default)."""
        w = self.window_config
        item = S.window_inputs(video, start, end, w.max_actions, w.max_regions, w.max_region_frames)
        return self.generate([item], **decode)[0]

    # --- checkpoints ------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """`captioning.json` (head + ActBERT config), `model.safetensors`, `vocab.txt`; atomic writes."""
        return save_task_checkpoint(directory, TASK, self, {"head": self.head.to_dict(),
                                                            "actbert": self.encoder.config.to_dict()}, self.tokenizer)

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> "Captioner":
        from actbert.data.tokenizer import WordPieceTokenizer
        from actbert.model import ActBERTModel

        directory = task_checkpoint_dir(directory, TASK)
        meta, enc_cfg = read_task_checkpoint(directory, TASK)
        try:
            head = CaptionHeadConfig.from_dict(meta["head"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{Path(directory) / (TASK + '.json')}: bad head config ({exc})") from exc
        model = cls(ActBERTModel(enc_cfg), head, WordPieceTokenizer.from_pretrained(directory))
        load_task_weights(model, directory)
        return model.to(device).eval()


# --- training -------------------------------------------------------------------------------------------
def train_captioner(model, tokenizer, train_clips: Sequence[Clip], store,
                    cfg: CaptionTrainConfig | None = None) -> Captioner:
    """Fine-tune a `Captioner` built on a copy of `model`'s encoder (the caller's model is not changed).

    The loss history is in `captioner.history` (one record per step).
    """
    cfg = cfg or CaptionTrainConfig()
    if len(train_clips) == 0:
        raise ValueError("no training clip")
    empty = [i for i, c in enumerate(train_clips) if not c.text or not c.text.strip()]
    if empty:
        raise ValueError(f"{len(empty)} training clip(s) have an empty sentence, e.g. clip {empty[0]} of video "
                         f"{train_clips[empty[0]].video_id!r}")
    torch.manual_seed(cfg.seed)
    encoder = copy.deepcopy(_encoder_of(model))
    head = cfg.head.resolve(encoder.config, tokenizer)
    cap = Captioner(encoder, head, tokenizer)
    if head.init_from_text_embeddings and head.d_model == encoder.config.text_hidden \
            and head.vocab_size == encoder.config.vocab_size:
        cap.decoder.word.weight.data.copy_(encoder.text_embeddings.word.weight.data)
    cap.to(cfg.device)
    items = cap.video_inputs(store, train_clips)
    ids, mask = S.tokenize(tokenizer, [c.text for c in train_clips], head.max_len + 2)
    if cfg.freeze_encoder:
        encoder.requires_grad_(False)
    groups = [{"params": list(cap.decoder.parameters()), "lr": cfg.lr}]
    if not cfg.freeze_encoder:
        groups.append({"params": list(encoder.parameters()), "lr": cfg.encoder_lr})

    def loss_fn(rows: list[int]) -> torch.Tensor:
        vb = cap._video_batch([items[r] for r in rows])
        length = int(mask[rows].sum(1).max())
        with torch.set_grad_enabled(not cfg.freeze_encoder):
            enc = cap.encode(vb)
        memory = cap.decoder.memory(enc)  # the projection is trained even when the encoder is frozen
        return cap.loss(vb, ids[rows, :length], mask[rows, :length], cfg.label_smoothing, memory)

    cap.history = fit(cap, groups, len(train_clips), cfg, loss_fn, "train captioner",
                      encoder if cfg.freeze_encoder else None)
    return cap.eval()


# --- evaluation -----------------------------------------------------------------------------------------
def caption_clips(captioner: Captioner, clips: Sequence[Clip], store, method: str = "beam",
                  beam_size: int | None = None, batch_size: int = 32, progress: bool = True) -> list[dict]:
    """One record per clip: video_id, start, end, reference, prediction."""
    preds = captioner.generate(captioner.video_inputs(store, clips), method, beam_size, batch_size=batch_size,
                               progress=progress)
    return [{"video_id": c.video_id, "start": c.start, "end": c.end, "reference": c.text, "prediction": p}
            for c, p in zip(clips, preds)]


def evaluate_captioning(captioner: Captioner, clips: Sequence[Clip], store, protocol: str = "both",
                        method: str = "beam", beam_size: int | None = None, meteor: bool = True,
                        predictions_path: str | Path | None = None, batch_size: int = 32,
                        progress: bool = True) -> dict:
    """Caption every clip and score it: ``{protocol: caption_metrics(...)}`` for ``corpus`` and/or ``per_video``.

    `protocol` is ``corpus``, ``per_video`` or ``both``. One reference per clip (YouCook2). The result
    also has ``decoding``, ``n_clips`` and ``predictions`` (the per-clip records of `caption_clips`,
    also written as JSON lines to `predictions_path` when given). One METEOR process serves every protocol.
    """
    from actbert.metrics.captioning import _MeteorSession, caption_metrics

    protocols = ("corpus", "per_video") if protocol == "both" else (protocol,)
    if len(clips) == 0:
        raise ValueError("no clip to caption")
    records = caption_clips(captioner, clips, store, method, beam_size, batch_size, progress)
    preds = {i: r["prediction"] for i, r in enumerate(records)}
    refs = {i: [r["reference"]] for i, r in enumerate(records)}
    video_of = {i: r["video_id"] for i, r in enumerate(records)}
    out: dict[str, Any] = {}
    with _MeteorSession(True) if meteor else contextlib.nullcontext() as m:
        for p in protocols:
            out[p] = caption_metrics(preds, refs, protocol=p, video_of=video_of, meteor=m if meteor else False)
    h = captioner.head
    out["decoding"] = {"method": method, "beam_size": 1 if method == "greedy" else (beam_size or h.beam_size),
                       "max_len": h.max_len, "length_penalty": h.length_penalty}
    out["n_clips"] = len(clips)
    out["predictions"] = records
    if predictions_path is not None:
        from actbert.utils import atomic_write_text

        atomic_write_text(predictions_path, "".join(json.dumps(r) + "\n" for r in records))
    return out


def youcook2_clips(path: str | Path, subset: str) -> list[Clip]:
    """Every annotated clip of one subset of the YouCook2 json, in file order."""
    from actbert.data.formats import read_youcook2

    videos = read_youcook2(path, subset=subset)
    clips = [Clip(c.video_id, c.sentence, c.start, c.end) for v in videos.values() for c in v.clips]
    if not clips:
        raise ValueError(f"{path}: no clip in subset {subset!r}")
    return clips


# --- command line ---------------------------------------------------------------------------------------
def add_evaluate_arguments(parser: argparse.ArgumentParser,
                           what: str = "fine-tuned captioning model (`actbert finetune captioning --out`)") -> None:
    parser.description = ("YouCook2 captioning with a fine-tuned captioner (`actbert finetune captioning` makes "
                          "one): beam search, BLEU-3/4, METEOR, ROUGE-L, CIDEr in both protocols.")
    S.add_common_arguments(parser, what=what)
    parser.set_defaults(batch_size=32)
    parser.add_argument("--annotations", required=True, help="youcookii_annotations_trainval.json")
    parser.add_argument("--subset", default="validation", help="subset to caption (the test labels are not public)")
    parser.add_argument("--protocol", choices=("both", "corpus", "per_video"), default="both", help="caption metric protocol: corpus-level (UniVL/VideoCLIP), per-video PTB (VideoBERT era), or both")
    parser.add_argument("--method", choices=("beam", "greedy"), default="beam", help="decoding: beam search (beam 5 by default) or greedy")
    parser.add_argument("--beam-size", type=int, default=None, help="default: the checkpoint's (5)")
    parser.add_argument("--no-meteor", action="store_true", help="skip METEOR (needs Java, ~8 s start-up)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips (a smoke test, labelled)")
    parser.add_argument("--dataset", default="youcook2", help="dataset name written to results.json")


def _evaluate_and_write(captioner: Captioner, store, args, checkpoint: str, extra_config=None) -> dict:
    from actbert.tasks.results import write_results

    clips = youcook2_clips(args.annotations, args.subset)
    split = args.subset
    if args.limit:
        clips, split = clips[:args.limit], f"{split}[:{args.limit}]"
    m = evaluate_captioning(captioner, clips, store, args.protocol, args.method, args.beam_size,
                            not args.no_meteor, Path(args.out) / "predictions.jsonl", args.batch_size,
                            not args.no_progress)
    records = m.pop("predictions")
    protocol = "; ".join(f"{p}: {m[p]['tokenization']}" for p in ("corpus", "per_video") if p in m)
    write_results(args.out, "captioning", args.dataset, protocol, split, m, checkpoint,
                  {**S.run_config(args), **(extra_config or {})},
                  extra={"examples": records[:10]})
    for p in ("corpus", "per_video"):
        if p in m:
            r = m[p]
            print(f"{args.dataset} {split} [{p}] BLEU3 {r['BLEU3']:.2f} BLEU4 {r['BLEU4']:.2f} "
                  f"METEOR {r.get('METEOR', float('nan')):.2f} ROUGE_L {r['ROUGE_L']:.2f} CIDEr {r['CIDEr']:.4f}")
    print(f"-> {args.out}")
    return m


def run_evaluate(args: argparse.Namespace) -> int:
    from actbert.data.store import FeatureStore

    captioner = Captioner.load(args.model, args.device)
    _evaluate_and_write(captioner, FeatureStore(args.store), args, str(args.model))
    return 0


def add_finetune_arguments(parser: argparse.ArgumentParser) -> None:
    add_evaluate_arguments(parser, what="ActBERT model to fine-tune")
    parser.description = ("Train a caption decoder over ActBERT (teacher forcing) on YouCook2 `training`, then "
                          "evaluate on --subset (validation) with beam search in both protocols.")
    g = parser.add_argument_group("fine-tuning")
    g.add_argument("--train-subset", default="training", help="YouCook2 subset to fine-tune on")
    g.add_argument("--epochs", type=int, default=10, help="passes over the training clips")
    g.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps (default: all epochs)")
    g.add_argument("--train-batch-size", type=int, default=32, help="clips per training step")
    g.add_argument("--lr", type=float, default=1e-4, help="learning rate of the decoder")
    g.add_argument("--encoder-lr", type=float, default=2e-5, help="learning rate of the ActBERT encoder (when not frozen)")
    g.add_argument("--label-smoothing", type=float, default=0.1, help="label smoothing of the teacher-forced cross-entropy")
    g.add_argument("--freeze-encoder", action="store_true", help="train only the decoder; keep ActBERT's weights fixed")
    g.add_argument("--decoder-layers", type=int, default=2, help="transformer decoder layers")
    g.add_argument("--decoder-heads", type=int, default=4, help="attention heads of the decoder")
    g.add_argument("--decoder-width", type=int, default=None, help="default: ActBERT's text width")
    g.add_argument("--max-len", type=int, default=20, help="longest generated caption, in word pieces")
    g.add_argument("--seed", type=int, default=0, help="seed of data order and initialisation")


def run_finetune(args: argparse.Namespace) -> int:
    from actbert.data.store import FeatureStore
    from actbert.utils import atomic_write_json, seed_everything

    seed_everything(args.seed)
    store = FeatureStore(args.store)
    model = S.load_model(args.model, args.device)
    tokenizer = S.load_tokenizer(args.model, args.tokenizer)
    train = youcook2_clips(args.annotations, args.train_subset)
    test_videos = {c.video_id for c in youcook2_clips(args.annotations, args.subset)}
    leak = sorted({c.video_id for c in train} & test_videos)
    if leak:  # a test score must never come from training videos
        raise ValueError(f"{len(leak)} video(s) are in both {args.train_subset!r} and {args.subset!r}: {leak[:5]}")
    head = CaptionHeadConfig(d_model=args.decoder_width, num_layers=args.decoder_layers,
                             num_heads=args.decoder_heads, max_len=args.max_len)
    cfg = CaptionTrainConfig(head=head, epochs=args.epochs, max_steps=args.max_steps,
                             batch_size=args.train_batch_size, lr=args.lr, encoder_lr=args.encoder_lr,
                             label_smoothing=args.label_smoothing, freeze_encoder=args.freeze_encoder,
                             seed=args.seed, device=args.device, progress=not args.no_progress)
    captioner = train_captioner(model, tokenizer, train, store, cfg)
    model_dir = captioner.save(Path(args.out) / "model")
    atomic_write_json(model_dir / "train_history.json", captioner.history)
    top = Counter(c.text for c in train).most_common(1)[0]
    train_cfg = {k: v for k, v in asdict(cfg).items() if k != "head"}
    _evaluate_and_write(captioner, store, args, str(model_dir),
                        {"finetuned_from": str(args.model), "train_clips": len(train),
                         "steps": len(captioner.history), "train": train_cfg, "head": captioner.head.to_dict(),
                         "most_frequent_train_caption": top[0]})
    return 0
