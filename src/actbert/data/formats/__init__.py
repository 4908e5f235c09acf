"""Readers of the benchmark and corpus formats, each returning typed records.

`FORMATS` maps the names used by `actbert data check FORMAT PATH` to a `Format` (reader, summary,
what PATH is). Readers raise `FormatError(path, line, message)` on malformed input.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from actbert.data.formats.coin import (CoinSegment, CoinStep, CoinTaxonomy, CoinVideo, coin_second_labels, read_coin,
                                       read_coin_taxonomy, summarize_coin, summarize_coin_taxonomy)
from actbert.data.formats.crosstask import (CrossTaskRelease, CrossTaskSplit, CrossTaskStep, CrossTaskTask,
                                            CrossTaskVideo, crosstask_split, read_crosstask, read_crosstask_annotation,
                                            read_crosstask_tasks, read_crosstask_videos, summarize_crosstask)
from actbert.data.formats.errors import FormatError, ReadReport
from actbert.data.formats.howto100m import (Caption, HowTo100MVideo, read_captions, read_howto100m_csv,
                                            summarize_captions, summarize_howto100m_csv)
from actbert.data.formats.msrvtt import (McQuestion, MsrvttData, MsrvttPair, MsrvttSentence, MsrvttVideo,
                                         read_msrvtt_csv, read_msrvtt_ids, read_msrvtt_json, read_msrvtt_mc,
                                         summarize_msrvtt_csv, summarize_msrvtt_ids, summarize_msrvtt_json,
                                         summarize_msrvtt_mc)
from actbert.data.formats.youcook2 import (RetrievalClip, YouCook2Clip, YouCook2Video, read_youcook2,
                                           read_youcook2_csv, summarize_youcook2, summarize_youcook2_csv)


@dataclass(frozen=True)
class Format:
    name: str
    reader: Callable[[Path], Any]
    summarize: Callable[[Path], dict]
    path_is: str  # what PATH must be, shown by `actbert data check --help`
    is_dir: bool = False


FORMATS: dict[str, Format] = {f.name: f for f in [
    Format("youcook2", read_youcook2, summarize_youcook2, "youcookii_annotations_trainval.json"),
    Format("youcook2-csv", read_youcook2_csv, summarize_youcook2_csv,
           "HowTo100M/MIL-NCE retrieval csv (end,start,task,text,video_id)"),
    Format("msrvtt-csv", read_msrvtt_csv, summarize_msrvtt_csv, "MSR-VTT 1k-A csv (key,vid_key,video_id,sentence)"),
    Format("msrvtt-ids", read_msrvtt_ids, summarize_msrvtt_ids, "video-id list, e.g. MSRVTT_train.9k.csv"),
    Format("msrvtt-json", read_msrvtt_json, summarize_msrvtt_json, "MSRVTT_data.json"),
    Format("msrvtt-mc", read_msrvtt_mc, summarize_msrvtt_mc, "multiple-choice jsonl"),
    Format("coin", read_coin, summarize_coin, "COIN.json (taxonomy csvs beside it are used when present)"),
    Format("coin-taxonomy", read_coin_taxonomy, summarize_coin_taxonomy, "folder with the two taxonomy csvs", True),
    Format("crosstask", read_crosstask, summarize_crosstask, "CrossTask release folder", True),
    Format("howto100m-captions", read_captions, summarize_captions, "raw_caption.json / caption.json"),
    Format("howto100m-csv", read_howto100m_csv, summarize_howto100m_csv, "HowTo100M_v1.csv"),
]}


def read(name: str, path: str | Path):
    """Read `path` with the reader registered as `name`."""
    return get_format(name).reader(Path(path))


def summarize(name: str, path: str | Path) -> dict:
    """The JSON-able summary that `actbert data check` prints; raises FormatError on malformed input."""
    fmt = get_format(name)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such {'folder' if fmt.is_dir else 'file'}")
    if fmt.is_dir != path.is_dir():
        raise FormatError(path, None, f"format {name!r} expects {'a folder' if fmt.is_dir else 'a file'}: {fmt.path_is}")
    return {"format": name, "path": str(path), **fmt.summarize(path)}


def get_format(name: str) -> Format:
    if name not in FORMATS:
        raise KeyError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    return FORMATS[name]


__all__ = [
    "FORMATS", "Format", "FormatError", "ReadReport", "read", "summarize", "get_format",
    "YouCook2Clip", "YouCook2Video", "RetrievalClip", "read_youcook2", "read_youcook2_csv",
    "MsrvttPair", "MsrvttVideo", "MsrvttSentence", "MsrvttData", "McQuestion",
    "read_msrvtt_csv", "read_msrvtt_ids", "read_msrvtt_json", "read_msrvtt_mc",
    "CoinStep", "CoinTaxonomy", "CoinSegment", "CoinVideo", "read_coin", "read_coin_taxonomy", "coin_second_labels",
    "CrossTaskTask", "CrossTaskVideo", "CrossTaskStep", "CrossTaskRelease", "CrossTaskSplit",
    "read_crosstask", "read_crosstask_tasks", "read_crosstask_videos", "read_crosstask_annotation", "crosstask_split",
    "Caption", "HowTo100MVideo", "read_captions", "read_howto100m_csv",
]
