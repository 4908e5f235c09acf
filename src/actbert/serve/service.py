"""The model side of `actbert serve`: one `Pipeline` loaded once, bounded model work, and progress per request.

Model work (search, localize, segment) runs at most `max_concurrent` at a time; at most `max_queue` more
wait, and a request beyond that is refused at once (`Busy`, HTTP 503) instead of piling up threads and
memory. `k` and `rerank` are capped, so one query's memory is bounded too. Each request may carry a
client-made id, and `progress(id)` says whether it waits (and behind how many) or runs.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import quote, urlencode

from actbert.api.index import ClipIndex
from actbert.api.pipeline import pipeline_for_index
from actbert.data.store_format import StoreError
from actbert.serve.media import LRU, MediaNotFound, TranscriptFinder, VideoCatalog, thumbnail_jpeg

__all__ = ["Busy", "IndexProblem", "ServeOptions", "SearchService", "ModelGate"]
log = logging.getLogger(__name__)


class Busy(RuntimeError):
    """Too many requests already wait for the model."""


class IndexProblem(RuntimeError):
    """The index (or its feature store) cannot be read any more: moved, deleted or damaged since the start."""


@dataclass(frozen=True)
class ServeOptions:
    top_k: int = 10             # hits when the request gives no k
    rerank: int = 50            # same default as `actbert search`
    backend: str = "exact"      # or "faiss"
    max_concurrent: int = 1     # model calls at once (CPU: one already uses every core torch is given)
    max_queue: int = 16         # requests allowed to wait for the model
    max_k: int = 1000           # cap of k and rerank: bounds one query's memory
    max_query_chars: int = 100_000
    max_steps: int = 32         # steps one localize request may give


class ModelGate:
    """A semaphore with a visible queue: who waits, who runs, since when."""

    def __init__(self, max_concurrent: int, max_queue: int):
        if max_concurrent < 1 or max_queue < 0:
            raise ValueError(f"max_concurrent must be >= 1 and max_queue >= 0, got {max_concurrent}, {max_queue}")
        self._sem = threading.BoundedSemaphore(max_concurrent)
        self._lock = threading.Lock()
        self.max_queue = max_queue
        self._jobs: OrderedDict[str, dict] = OrderedDict()  # live jobs in arrival order
        self._done: OrderedDict[str, dict] = OrderedDict()  # the last finished ones, for a late progress poll
        self._anon = 0

    @contextmanager
    def slot(self, request_id: str | None, what: str) -> Iterator[None]:
        with self._lock:
            if sum(j["state"] == "queued" for j in self._jobs.values()) >= self.max_queue:
                raise Busy(f"{self.max_queue} requests already wait for the model; try again in a moment")
            if not request_id or request_id in self._jobs:
                self._anon += 1
                request_id = f"_anon{self._anon}"
            job = {"state": "queued", "what": what, "since": time.monotonic()}
            self._jobs[request_id] = job
        try:
            with self._sem:
                job.update(state="running", started=time.monotonic())
                yield
        finally:
            with self._lock:
                self._jobs.pop(request_id, None)
                job.update(state="done", finished=time.monotonic())
                self._done[request_id] = job
                while len(self._done) > 256:
                    self._done.popitem(last=False)

    def progress(self, request_id: str) -> dict:
        with self._lock:
            job = self._jobs.get(request_id) or self._done.get(request_id)
            if job is None:
                return {"state": "unknown"}
            now = time.monotonic()
            out = {"state": job["state"], "what": job["what"], "elapsed_s": round(now - job["since"], 3)}
            if job["state"] == "queued":
                ids = list(self._jobs)
                out["ahead"] = ids.index(request_id)  # running and queued jobs that arrived earlier
            return out

    def load(self) -> dict:
        with self._lock:
            states = [j["state"] for j in self._jobs.values()]
            return {"running": states.count("running"), "queued": states.count("queued"), "max_queue": self.max_queue}


def media_urls(vid: str, start: float | None = None, query: str | None = None) -> dict:
    """Where the page (or curl) gets a video's file, thumbnail and page; ids are percent-encoded whole."""
    v = quote(vid, safe="")
    t = 0.0 if start is None else float(start)
    page = {"id": vid, "t": f"{t:g}"} | ({"q": query} if query else {})
    return {"video_url": f"/media/video/{v}", "thumbnail_url": f"/media/thumb/{v}?t={t:g}",
            "page_url": "/video?" + urlencode(page)}


