"""`Pipeline`: ActBERT on your own videos — index a folder, search it with text, caption, answer, segment, localize.

    model = ActBERTForPretraining.from_pretrained("runs/pretrain")      # or a checkpoint folder
    pipe = actbert.Pipeline(model, action_net="nets/action", detector="nets/detector")
    pipe.index("my_videos/", out="my_index");  hits = pipe.search("cut the tomato", top_k=10)

Search is two-stage: the query's contrastive text embedding against every clip's stored video embedding
(`actbert.api.index`, streamed from disk), then the top `rerank` clips re-scored by the full Tangled
Transformer (`model.score_pairs`, log P(matched)) from the feature-store windows, via the cached scoring
engine of `actbert.tasks.scoring`. The first stage only means something for a checkpoint trained with the
contrastive loss (`loss_weights["contrastive"] > 0`); otherwise use a large `rerank`.
"""
from __future__ import annotations

import logging
import math
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from actbert.api.index import ClipIndex, IndexWriter, clip_windows, fingerprint
from actbert.training.checkpointing import resolve_checkpoint

__all__ = ["Pipeline", "Hit", "UnknownWordsWarning", "resolve_checkpoint"]
log = logging.getLogger(__name__)
_VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts")


@dataclass(frozen=True)
class Hit:
    """One search result. `score` is what the hit was ranked by: the full model's log P(matched) when
    `reranked`, else (below the re-ranking depth, or with `rerank=0`) the first-stage cosine; the two are
    on different scales, so compare scores only between hits of the same kind. `first_stage_score` is
    always the cosine of the contrastive embeddings. `path` is the absolute path of the source video."""

    video: str
    start: float
    end: float
    score: float
    first_stage_score: float
    path: str | None = None  # the source video file recorded at extraction, when known
    reranked: bool = False


class UnknownWordsWarning(UserWarning):
    """Most words of a query are unknown to the model's vocabulary: its results are close to random."""


