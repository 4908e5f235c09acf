"""Cleaning of YouTube automatic speech recognition (ASR) narration, each rule switchable and counted.

HowTo100M's `raw_caption.json` is YouTube ASR: lines of a few seconds, no punctuation, and a rolling
display that repeats the tail of one line at the head of the next ("so today we are going to" /
"going to make a cake"). Left in, the repeats duplicate words across caption windows and leak the
text of one window into the next; fillers and `[Music]` tags add tokens that carry nothing.

`clean_lines(lines, config) -> (cleaned, report)`; `AsrReport` counts what each rule removed, so a
user sees what cleaning did to their corpus (`report.as_dict()`).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import Any, Iterable, NamedTuple

__all__ = ["AsrConfig", "AsrReport", "Line", "clean_lines", "clean_text"]


class Line(NamedTuple):
    """One narration line, in seconds."""

    start: float
    end: float
    text: str


DEFAULT_FILLERS = ("um", "umm", "uh", "uhm", "uhh", "erm", "er", "ah", "ahh", "hmm", "hm", "mm", "mhm", "you know")
# "you know" is kept where it is the verb phrase of a question or a clause ("do you know how", "you know the")
_YOU_KNOW_KEEP_AFTER = ("how", "what", "where", "when", "why", "which", "who", "that", "if", "whether", "the", "a",
                        "an", "this", "it", "about", "him", "her", "them")
_TAG_RE = re.compile(r"\[[^\]]*\]|\([^)]*\)|♪+")
_WS_RE = re.compile(r"\s+")
_PUNCT = ".,!?;:\"'“”‘’-…"


@dataclass
class AsrConfig:
    """Switches of the cleaning rules (all on by default except lowercasing)."""

    drop_tags: bool = True            # "[Music]", "[Applause]", "(laughs)", "♪"
    drop_fillers: bool = True         # words in `fillers`
    fillers: tuple[str, ...] = DEFAULT_FILLERS
    dedup_overlap: bool = True        # remove the head of a line that repeats the tail of the previous line
    min_overlap_words: int = 2        # shorter overlaps are ordinary speech ("the", "and")
    drop_repeated_lines: bool = True  # a line identical to the previous one (its time is merged into it)
    collapse_stutter: bool = True     # "the the onion" -> "the onion"
    lowercase: bool = False           # the uncased tokenizer lowercases anyway
    drop_empty: bool = True           # lines left with no words


@dataclass
class AsrReport:
    """What cleaning did: line counts and words removed per rule. Add reports with `+`."""

    lines_in: int = 0
    lines_out: int = 0
    lines_dropped_empty: int = 0
    lines_dropped_repeated: int = 0
    lines_dropped_bad_time: int = 0
    tags_removed: int = 0
    filler_words_removed: int = 0
    overlap_words_removed: int = 0
    stutter_words_removed: int = 0
    examples: list[str] = field(default_factory=list)  # a few "rule: before -> after" lines for eyeballing

    def __add__(self, other: "AsrReport") -> "AsrReport":
        out = AsrReport(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)
                           if f.name != "examples"})
        out.examples = (self.examples + other.examples)[:10]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def _example(self, rule: str, before: str, after: str) -> None:
        if len(self.examples) < 10:
            self.examples.append(f"{rule}: {before!r} -> {after!r}")


def _filler_res(fillers: Iterable[str]) -> list[tuple[re.Pattern, int]]:
    """(pattern, words per match) for each filler."""
    out = []
    for f in sorted(set(fillers), key=len, reverse=True):  # longer first: "uhm" before "uh"
        body = r"\s+".join(re.escape(w) for w in f.split())
        if f == "you know":
            keep = "|".join(_YOU_KNOW_KEEP_AFTER)
            pat = re.compile(rf"(?<!\bdo )(?<!\bdid )(?<!\bdon't )\b{body}\b(?!\s+(?:{keep})\b)[,.]?", re.I)
        else:
            pat = re.compile(rf"(?<![\w'-]){body}(?![\w'-])[,.]?", re.I)
        out.append((pat, len(f.split())))
    return out


_FILLER_CACHE: dict[tuple[str, ...], list[tuple[re.Pattern, int]]] = {}


def clean_text(text: str, config: AsrConfig, report: AsrReport | None = None) -> str:
    """The per-line rules (tags, fillers, whitespace, stutter, case) on one string."""
    report = report if report is not None else AsrReport()
    before = text
    if config.drop_tags:
        text, n = _TAG_RE.subn(" ", text)
        report.tags_removed += n
    if config.drop_fillers and config.fillers:
        pats = _FILLER_CACHE.setdefault(tuple(config.fillers), _filler_res(config.fillers))
        for pat, nwords in pats:
            text, n = pat.subn(" ", text)
            report.filler_words_removed += n * nwords
    words = _WS_RE.sub(" ", text).strip().split(" ") if text.strip() else []
    if config.collapse_stutter and len(words) > 1:
        kept = [words[0]]
        for w in words[1:]:
            if _norm(w) and _norm(w) == _norm(kept[-1]):
                report.stutter_words_removed += 1
            else:
                kept.append(w)
        words = kept
    text = " ".join(words)
    if config.lowercase:
        text = text.lower()
    if text != before.strip():
        report._example("line", before, text)
    return text


def _norm(word: str) -> str:
    return word.strip(_PUNCT).lower()


def _as_line(x: Any) -> Line:
    if isinstance(x, Line):
        return x
    if hasattr(x, "text"):
        return Line(float(x.start), float(x.end), x.text)
    start, end, text = x
    return Line(float(start), float(end), text)


def clean_lines(lines: Iterable[Any], config: AsrConfig | None = None) -> tuple[list[Line], AsrReport]:
    """Clean one video's narration lines (objects with start/end/text, or tuples), sorted by start.

    Returns the kept lines and a report. Lines with a NaN / negative time span are dropped (counted).
    """
    config = config or AsrConfig()
    report = AsrReport()
    raw = []
    for x in lines:
        report.lines_in += 1
        ln = _as_line(x)
        if not (math.isfinite(ln.start) and math.isfinite(ln.end)) or ln.end < ln.start:
            report.lines_dropped_bad_time += 1
            continue
        raw.append(Line(ln.start, ln.end, "" if ln.text is None else str(ln.text)))
    raw.sort(key=lambda ln: (ln.start, ln.end))
    out: list[Line] = []
    prev_words: list[str] = []  # the previous line's words before its own overlap removal
    for ln in raw:
        text = clean_text(ln.text, config, report)
        words = text.split()
        full = [_norm(w) for w in words]
        if config.drop_repeated_lines and out and full and full == prev_words:
            last = out[-1]
            out[-1] = Line(last.start, max(last.end, ln.end), last.text)
            report.lines_dropped_repeated += 1
            continue
        if config.dedup_overlap and prev_words and words:
            k = _overlap(prev_words, full, config.min_overlap_words)
            if k:
                report.overlap_words_removed += k
                report._example("overlap", text, " ".join(words[k:]))
                words = words[k:]
        prev_words = full
        if not words:
            if config.drop_empty:
                report.lines_dropped_empty += 1
                continue
        out.append(Line(ln.start, ln.end, " ".join(words)))
    report.lines_out = len(out)
    return out, report


def _overlap(prev: list[str], cur: list[str], min_words: int) -> int:
    """Largest k >= min_words with prev[-k:] == cur[:k] (0 if none)."""
    for k in range(min(len(prev), len(cur)), max(min_words, 1) - 1, -1):
        if prev[-k:] == cur[:k]:
            return k
    return 0
