"""CrossTask: task files, video lists, per-video step annotations and the seeded evaluation split.

Release layout: `tasks_primary.txt` / `tasks_related.txt` (blocks of 5 lines + a blank line: task id,
title, wikiHow url, number of steps, comma-separated ordered steps), `videos.csv` and `videos_val.csv`
(`task_id,youtube_id,url`, no header), `annotations/<task>_<video>.csv` (`step,start,end`, step 1-based).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from actbert.data.formats.errors import FormatError, clip_repr, csv_records, to_float, to_int, utf8_lines


@dataclass(frozen=True)
class CrossTaskTask:
    task_id: str
    title: str
    url: str
    steps: tuple[str, ...]  # in the task's order; step k (1-based) of an annotation is steps[k - 1]
    primary: bool


@dataclass(frozen=True)
class CrossTaskVideo:
    task_id: str
    video_id: str
    url: str


@dataclass(frozen=True)
class CrossTaskStep:
    step: int  # 1-based index into the task's steps
    start: float
    end: float


@dataclass
class CrossTaskRelease:
    tasks: dict[str, CrossTaskTask] = field(default_factory=dict)
    videos: list[CrossTaskVideo] = field(default_factory=list)
    videos_val: list[CrossTaskVideo] = field(default_factory=list)
    annotations: dict[tuple[str, str], list[CrossTaskStep]] = field(default_factory=dict)  # (task, video) ->

    @property
    def primary_tasks(self) -> list[str]:
        return [t for t, task in self.tasks.items() if task.primary]


@dataclass
class CrossTaskSplit:
    train: dict[str, list[str]]  # task id -> video ids
    test: dict[str, list[str]]
    seed: int
    n_train: int


def read_crosstask_tasks(path: str | Path, primary: bool = True) -> dict[str, CrossTaskTask]:
    """Tasks of one task file (file order); the declared step count must match the step list."""
    path = Path(path)
    lines = [x.rstrip("\n\r") for _, x in utf8_lines(path)]
    tasks: dict[str, CrossTaskTask] = {}
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        block = lines[i:i + 5]
        if len(block) < 5 or any(not x.strip() for x in block):
            raise FormatError(path, i + 1, "a task is 5 non-empty lines: id, title, url, number of steps, steps")
        tid, title, url, n, steps_text = (x.strip() for x in block)
        n_steps = to_int(n, path, i + 4, "number of steps")
        steps = tuple(s.strip() for s in steps_text.split(","))
        if len(steps) != n_steps or any(not s for s in steps):
            raise FormatError(path, i + 5, f"task {tid}: {n_steps} steps declared, step list has {len(steps)}: {steps_text!r}")
        if tid in tasks:
            raise FormatError(path, i + 1, f"duplicate task id {tid}")
        tasks[tid] = CrossTaskTask(tid, title, url, steps, primary)
        i += 5
    return tasks


def read_crosstask_videos(path: str | Path) -> list[CrossTaskVideo]:
    """`task_id,youtube_id,url` rows (no header) in file order."""
    path = Path(path)
    out = []
    for lineno, row in csv_records(path):
        if not row or all(not x.strip() for x in row):
            continue
        if len(row) != 3 or not row[0].strip() or not row[1].strip():
            raise FormatError(path, lineno, f"expected task_id,youtube_id,url, got {clip_repr(row)}")
        out.append(CrossTaskVideo(row[0].strip(), row[1].strip(), row[2].strip()))
    return out


def read_crosstask_annotation(path: str | Path, n_steps: int | None = None) -> list[CrossTaskStep]:
    """Steps of one `<task>_<video>.csv` (`step,start,end`); steps must lie in 1..n_steps when given."""
    path = Path(path)
    out = []
    for lineno, row in csv_records(path):
        if not row or all(not x.strip() for x in row):
            continue
        if len(row) != 3:
            raise FormatError(path, lineno, f"expected step,start,end, got {clip_repr(row)}")
        step = to_int(row[0], path, lineno, "step")
        start, end = to_float(row[1], path, lineno, "start"), to_float(row[2], path, lineno, "end")
        if step < 1 or n_steps is not None and step > n_steps:
            raise FormatError(path, lineno, f"step {step} outside 1..{n_steps if n_steps else '?'}")
        if end < start:
            raise FormatError(path, lineno, f"end {end} is before start {start}")
        out.append(CrossTaskStep(step, start, end))
    return out


def read_crosstask(folder: str | Path) -> CrossTaskRelease:
    """The whole release: both task files, both video lists (each optional) and every annotation csv."""
    folder = Path(folder)
    rel = CrossTaskRelease()
    found = False
    for name, primary in (("tasks_primary.txt", True), ("tasks_related.txt", False)):
        if (folder / name).is_file():
            found = True
            for tid, task in read_crosstask_tasks(folder / name, primary).items():
                if tid in rel.tasks:
                    raise FormatError(folder / name, None, f"task {tid} is also in another task file")
                rel.tasks[tid] = task
    if not found:
        raise FormatError(folder, None, "no tasks_primary.txt / tasks_related.txt: not a CrossTask release folder")
    if (folder / "videos.csv").is_file():
        rel.videos = read_crosstask_videos(folder / "videos.csv")
    if (folder / "videos_val.csv").is_file():
        rel.videos_val = read_crosstask_videos(folder / "videos_val.csv")
    for vlist, name in ((rel.videos, "videos.csv"), (rel.videos_val, "videos_val.csv")):
        unknown = sorted({v.task_id for v in vlist} - rel.tasks.keys())
        if unknown:
            raise FormatError(folder / name, None, f"videos of unknown task id(s) {unknown[:5]}")
    ann_dir = folder / "annotations"
    if ann_dir.is_dir():
        for p in sorted(ann_dir.glob("*.csv")):
            # task ids are numeric and YouTube ids may contain "_", so split at the first "_" only
            tid, sep, vid = p.stem.partition("_")
            if not sep or tid not in rel.tasks:
                raise FormatError(p, None, "annotation file name must be <task id>_<video id>.csv with a known task")
            rel.annotations[(tid, vid)] = read_crosstask_annotation(p, len(rel.tasks[tid].steps))
    return rel


def crosstask_split(release: CrossTaskRelease, n_train: int = 30, seed: int = 0) -> CrossTaskSplit:
    """The CrossTask evaluation split (protocols.md), after the reference `random_split`.

    Videos of `videos_val.csv` are dropped. For each primary task, only videos with an annotation csv
    count (when annotations were read); `n_train` of them are drawn without replacement by
    `np.random.RandomState(seed)` (tasks in file order) and the rest are test. A primary task with
    `n_train` videos or fewer, and every related task, keeps all its videos for training.
    """
    val = {(v.task_id, v.video_id) for v in release.videos_val}
    by_task: dict[str, list[str]] = {}
    for v in release.videos:
        if (v.task_id, v.video_id) not in val:
            by_task.setdefault(v.task_id, []).append(v.video_id)
    rng = np.random.RandomState(seed)
    train: dict[str, list[str]] = {}
    test: dict[str, list[str]] = {}
    for tid in release.tasks:
        vids = by_task.get(tid, [])
        if release.tasks[tid].primary and release.annotations:
            vids = [v for v in vids if (tid, v) in release.annotations]
        if release.tasks[tid].primary and len(vids) > n_train:
            chosen = set(rng.choice(len(vids), n_train, replace=False).tolist())
            train[tid] = [v for i, v in enumerate(vids) if i in chosen]
            test[tid] = [v for i, v in enumerate(vids) if i not in chosen]
        elif vids:
            train[tid] = vids
    return CrossTaskSplit(train, test, seed, n_train)


def summarize_crosstask(folder: str | Path) -> dict:
    rel = read_crosstask(folder)
    primary = rel.primary_tasks
    return {"tasks": len(rel.tasks), "primary_tasks": len(primary), "related_tasks": len(rel.tasks) - len(primary),
            "steps": sum(len(rel.tasks[t].steps) for t in primary), "videos": len(rel.videos),
            "videos_val": len(rel.videos_val), "annotated_videos": len(rel.annotations),
            "clips": sum(len(a) for a in rel.annotations.values()),
            "seconds_annotated": round(sum(s.end - s.start for a in rel.annotations.values() for s in a), 3)}
