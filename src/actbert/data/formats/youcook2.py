"""YouCook2: the official annotations json and the HowTo100M / MIL-NCE retrieval csv.

Json: `{"database": {video_id: {"duration", "subset", "recipe_type", "annotations": [{"segment": [s, e],
"id", "sentence"}], "video_url"}}}` (segments in whole seconds). Csv: header `end,start,task,text,video_id`,
one clip per row; the retrieval score matrix is built in file order, so rows are returned in file order.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from actbert.data.formats.errors import FormatError, json_error, load_json, read_csv_rows, to_float, to_int

SUBSETS = ("training", "validation", "testing")


@dataclass(frozen=True)
class YouCook2Clip:
    """One annotated step: `[start, end]` seconds and its sentence; `index` is the json's `id`."""

    video_id: str
    index: int
    start: float
    end: float
    sentence: str


@dataclass
class YouCook2Video:
    video_id: str
    subset: str
    recipe_type: str
    duration: float
    url: str
    clips: list[YouCook2Clip] = field(default_factory=list)


@dataclass(frozen=True)
class RetrievalClip:
    """One row of the HowTo100M / MIL-NCE retrieval csv; row i is query i and video i."""

    video_id: str
    start: float
    end: float
    task: str
    text: str


def read_youcook2(path: str | Path, subset: str | None = None) -> dict[str, YouCook2Video]:
    """Videos of the annotations json (in file order), optionally only one `subset` ("training"...)."""
    path = Path(path)
    data = load_json(path)
    db = data.get("database") if isinstance(data, dict) else None
    if not isinstance(db, dict):
        raise FormatError(path, 1, 'expected {"database": {video_id: {...}}}')
    videos: dict[str, YouCook2Video] = {}
    for vid, rec in db.items():
        where = f"database[{vid!r}]"
        if not isinstance(rec, dict):
            raise json_error(path, vid, f"{where} must be an object")
        for key in ("duration", "subset", "recipe_type", "annotations"):
            if key not in rec:
                raise json_error(path, vid, f"{where} lacks {key!r}")
        if rec["subset"] not in SUBSETS:
            raise json_error(path, vid, f"{where}.subset must be one of {SUBSETS}, got {rec['subset']!r}")
        if subset is not None and rec["subset"] != subset:
            continue
        duration = _num(path, vid, rec["duration"], f"{where}.duration")
        video = YouCook2Video(vid, rec["subset"], str(rec["recipe_type"]), duration, str(rec.get("video_url", "")))
        if not isinstance(rec["annotations"], list):
            raise json_error(path, vid, f"{where}.annotations must be a list")
        for j, ann in enumerate(rec["annotations"]):
            aw = f"{where}.annotations[{j}]"
            if not isinstance(ann, dict) or "segment" not in ann or "sentence" not in ann:
                raise json_error(path, vid, f"{aw} must have 'segment' and 'sentence'")
            seg = ann["segment"]
            if not isinstance(seg, list) or len(seg) != 2:
                raise json_error(path, vid, f"{aw}.segment must be [start, end], got {seg!r}")
            start, end = (_num(path, vid, x, f"{aw}.segment") for x in seg)
            if end < start:
                raise json_error(path, vid, f"{aw}.segment ends before it starts: {seg!r}")
            if not isinstance(ann["sentence"], str):
                raise json_error(path, vid, f"{aw}.sentence must be a string")
            try:
                index = to_int(ann.get("id", j), path, None, f"{aw}.id")
            except FormatError as e:
                raise json_error(path, vid, e.message) from None
            video.clips.append(YouCook2Clip(vid, index, start, end, ann["sentence"]))
        videos[vid] = video
    return videos


def _num(path: Path, vid: str, value, what: str) -> float:
    try:
        return to_float(value, path, None, what)
    except FormatError as e:
        raise json_error(path, vid, e.message) from None


def read_youcook2_csv(path: str | Path) -> list[RetrievalClip]:
    """Rows of the retrieval csv (`end,start,task,text,video_id`) in file order."""
    rows = []
    for line, r in read_csv_rows(path, ["end", "start", "task", "text", "video_id"]):
        start = to_float(r["start"], path, line, "start")
        end = to_float(r["end"], path, line, "end")
        if end < start:
            raise FormatError(path, line, f"end {end} is before start {start}")
        if not r["video_id"].strip():
            raise FormatError(path, line, "empty video_id")
        rows.append(RetrievalClip(r["video_id"].strip(), start, end, r["task"].strip(), r["text"]))
    return rows


def summarize_youcook2(path: str | Path) -> dict:
    videos = read_youcook2(path)
    out: dict = {"videos": len(videos), "clips": sum(len(v.clips) for v in videos.values()),
                 "recipe_types": len({v.recipe_type for v in videos.values()}),
                 "seconds_annotated": round(sum(c.end - c.start for v in videos.values() for c in v.clips), 3)}
    for subset in SUBSETS:
        vs = [v for v in videos.values() if v.subset == subset]
        if vs:
            out[subset] = {"videos": len(vs), "clips": sum(len(v.clips) for v in vs)}
    return out


def summarize_youcook2_csv(path: str | Path) -> dict:
    rows = read_youcook2_csv(path)
    # the README's "141 rows share a caption with another row": rows whose text occurs more than once
    shared = sum(n for n in Counter(r.text for r in rows).values() if n > 1)
    return {"clips": len(rows), "videos": len({r.video_id for r in rows}), "tasks": len({r.task for r in rows}),
            "captions": len(rows), "rows_sharing_caption": shared,
            "seconds_annotated": round(sum(r.end - r.start for r in rows), 3)}
