"""HowTo100M: narration caption json and the `HowTo100M_v1.csv` video list.

`raw_caption.json` (and the stop-word-free `caption.json`) map each video to parallel lists
`{"start": [s...], "end": [s...], "text": ["..."]}` of YouTube ASR lines. At HowTo100M scale some
lines have no text (null, NaN written by pandas, empty strings): those are skipped and counted in a
`ReadReport` instead of failing a long job; structural damage (unequal list lengths, non-numeric
times) is a FormatError naming the file and the line of the video's key.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from actbert.data.formats.errors import FormatError, ReadReport, json_error, load_json, read_csv_rows, to_float, to_int


@dataclass(frozen=True)
class Caption:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class HowTo100MVideo:
    video_id: str
    category_1: str
    category_2: str
    rank: int
    task_id: str


def read_captions(path: str | Path, report: ReadReport | None = None) -> dict[str, list[Caption]]:
    """Captions per video, in file order. Lines with missing / NaN / empty text are skipped and counted
    in `report` (reasons `missing_text`, `empty_text`); a line whose end precedes its start is skipped
    as `negative_duration`, since no caption window can hold it. Non-string texts that are numbers (ASR "2020") are kept as their string and counted `non_string_text`.
    """
    path = Path(path)
    report = report if report is not None else ReadReport()
    data = load_json(path)
    if not isinstance(data, dict):
        raise FormatError(path, 1, 'expected {video_id: {"start": [...], "end": [...], "text": [...]}}')
    out: dict[str, list[Caption]] = {}
    for vid, rec in data.items():
        if not isinstance(rec, dict) or not all(isinstance(rec.get(k), list) for k in ("start", "end", "text")):
            raise json_error(path, vid, f"video {vid!r} needs lists 'start', 'end' and 'text'")
        starts, ends, texts = rec["start"], rec["end"], rec["text"]
        if not len(starts) == len(ends) == len(texts):
            raise json_error(path, vid, f"video {vid!r}: start/end/text lengths differ "
                                        f"({len(starts)}/{len(ends)}/{len(texts)})")
        caps = []
        for i, (s, e, t) in enumerate(zip(starts, ends, texts)):
            try:
                s = to_float(s, path, None, f"video {vid!r} start[{i}]")
                e = to_float(e, path, None, f"video {vid!r} end[{i}]")
            except FormatError as err:
                raise json_error(path, vid, err.message) from None
            if t is None or isinstance(t, float) and math.isnan(t):
                report.add("missing_text", _where(path, vid, i))
                continue
            if not isinstance(t, str):
                if isinstance(t, (int, float)) and not isinstance(t, bool):
                    report.add("non_string_text", _where(path, vid, i))
                    t = str(t)
                else:
                    raise json_error(path, vid, f"video {vid!r} text[{i}] must be a string, got {t!r}")
            if not t.strip():
                report.add("empty_text", _where(path, vid, i))
                continue
            if e < s:
                report.add("negative_duration", _where(path, vid, i))
                continue
            caps.append(Caption(s, e, t))
        out[vid] = caps
    return out


def _where(path: Path, vid: str, i: int) -> str:
    # built only for skipped lines: formatting a location for each of 136 M captions would cost minutes
    return f"{path}: video {vid!r} caption {i}"


def read_howto100m_csv(path: str | Path) -> list[HowTo100MVideo]:
    """`HowTo100M_v1.csv` (`video_id,category_1,category_2,rank,task_id`) in file order."""
    out = []
    for line, r in read_csv_rows(path, ["video_id", "category_1", "category_2", "rank", "task_id"]):
        if not r["video_id"].strip():
            raise FormatError(path, line, "empty video_id")
        out.append(HowTo100MVideo(r["video_id"].strip(), r["category_1"].strip(), r["category_2"].strip(),
                                  to_int(r["rank"], path, line, "rank"), r["task_id"].strip()))
    return out


def summarize_captions(path: str | Path) -> dict:
    report = ReadReport()
    caps = read_captions(path, report)
    return {"videos": len(caps), "captions": sum(len(c) for c in caps.values()),
            "seconds_annotated": round(sum(c.end - c.start for cs in caps.values() for c in cs), 3),
            "skipped": dict(report.counts), "skipped_examples": report.examples}


def summarize_howto100m_csv(path: str | Path) -> dict:
    rows = read_howto100m_csv(path)
    return {"videos": len(rows), "tasks": len({r.task_id for r in rows}),
            "categories_1": len({r.category_1 for r in rows}), "categories_2": len({r.category_2 for r in rows})}