class SearchService:
    """Everything the web app asks of the model and the index (see the module docstring)."""

    def __init__(self, index: str | Path, pipeline=None, transcripts: str | Path | None = None,
                 options: ServeOptions | None = None, **pipeline_kwargs: Any):
        self.options = options or ServeOptions()
        idx = ClipIndex(index)
        self.pipe = pipeline if pipeline is not None else pipeline_for_index(idx, **pipeline_kwargs)
        self.index = self.pipe.open_index(idx.path)  # refuses an index of another model (IndexMismatchError)
        self.catalog = VideoCatalog(self.index)
        self.transcripts = TranscriptFinder(self.catalog, Path(transcripts) if transcripts else None)
        self.gate = ModelGate(self.options.max_concurrent, self.options.max_queue)
        self.thumbs = LRU(512)
        self._thumb_gate = threading.BoundedSemaphore(2)  # decoding is CPU work too

    # -- facts ------------------------------------------------------------------------------------------------
    def info(self) -> dict:
        i = self.index.info
        return {"index": str(self.index.path), "clips": self.index.n_clips, "videos": len(self.index.videos),
                "clip_seconds": i.get("clip_seconds"), "stride": i.get("stride"),
                "model": str(self.pipe.model_dir) if self.pipe.model_dir else i.get("model_source"),
                "defaults": {"k": self.options.top_k, "rerank": self.options.rerank, "backend": self.options.backend},
                "limits": {"max_k": self.options.max_k, "max_query_chars": self.options.max_query_chars,
                           "max_steps": self.options.max_steps},
                "timeline": {"segment": self.pipe.segmenter is not None, "localize": True},
                "load": self.gate.load()}

    # -- search -----------------------------------------------------------------------------------------------
    def search(self, query: str, k: int | None = None, rerank: int | None = None,
               request_id: str | None = None) -> dict:
        o = self.options
        k = o.top_k if k is None else int(k)
        rerank = o.rerank if rerank is None else int(rerank)
        if not isinstance(query, str) or not query.strip():
            raise ValueError("empty query: give some words to search for")
        if len(query) > o.max_query_chars:
            raise ValueError(f"query of {len(query)} characters; at most {o.max_query_chars} are accepted "
                             f"(the model reads its first {self.pipe.model.config.max_text_len} tokens anyway)")
        if not 1 <= k <= o.max_k or not 0 <= rerank <= o.max_k:
            raise ValueError(f"k must be 1..{o.max_k} and rerank 0..{o.max_k}, got k={k}, rerank={rerank}")
        began = time.perf_counter()
        with self.gate.slot(request_id, "search"), self._index_errors():
            hits = self.pipe.search(query, top_k=k, rerank=rerank, index=self.index, backend=o.backend)
        took = time.perf_counter() - began
        return {"query": query, "k": k, "rerank": rerank, "took_ms": round(1000 * took, 1),
                "hits": [self._hit(r, h, query) for r, h in enumerate(hits, 1)]}

    def _hit(self, rank: int, hit, query: str) -> dict:
        d = {"rank": rank, **asdict(hit)}
        d["path"] = None if d.get("path") is None else str(d["path"])
        e = self.catalog.entry(hit.video)
        d["name"] = e.name
        d["available"] = self._available(hit.video)
        d.update(media_urls(hit.video, hit.start, query))
        if not d["available"]:
            d["video_url"] = d["thumbnail_url"] = None
        return d

    def _available(self, vid: str) -> bool:
        try:
            self.catalog.file_for(vid)
            return True
        except MediaNotFound:
            return False

    @contextmanager
    def _index_errors(self, value_errors: bool = True) -> Iterator[None]:
        """Index / store files that went missing or bad while serving: a clear IndexProblem, not a 500.

        Inputs are checked before the model runs, so inside search a ValueError comes from the files (a
        truncated .npy); `value_errors=False` keeps the ValueErrors that judge the input (localize)."""
        try:
            yield
        except KeyError as exc:  # a video the index lists but its store does not hold
            raise MediaNotFound(str(exc.args[0]) if exc.args else "video not in the feature store") from exc
        except (OSError, StoreError, EOFError) as exc:
            raise IndexProblem(f"index {self.index.path} cannot be read ({exc}); rebuild it with `actbert index` "
                               "and restart `actbert serve`") from exc
        except ValueError as exc:
            if not value_errors:
                raise
            raise IndexProblem(f"index {self.index.path} is damaged ({exc}); rebuild it with `actbert index`") from exc

    # -- one video --------------------------------------------------------------------------------------------
    def video(self, vid: str) -> dict:
        e = self.catalog.entry(vid)  # MediaNotFound for an id the index does not list
        lines, source = self.transcripts.find(vid)
        out = {"video": vid, "name": e.name, "duration": e.duration, "available": self._available(vid),
               "transcript": lines, "transcript_source": source,
               "timeline": {"segment": self.pipe.segmenter is not None, "localize": True}}
        out.update(media_urls(vid))
        if not out["available"]:
            try:
                self.catalog.file_for(vid)
            except MediaNotFound as exc:
                out["problem"] = str(exc)
            out["video_url"] = out["thumbnail_url"] = None
        return out

    def segments(self, vid: str, request_id: str | None = None) -> dict:
        """Runs of the segmentation head's per-second step names (background left out)."""
        self.catalog.entry(vid)
        if self.pipe.segmenter is None:
            raise MediaNotFound("no segmentation head: start `actbert serve` with --segmenter DIR "
                                "(from `actbert finetune segmentation`) for a timeline of predicted steps")
        with self.gate.slot(request_id, "segment"), self._index_errors():
            labels = self.pipe.segment(vid)  # step names, "background" where no step happens
        runs, start = [], 0
        for t in range(1, len(labels) + 1):
            if t == len(labels) or labels[t] != labels[start]:
                if labels[start] != "background":
                    runs.append({"start": float(start), "end": float(t), "label": labels[start]})
                start = t
        return {"video": vid, "segments": runs}

    def localize(self, vid: str, steps: Sequence[str], request_id: str | None = None) -> dict:
        """The second of each step (in the given order), zero-shot, by `Pipeline.localize`."""
        self.catalog.entry(vid)
        if not isinstance(steps, (list, tuple)) or not steps:
            raise ValueError("steps must be a non-empty list of step descriptions")
        steps = [s.strip() if isinstance(s, str) else s for s in steps]
        if any(not isinstance(s, str) or not s for s in steps):
            raise ValueError("every step must be a non-empty string")
        if len(steps) > self.options.max_steps or any(len(s) > 1000 for s in steps):
            raise ValueError(f"at most {self.options.max_steps} steps of at most 1000 characters each")
        with self.gate.slot(request_id, "localize"), self._index_errors(value_errors=False):
            seconds = self.pipe.localize(vid, steps)
        return {"video": vid, "steps": [{"step": s, "second": int(t)} for s, t in zip(steps, seconds)]}

    # -- media ------------------------------------------------------------------------------------------------
    def thumbnail(self, vid: str, t: float) -> bytes:
        path = self.catalog.file_for(vid)
        e = self.catalog.entry(vid)
        t = max(0.0, min(float(t), e.duration or float(t)))
        key = (vid, round(t, 1))
        jpg = self.thumbs.get(key)
        if jpg is None:
            with self._thumb_gate:
                jpg = thumbnail_jpeg(path, t)
            self.thumbs.put(key, jpg)
        return jpg
