"""MSR-VTT: the 1k-A retrieval csv, training-id lists, `MSRVTT_data.json` and the multiple-choice jsonl."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from actbert.data.formats.errors import (FormatError, clip_repr, json_error, load_json, load_json_line, read_csv_rows,
                                        to_int, utf8_lines)


@dataclass(frozen=True)
class MsrvttPair:
    """Row i of the 1k-A csv: query i (`sentence`) whose true video is `video_id`."""

    key: str
    vid_key: str
    video_id: str
    sentence: str


@dataclass(frozen=True)
class MsrvttVideo:
    video_id: str
    category: int
    split: str
    url: str = ""
    start_time: float | None = None
    end_time: float | None = None


@dataclass(frozen=True)
class MsrvttSentence:
    sen_id: int
    video_id: str
    caption: str


@dataclass
class MsrvttData:
    """`MSRVTT_data.json`: videos by id (file order) and all sentences (file order)."""

    videos: dict[str, MsrvttVideo] = field(default_factory=dict)
    sentences: list[MsrvttSentence] = field(default_factory=list)

    def captions_by_video(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {v: [] for v in self.videos}
        for s in self.sentences:
            out[s.video_id].append(s.caption)
        return out


@dataclass(frozen=True)
class McQuestion:
    """A multiple-choice question: score `clip_name` against `options`; `answer` is the 0-based true index."""

    qid: str
    clip_name: str
    answer: int
    options: tuple[str, ...]
    title: str = ""


def read_msrvtt_csv(path: str | Path) -> list[MsrvttPair]:
    """The 1k-A test csv (`key,vid_key,video_id,sentence`) in file order."""
    rows = []
    for line, r in read_csv_rows(path, ["key", "vid_key", "video_id", "sentence"]):
        if not r["video_id"].strip():
            raise FormatError(path, line, "empty video_id")
        rows.append(MsrvttPair(r["key"].strip(), r["vid_key"].strip(), r["video_id"].strip(), r["sentence"]))
    return rows


def read_msrvtt_ids(path: str | Path) -> list[str]:
    """A list of video ids: one per line, optionally under a `video_id` header (the 9k file has one).

    A multi-column csv is accepted when its header has a `video_id` column. Duplicates are errors:
    a training list with repeats would silently over-weight those videos.
    """
    path = Path(path)
    lines = [text.rstrip("\r\n") for _, text in utf8_lines(path)]
    if not lines:
        raise FormatError(path, 1, "empty id list")
    header = [h.strip().lstrip("\ufeff") for h in lines[0].split(",")]
    col, first = None, 0
    if "video_id" in header:
        col, first = header.index("video_id"), 1
    elif len(header) > 1:
        raise FormatError(path, 1, f"a multi-column id list needs a 'video_id' header column, got {header}")
    ids: list[str] = []
    seen: dict[str, int] = {}
    for i in range(first, len(lines)):
        text = lines[i].strip()
        if not text:
            continue
        fields = [x.strip() for x in text.split(",")]
        if col is None and len(fields) != 1 or col is not None and len(fields) != len(header):
            raise FormatError(path, i + 1, f"expected {len(header)} field(s), got {len(fields)}: {text!r}")
        vid = fields[col or 0]
        if not vid or " " in vid:
            raise FormatError(path, i + 1, f"invalid video id {vid!r}")
        if vid in seen:
            raise FormatError(path, i + 1, f"duplicate video id {vid!r} (first on line {seen[vid]})")
        seen[vid] = i + 1
        ids.append(vid)
    return ids


def read_msrvtt_json(path: str | Path) -> MsrvttData:
    """`MSRVTT_data.json`: `{"videos": [{"video_id", "category", "split", ...}], "sentences": [...]}`."""
    path = Path(path)
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("videos"), list) or not isinstance(data.get("sentences"), list):
        raise FormatError(path, 1, 'expected {"videos": [...], "sentences": [...]}')
    out = MsrvttData()
    for i, v in enumerate(data["videos"]):
        if not isinstance(v, dict) or not isinstance(v.get("video_id"), str) or "split" not in v:
            raise FormatError(path, _nth_line(path, '"video_id"', i), f"videos[{i}] needs 'video_id' and 'split'")
        vid = v["video_id"]
        if vid in out.videos:
            raise json_error(path, vid, f"videos[{i}]: duplicate video_id {vid!r}")
        try:
            cat = to_int(v.get("category", -1), path, None, f"videos[{i}].category")
        except FormatError as e:
            raise json_error(path, vid, e.message) from None
        out.videos[vid] = MsrvttVideo(vid, cat, str(v["split"]), str(v.get("url", "")),
                                      v.get("start time", v.get("start_time")), v.get("end time", v.get("end_time")))
    for i, s in enumerate(data["sentences"]):
        if not isinstance(s, dict) or not isinstance(s.get("caption"), str) or s.get("video_id") not in out.videos:
            raise FormatError(path, _nth_line(path, '"sen_id"', i),
                              f"sentences[{i}] needs a string 'caption' and a 'video_id' listed in videos: {s!r}")
        try:
            sen_id = to_int(s.get("sen_id", i), path, None, f"sentences[{i}].sen_id")
        except FormatError as e:  # the line is looked up only on this error path (it re-scans the file)
            raise FormatError(path, _nth_line(path, '"sen_id"', i), e.message) from None
        out.sentences.append(MsrvttSentence(sen_id, s["video_id"], s["caption"]))
    return out


def _nth_line(path: Path, needle: str, n: int) -> int | None:
    """Line of the n-th (0-based) occurrence of `needle`: locates the n-th record of a json list."""
    seen = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, text in enumerate(f, start=1):
            count = text.count(needle)
            if seen + count > n:
                return lineno
            seen += count
    return None


def read_msrvtt_mc(path: str | Path) -> list[McQuestion]:
    """Multiple-choice jsonl: one `{"qid", "clip_name", "answer": "0", "options": [...]}` per line."""
    path = Path(path)
    out = []
    seen: dict[str, int] = {}
    for lineno, text in utf8_lines(path):
        if not text.strip():
            continue
        q = load_json_line(path, lineno, text)
        if not isinstance(q, dict) or not {"qid", "clip_name", "answer", "options"} <= q.keys():
            raise FormatError(path, lineno, "a question needs 'qid', 'clip_name', 'answer' and 'options'")
        qid, clip = q["qid"], q["clip_name"]
        if isinstance(qid, bool) or not isinstance(qid, (str, int)) or str(qid).strip() == "":
            raise FormatError(path, lineno, f"'qid' must be a non-empty string or integer, got {clip_repr(qid)}")
        if not isinstance(clip, str) or not clip.strip():  # null / "" would score against no video at all
            raise FormatError(path, lineno, f"'clip_name' must be a non-empty string, got {clip_repr(clip)}")
        if str(qid) in seen:  # a repeat would be scored twice and skew the accuracy
            raise FormatError(path, lineno, f"duplicate qid {qid!r} (first on line {seen[str(qid)]})")
        seen[str(qid)] = lineno
        opts = q["options"]
        if not isinstance(opts, list) or len(opts) < 2 or not all(isinstance(o, str) for o in opts):
            raise FormatError(path, lineno, "'options' must be a list of at least 2 strings")
        answer = to_int(q["answer"], path, lineno, "answer")
        if not 0 <= answer < len(opts):
            raise FormatError(path, lineno, f"answer {answer} is not an index of the {len(opts)} options")
        out.append(McQuestion(str(qid), clip, answer, tuple(opts), str(q.get("title", ""))))
    return out


def summarize_msrvtt_csv(path: str | Path) -> dict:
    rows = read_msrvtt_csv(path)
    return {"captions": len(rows), "videos": len({r.video_id for r in rows})}


def summarize_msrvtt_ids(path: str | Path) -> dict:
    return {"videos": len(read_msrvtt_ids(path))}


def summarize_msrvtt_json(path: str | Path) -> dict:
    data = read_msrvtt_json(path)
    splits: dict[str, int] = {}
    for v in data.videos.values():
        splits[v.split] = splits.get(v.split, 0) + 1
    return {"videos": len(data.videos), "captions": len(data.sentences), "splits": splits}


def summarize_msrvtt_mc(path: str | Path) -> dict:
    qs = read_msrvtt_mc(path)
    return {"questions": len(qs), "videos": len({q.clip_name for q in qs}),
            "options": sorted({len(q.options) for q in qs})}
