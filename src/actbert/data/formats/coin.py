"""COIN: `COIN.json` annotations, the taxonomy csvs and the per-second labels of action segmentation.

Taxonomy (converted from the release's taxonomy.xlsx): `taxonomy_domain_target_mapping.csv`
(`Domains,Targets`: 12 domains over 180 task labels) and `taxonomy_target_action_mapping.csv`
(`Target Id,Target Label,Action Id,Action Label`: tasks 0-179, steps 1-778). Json:
`{"database": {vid: {"duration", "class", "recipe_type" (= Target Id), "subset", "annotation":
[{"id": "<Action Id>", "segment": [s, e], "label"}], "video_url"}}}`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from actbert.data.formats.errors import FormatError, json_error, load_json, read_csv_rows, to_float, to_int

DOMAIN_CSV = "taxonomy_domain_target_mapping.csv"
ACTION_CSV = "taxonomy_target_action_mapping.csv"


@dataclass(frozen=True)
class CoinStep:
    step_id: int  # Action Id, 1..778; 0 is reserved for background in per-second labels
    label: str
    target_id: int


@dataclass
class CoinTaxonomy:
    """domain -> task labels, task id -> label, step id -> CoinStep (ids as in the release)."""

    domains: dict[str, list[str]] = field(default_factory=dict)
    targets: dict[int, str] = field(default_factory=dict)
    steps: dict[int, CoinStep] = field(default_factory=dict)

    def domain_of(self, target_id: int) -> str | None:
        label = self.targets.get(target_id)
        return next((d for d, ts in self.domains.items() if label in ts), None)

    def steps_of(self, target_id: int) -> list[CoinStep]:
        return [s for s in self.steps.values() if s.target_id == target_id]


@dataclass(frozen=True)
class CoinSegment:
    step_id: int
    start: float
    end: float
    label: str


@dataclass
class CoinVideo:
    video_id: str
    duration: float
    target_id: int  # "recipe_type" of the json
    task_label: str  # "class" of the json
    subset: str
    url: str
    segments: list[CoinSegment] = field(default_factory=list)


def read_coin_taxonomy(folder: str | Path) -> CoinTaxonomy:
    """Read both taxonomy csvs of `folder`; every task of the domain file must have steps and vice versa."""
    folder = Path(folder)
    tax = CoinTaxonomy()
    action_csv = folder / ACTION_CSV
    for line, r in read_csv_rows(action_csv, ["Target Id", "Target Label", "Action Id", "Action Label"]):
        tid = to_int(r["Target Id"], action_csv, line, "Target Id")
        sid = to_int(r["Action Id"], action_csv, line, "Action Id")
        tlabel = r["Target Label"].strip()
        if sid < 1:
            raise FormatError(action_csv, line, f"Action Id must be >= 1 (0 is background), got {sid}")
        if sid in tax.steps:
            raise FormatError(action_csv, line, f"duplicate Action Id {sid}")
        if tax.targets.setdefault(tid, tlabel) != tlabel:
            raise FormatError(action_csv, line, f"Target Id {tid} is {tax.targets[tid]!r} earlier, {tlabel!r} here")
        tax.steps[sid] = CoinStep(sid, r["Action Label"].strip(), tid)
    domain_csv = folder / DOMAIN_CSV
    known = set(tax.targets.values())
    for line, r in read_csv_rows(domain_csv, ["Domains", "Targets"]):
        target = r["Targets"].strip()
        if target not in known:
            raise FormatError(domain_csv, line, f"task {target!r} has no steps in {ACTION_CSV}")
        tax.domains.setdefault(r["Domains"].strip(), []).append(target)
    listed = {t for ts in tax.domains.values() for t in ts}
    if known - listed:
        raise FormatError(domain_csv, None, f"tasks with no domain: {sorted(known - listed)[:5]}")
    return tax


def read_coin(path: str | Path, taxonomy: CoinTaxonomy | None = None) -> dict[str, CoinVideo]:
    """Videos of COIN.json in file order; step and task ids are checked against `taxonomy` when given."""
    path = Path(path)
    data = load_json(path)
    db = data.get("database") if isinstance(data, dict) else None
    if not isinstance(db, dict):
        raise FormatError(path, 1, 'expected {"database": {video_id: {...}}}')
    videos: dict[str, CoinVideo] = {}
    for vid, rec in db.items():
        where = f"database[{vid!r}]"
        if not isinstance(rec, dict) or not {"duration", "recipe_type", "subset", "annotation"} <= rec.keys():
            raise json_error(path, vid, f"{where} needs 'duration', 'recipe_type', 'subset' and 'annotation'")
        try:
            duration = to_float(rec["duration"], path, None, f"{where}.duration")
            tid = to_int(rec["recipe_type"], path, None, f"{where}.recipe_type")
            if taxonomy is not None and tid not in taxonomy.targets:
                raise FormatError(path, None, f"{where}.recipe_type {tid} is not a task of the taxonomy")
            video = CoinVideo(vid, duration, tid, str(rec.get("class", "")), str(rec["subset"]), str(rec.get("video_url", "")))
            if not isinstance(rec["annotation"], list):
                raise FormatError(path, None, f"{where}.annotation must be a list")
            for j, ann in enumerate(rec["annotation"]):
                aw = f"{where}.annotation[{j}]"
                if not isinstance(ann, dict) or "id" not in ann or "segment" not in ann:
                    raise FormatError(path, None, f"{aw} needs 'id' and 'segment'")
                sid = to_int(ann["id"], path, None, f"{aw}.id")
                if taxonomy is not None and sid not in taxonomy.steps:
                    raise FormatError(path, None, f"{aw}.id {sid} is not a step of the taxonomy")
                seg = ann["segment"]
                if not isinstance(seg, list) or len(seg) != 2:
                    raise FormatError(path, None, f"{aw}.segment must be [start, end], got {seg!r}")
                start, end = (to_float(x, path, None, f"{aw}.segment") for x in seg)
                if end < start or start < 0:
                    raise FormatError(path, None, f"{aw}.segment is not a valid interval: {seg!r}")
                video.segments.append(CoinSegment(sid, start, end, str(ann.get("label", ""))))
        except FormatError as e:
            if e.line is not None:
                raise
            raise json_error(path, vid, e.message) from None
        videos[vid] = video
    return videos


def coin_second_labels(video: CoinVideo, duration: float | None = None) -> np.ndarray:
    """One label per second (protocols.md): 0 = background, else the step id over `[floor(start), ceil(end))`.

    The video has `ceil(duration)` seconds (`duration` defaults to the json's); segments are clipped to
    it. Overlapping segments are rare in COIN; the later segment in annotation order wins, which is
    deterministic and matches painting the annotations in order.
    """
    duration = video.duration if duration is None else float(duration)
    n = max(int(math.ceil(duration)), 0)
    labels = np.zeros(n, dtype=np.int64)
    for seg in video.segments:
        lo = max(int(math.floor(seg.start)), 0)
        hi = min(int(math.ceil(seg.end)), n)
        if hi > lo:
            labels[lo:hi] = seg.step_id
    return labels


def summarize_coin(path: str | Path) -> dict:
    """Counts of COIN.json; ids are also checked against the taxonomy when its csvs lie beside the json."""
    path = Path(path)
    tax = read_coin_taxonomy(path.parent) if (path.parent / ACTION_CSV).is_file() else None
    videos = read_coin(path, tax)
    subsets: dict[str, int] = {}
    for v in videos.values():
        subsets[v.subset] = subsets.get(v.subset, 0) + 1
    secs = [coin_second_labels(v) for v in videos.values()]
    return {"videos": len(videos), "subsets": subsets, "tasks": len({v.target_id for v in videos.values()}),
            "steps": len({s.step_id for v in videos.values() for s in v.segments}),
            "clips": sum(len(v.segments) for v in videos.values()),
            "seconds": int(sum(len(s) for s in secs)),
            "seconds_annotated": int(sum(int((s > 0).sum()) for s in secs)),
            "taxonomy_checked": tax is not None}


def summarize_coin_taxonomy(folder: str | Path) -> dict:
    tax = read_coin_taxonomy(folder)
    return {"domains": len(tax.domains), "tasks": len(tax.targets), "steps": len(tax.steps),
            "task_ids": [min(tax.targets), max(tax.targets)], "step_ids": [min(tax.steps), max(tax.steps)]}