class Pipeline:
    """Inference on your own videos with one ActBERT model (see the module docstring).

    `model`: an `ActBERTForPretraining` or a checkpoint / run folder. `tokenizer`: default, the `vocab.txt`
    of the checkpoint folder. `action_net` / `detector`: objects or folders, needed only to extract
    features of raw videos. `captioner` / `segmenter`: fine-tuned heads (objects or folders) for
    `caption` / `segment`.
    """

    def __init__(self, model: Any, tokenizer: Any = None, action_net: Any = None, detector: Any = None,
                 captioner: Any = None, segmenter: Any = None, device: str | None = None, batch_size: int = 64):
        from actbert.model import ActBERTForPretraining

        self.model_dir: Path | None = None
        if isinstance(model, (str, Path)):
            self.model_dir = resolve_checkpoint(model).resolve()  # absolute: index.json records it
            model = ActBERTForPretraining.from_pretrained(self.model_dir)
        else:  # a loaded model: find its folder when the loader recorded it (for the default vocab.txt)
            src = getattr(model, "source_dir", None) or getattr(model, "name_or_path", None)
            self.model_dir = Path(src) if src else None
        self.device = torch.device(device or next(model.parameters()).device)
        self.model = model.to(self.device).eval()
        if tokenizer is None:
            tokenizer = self._default_tokenizer()
        self.tokenizer = tokenizer
        self.action_net, self.detector = action_net, detector
        self.captioner, self.segmenter = captioner, segmenter
        self.batch_size = int(batch_size)
        self._fp = None
        self._index: ClipIndex | None = None
        self._extra_store: Path | None = None  # raw videos given to caption/answer/... are extracted here
        self._cleanup: weakref.finalize | None = None

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> "Pipeline":
        return cls(path, **kwargs)

    def _default_tokenizer(self):
        from actbert.data.tokenizer import WordPieceTokenizer

        cfg_dirs = [self.model_dir] if self.model_dir else []
        for d in cfg_dirs:
            if (d / "vocab.txt").is_file() or (d / "tokenizer.json").is_file():
                return WordPieceTokenizer.from_pretrained(d)
        where = f"the checkpoint folder {self.model_dir}" if self.model_dir else "an in-memory model"
        raise FileNotFoundError(f"no vocab.txt in {where}: pass tokenizer=WordPieceTokenizer.from_pretrained(DIR) "
                                "(save one beside the weights with model.save_pretrained(dir, tokenizer=tok))")

    @property
    def fingerprint(self):
        if self._fp is None:
            self._fp = fingerprint(self.model, self.tokenizer, str(self.model_dir) if self.model_dir else None)
        return self._fp

    # ------------------------------------------------------------------------------------------- indexing
    def index(self, source: str | Path, out: str | Path, clip_seconds: float = 8.0, stride: float | None = None,
              batch_size: int | None = None, chunk_rows: int = 32768, dtype: str = "float32",
              overwrite: bool = False, progress: bool = True, bf16: bool = False) -> ClipIndex:
        """Index every video of `source` (a feature store, or videos: a folder, list file or one file) as clips
        of `clip_seconds` every `stride` s (default: no overlap) into the folder `out`; returns the index
        (also the one `search` uses from now on). Raw videos are extracted into `out/store` (resumable).
        `dtype="float16"` halves the embedding files but makes exact search ~4x slower (docs/performance/search.md).
        `bf16` runs the action network under bfloat16 autocast while extracting (as `actbert extract --bf16`)."""
        from tqdm.auto import tqdm

        from actbert.data.store import FeatureStore
        from actbert.tasks import scoring as S

        out, source = Path(out), Path(source)
        self.model.require_contrastive_head()  # a model without a contrastive head (converted from PaddleVideo) cannot index
        if (out / "index.json").exists() and not overwrite:  # before a possibly long extraction, not after
            raise FileExistsError(f"{out} already holds an index; pass overwrite=True (--overwrite) to rebuild it "
                                  "(an extracted store/ inside it is kept)")
        stride = float(stride or clip_seconds)
        info: dict = {"clip_seconds": float(clip_seconds), "stride": stride, "source": str(source.resolve())}
        if (source / "shards").is_dir():
            store_path, store_ref = source.resolve(), str(source.resolve())
        elif source.exists():
            store_path, store_ref = out / "store", "store"
            info["extraction"] = self._extract(source, store_path, progress, bf16)
            for f in info["extraction"]["failed"]:  # once here; `actbert index` lists them in its summary instead
                log.warning("video %s (%s) was not indexed: %s", f["video"], f["path"], f["reason"])
        else:
            raise FileNotFoundError(f"{source} does not exist (expected a feature store or videos)")
        store = FeatureStore(store_path)
        cfg = self.model.config
        dims = {k: store.meta.get(k) for k in ("action_feat_dim", "region_feat_dim")}
        for k, v in dims.items():
            if v is not None and v != getattr(cfg, k):
                raise ValueError(f"feature store {store_path} has {k}={v} but the model expects {getattr(cfg, k)}: "
                                 "extract with the action net / detector the model was trained on")
        bs = int(batch_size or self.batch_size)
        writer = IndexWriter(out, cfg.contrastive_dim, chunk_rows, dtype, overwrite)
        pending: list[tuple[str, tuple[float, float], dict]] = []

        def flush():
            emb = self._embed_windows([p[2] for p in pending])
            start = 0
            while start < len(pending):  # consecutive windows of one video go in one add()
                vid, stop = pending[start][0], start
                while stop < len(pending) and pending[stop][0] == vid:
                    stop += 1
                writer.add(vid, [p[1] for p in pending[start:stop]], emb[start:stop])
                start = stop
            pending.clear()

        with torch.no_grad():
            for video in tqdm(store.iter_videos(), total=len(store), desc="index", unit="video", disable=not progress):
                for w in clip_windows(video.duration, clip_seconds, stride):
                    pending.append((video.video_id, w, S.window_inputs(video, w[0], w[1], cfg.max_actions,
                                                                       cfg.max_regions, cfg.max_region_frames)))
                    if len(pending) >= bs:
                        flush()
            if pending:
                flush()
        info.update(self.fingerprint.as_dict(), store=store_ref, action_feat_dim=cfg.action_feat_dim,
                    region_feat_dim=cfg.region_feat_dim, max_actions=cfg.max_actions, max_regions=cfg.max_regions)
        self._index = writer.close(info)
        return self._index

    def _extract(self, source: Path, store_path: Path, progress: bool, bf16: bool = False) -> dict:
        from actbert.video.extract import extract_features

        net, det = self._extractors()
        summary = extract_features(source, store_path, net, det, progress=progress, bf16=bf16)
        return {"extracted": len(summary.done), "already_in_store": len(summary.already_done),
                "failed": [{"video": v, "path": p, "reason": r} for v, p, r in summary.failed]}

    def _extractors(self):
        if self.action_net is None or self.detector is None:
            raise ValueError("raw videos need feature extraction: give an action network and a region detector "
                             "(Pipeline(..., action_net=DIR, detector=DIR), or `--action-net DIR --detector DIR`; from "
                             "`actbert train-action-net` / `actbert train-detector`), or index a feature store "
                             "written by `actbert extract` instead")
        if isinstance(self.action_net, (str, Path)):
            from actbert.video.action_net import load_action_net

            self.action_net = load_action_net(self.action_net, device=self.device)
        if isinstance(self.detector, (str, Path)):
            from actbert.video.detector import load_region_extractor

            self.detector = load_region_extractor(self.detector)
        return self.action_net, self.detector

    def _embed_windows(self, items: Sequence[dict]) -> np.ndarray:
        """Contrastive video embeddings [len(items), D]; slots padded to the config's limits so a clip's
        embedding never depends on which batch it was in."""
        from actbert.tasks import scoring as S

        cfg = self.model.config
        b = S.collate_windows(items, max(1, cfg.max_actions), max(1, cfg.max_regions), self.device)
        state = self.model.actbert.encode_video(b["action_feats"], b["action_mask"], b["region_feats"],
                                                b["region_loc"], b["region_mask"], b["region_frame"])
        return self.model.embed_video(state).float().cpu().numpy()

    def open_index(self, path: str | Path) -> ClipIndex:
        """Use the index at `path` for `search` (checked against this model and vocabulary)."""
        idx = ClipIndex(path)
        idx.check(self.fingerprint)
        self._index = idx
        return idx

    # --------------------------------------------------------------------------------------------- search
    @torch.no_grad()
    def search(self, query: str, top_k: int = 10, rerank: int = 50, index: str | Path | ClipIndex | None = None,
               backend: str = "exact") -> list[Hit]:
        """The `top_k` clips for `query`: first stage over every clip, full-model re-ranking of the best
        `rerank` (0: first stage only). Re-ranked clips come first, by full-model score."""
        from actbert.tasks import scoring as S

        if not isinstance(query, str) or not query.strip():
            raise ValueError("empty query: give some words to search for")
        if top_k < 1 or rerank < 0:
            raise ValueError(f"top_k must be >= 1 and rerank >= 0, got {top_k} and {rerank}")
        idx = self._use_index(index)
        self._warn_unknown_words(query)
        cfg = self.model.config
        ids, mask = S.tokenize(self.tokenizer, [query], cfg.max_text_len)
        text = self.model.actbert.encode_text(ids.to(self.device), mask.to(self.device))
        q = self.model.embed_text(text).float().cpu().numpy()
        first, rows = idx.search(q, max(top_k, rerank), backend)
        first, rows = first[0], rows[0]
        clips = idx.clips(rows.tolist())
        full: list[float | None] = [None] * len(rows)
        n = min(rerank, len(rows))
        if n:
            store = idx.store()
            items = S.windows_for(store, [clips[i] for i in range(n)], cfg, f"index {idx.path}")
            video = S.encode_windows(self.model, items, self.batch_size)
            s = S.score_pairs(self.model, text, video, np.zeros(n, np.int64), np.arange(n), self.batch_size)
            full[:n] = [float(x) for x in s]
        order = sorted(range(n), key=lambda i: (-full[i], i)) + list(range(n, len(rows)))
        paths = self._paths(idx, {clips[i][0] for i in order[:top_k]})
        return [Hit(clips[i][0], clips[i][1], clips[i][2], float(first[i]) if full[i] is None else full[i],
                    float(first[i]), paths.get(clips[i][0]), full[i] is not None) for i in order[:top_k]]

    def _warn_unknown_words(self, text: str) -> None:
        """Warn when most words of `text` are unknown to the vocabulary (the demo's models know only the
        generated kitchen world: docs/world.md); such a query ranks clips close to random."""
        unknown_words = getattr(self.tokenizer, "unknown_words", None)
        if unknown_words is None:
            return
        unknown, total = unknown_words(text)
        if total and len(unknown) * 2 > total:
            import warnings

            warnings.warn(f"{len(unknown)} of the {total} words of {text!r} are unknown to the model's vocabulary "
                          f"({', '.join(unknown[:8])}): results will be close to random. The model only knows the "
                          "words of the narration it was trained on (the demo's: a generated kitchen world, "
                          "docs/world.md)", UnknownWordsWarning, stacklevel=4)

    def _use_index(self, index) -> ClipIndex:
        if isinstance(index, ClipIndex):
            index.check(self.fingerprint)
            return index
        if index is not None:
            return self.open_index(index)
        if self._index is None:
            raise ValueError("no index: call pipe.index(VIDEOS, out=DIR) or pipe.open_index(DIR) first, "
                             "or pass index=DIR")
        return self._index

    @staticmethod
    def _paths(idx: ClipIndex, vids: set[str]) -> dict[str, str]:
        try:
            store = idx.store()
            # one small field: read() with no field list would load every array of the video
            return {v: store.read(v, ("frame_times",))["_entry"].get("extra", {}).get("path") for v in vids if v in store}
        except (OSError, KeyError):
            return {}

    # ------------------------------------------------------------------------------ single-video tasks
    def video_features(self, video: Any):
        """`VideoFeatures` of `video`: a `VideoFeatures`, an id in the current index's store, or a video file
        path (looked up by its id, extracted when absent; a file that no longer exists is an error)."""
        from actbert.data.store import FeatureStore
        from actbert.data.store_format import VideoFeatures

        if isinstance(video, VideoFeatures):
            return video
        p = Path(video)
        as_path = p.suffix.lower() in _VIDEO_EXTS or len(p.parts) > 1
        vid = p.stem if as_path else str(video)
        if as_path and not p.is_file():
            raise FileNotFoundError(f"video {p} does not exist (moved or deleted?)")
        stores = []
        if self._index is not None:
            stores.append(self._index.store())
        if self._extra_store is not None and (self._extra_store / "shards").is_dir():
            stores.append(FeatureStore(self._extra_store))
        for st in stores:
            found = _stored_id(st, p) if as_path else (vid if vid in st else None)
            if found is not None:
                return st[found]
        if not as_path:
            where = f"the feature store {self._index.store_path} of index {self._index.path}" if self._index else \
                "any index (none is open)"
            raise KeyError(f"video {vid!r} is not in {where}: pass the path to the video file to extract it")
        if self._extra_store is None:
            self._extra_store = Path(tempfile.mkdtemp(prefix="actbert-pipeline-"))
            # removed by close(), or when this pipeline is garbage-collected / the interpreter exits
            self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._extra_store), True)
        summary = self._extract(p, self._extra_store, progress=False)
        if summary["failed"]:
            raise ValueError(f"could not extract features of {p}: {summary['failed'][0]['reason']}")
        store = FeatureStore(self._extra_store)
        return store[_stored_id(store, p)]

    def close(self) -> None:
        """Delete the temporary feature store of videos extracted on the fly (`answer`, `caption`, ... on a
        file outside the index). Also done automatically when the pipeline is garbage-collected."""
        if self._cleanup is not None:
            self._cleanup()
        self._extra_store, self._cleanup = None, None

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @torch.no_grad()
    def answer(self, video: Any, options: Sequence[str]) -> tuple[int, list[float]]:
        """Multiple choice: `(index of the best option, log P(matched) of each option)` for the whole video."""
        from actbert.tasks.qa import qa_scores

        if not options or any(not isinstance(o, str) or not o.strip() for o in options):
            raise ValueError("options must be a non-empty list of non-empty strings")
        feats = self.video_features(video)
        q = _Question("q", feats.video_id, tuple(options))
        scores = qa_scores(self.model, self.tokenizer, [q], _OneStore(feats), self.batch_size, progress=False)[0]
        return int(np.argmax(scores)), [float(s) for s in scores]

    @torch.no_grad()
    def localize(self, video: Any, steps: Sequence[str], window: int = 1) -> list[int]:
        """One second per step, in the given order (zero-shot, order-constrained decoding of matching scores)."""
        from actbert.metrics.localization import order_constrained_decode
        from actbert.tasks import scoring as S
        from actbert.tasks.localization import step_scores

        if not steps or any(not isinstance(s, str) or not s.strip() for s in steps):
            raise ValueError("steps must be a non-empty list of non-empty strings")
        feats = self.video_features(video)
        seconds = max(1, int(math.ceil(float(feats.duration))))
        if seconds < len(steps):
            raise ValueError(f"video {feats.video_id!r} lasts {seconds} s, fewer seconds than the {len(steps)} steps")
        ids, mask = S.tokenize(self.tokenizer, list(steps), self.model.config.max_text_len)
        text = S.encode_texts(self.model, ids, mask, self.batch_size)
        scores = step_scores(self.model, text, feats, window, self.batch_size)
        return [int(t) for t in order_constrained_decode(scores)]

    def caption(self, video: Any, start: float | None = None, end: float | None = None) -> str:
        """A caption of `[start, end)` of `video` (whole video by default) by the fine-tuned captioning head."""
        from actbert.api.heads import load_head

        self.captioner, fn = load_head("captioner", self.captioner, self.model, self.tokenizer)
        feats = self.video_features(video)
        duration = float(feats.duration)
        lo, hi = 0.0 if start is None else float(start), duration if end is None else float(end)
        # one second of slack: container durations and the last decoded clip differ by a frame or so
        if not (0.0 <= lo < hi) or lo >= duration or hi > duration + 1.0:
            raise ValueError(f"caption range {lo:g}-{hi:g} s is outside video {feats.video_id!r}, which lasts "
                             f"{duration:.1f} s: give 0 <= start < end <= {duration:.1f}")
        return str(fn(feats, start, end))

    def segment(self, video: Any) -> list[str]:
        """One step name per second of `video` by the fine-tuned segmentation head: "background" where no
        step happens, else the step's name from the head's checkpoint ("step K" when it has none).
        `segment_ids` gives the class ids."""
        ids = self.segment_ids(video)  # loads a head given as a folder, with its step names
        names = getattr(self.segmenter, "step_names", None) or {}
        return ["background" if k == 0 else names.get(k, f"step {k}") for k in ids]

    def segment_ids(self, video: Any) -> list[int]:
        """One class id per second of `video` (0 = background, else a step id) by the segmentation head."""
        from actbert.api.heads import load_head

        self.segmenter, fn = load_head("segmenter", self.segmenter, self.model, self.tokenizer)
        return [int(x) for x in fn(self.video_features(video))]


def _stored_id(store, path: Path) -> str | None:
    """The id under which the video file `path` is in `store`: its file name without extension, or a
    folder-qualified id ("a__cook", `actbert.video.extract.video_ids`) whose recorded path is this file."""
    target, stem = str(path.resolve()), path.stem
    fallback = stem if stem in store else None
    for vid in [v for v in store.video_ids() if v == stem or v.endswith("__" + stem) or v.endswith("__" + path.name)]:
        recorded = store.read(vid, ("frame_times",))["_entry"].get("extra", {}).get("path")
        if recorded == target:
            return vid
        if recorded is not None and vid == fallback and Path(recorded).is_absolute():
            fallback = None  # another file of the same name
    return fallback


@dataclass(frozen=True)
class _Question:  # what actbert.tasks.qa.qa_scores reads of a question
    qid: str
    clip_name: str
    options: tuple[str, ...]


class _OneStore(dict):
    """A one-video stand-in for a FeatureStore (`vid in store`, `store[vid]`)."""

    def __init__(self, feats):
        super().__init__({feats.video_id: feats})
        self.root = f"<video {feats.video_id}>"


def pipeline_for_index(index, model: str | None = None, tokenizer: str | None = None, device: str | None = None,
                       segmenter: str | None = None):
    """The `Pipeline` for a `ClipIndex`: `model`, else the checkpoint folder the index records (search and serve)."""
    import torch

    model = model or index.info.get("model_source")
    if not model or str(model).startswith("<"):
        raise ValueError(f"index {index.path} does not record its model's folder: pass --model")
    tok = None
    if tokenizer:
        from actbert.data.tokenizer import WordPieceTokenizer

        tok = WordPieceTokenizer.from_pretrained(tokenizer)
    if segmenter and not Path(segmenter).is_dir():  # found now, not at the first video page
        raise FileNotFoundError(f"segmenter folder {segmenter} does not exist (from `actbert finetune segmentation`)")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return Pipeline(model, tokenizer=tok, device=device, segmenter=segmenter)
