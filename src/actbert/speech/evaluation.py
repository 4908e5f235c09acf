"""How far recognised narration is from what was said: word error rate and content-word recall.

* WER (``jiwer``): per video, the hypothesis lines joined against the reference lines joined, both
  normalised (lower case, punctuation dropped, as the recogniser spells words); the corpus figure sums
  substitutions + deletions + insertions over all reference words.
* Content-word recall: the reference's verbs and nouns (spaCy POS tags, compared by lemma) that the
  hypothesis contains within ``tolerance`` seconds of the reference word. These are the words ActBERT's
  action vocabulary and its masked-language objective live on; a misheard "the" costs little.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

__all__ = ["AsrScore", "score_transcripts", "normalize"]

_PUNCT = re.compile(r"[^a-z0-9' ]+")
CONTENT_POS = ("VERB", "NOUN")


def normalize(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


@dataclass
class AsrScore:
    videos: int
    reference_words: int
    wer: float                 # (S + D + I) / N over the corpus, in %
    substitutions: int
    deletions: int
    insertions: int
    content_words: int         # verbs + nouns in the reference
    content_recall: float      # % of them heard (same lemma, within tolerance)
    verb_recall: float
    noun_recall: float
    missing_videos: int        # reference videos with no hypothesis (counted as all deletions)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def score_transcripts(reference: dict, hypothesis: dict, tolerance: float = 1.0, nlp=None,
                      videos: list[str] | None = None) -> AsrScore:
    """Score caption JSON ``hypothesis`` against ``reference`` (both ``{vid: {"start", "end", "text"}}``;
    the reference's ``words`` [[word, start], ...] per line give word times, else the line's span is used)."""
    import jiwer

    from actbert.data.vocab import load_nlp

    nlp = nlp or load_nlp()
    vids = sorted(videos if videos is not None else reference)
    refs, hyps, missing = [], [], 0
    counts = {"VERB": [0, 0], "NOUN": [0, 0]}  # [heard, total]
    for vid in vids:
        ref = reference[vid]
        hyp = hypothesis.get(vid)
        missing += hyp is None
        hyp = hyp or {"start": [], "end": [], "text": []}
        refs.append(normalize(" ".join(ref["text"])))
        hyps.append(normalize(" ".join(hyp["text"])))
        hyp_lemmas = _timed_lemmas(hyp, nlp)
        for i, doc in enumerate(nlp.pipe(ref["text"])):
            times = _word_times(ref, i, doc)
            for tok, t in zip(doc, times):
                if tok.pos_ in CONTENT_POS:
                    counts[tok.pos_][1] += 1
                    lemma = tok.lemma_.lower()
                    counts[tok.pos_][0] += any(lem == lemma and abs(ht - t) <= tolerance for lem, ht in hyp_lemmas)
    pairs = [(r, h) for r, h in zip(refs, hyps) if r]
    out = jiwer.process_words([r for r, _ in pairs], [h if h else "" for _, h in pairs]) if pairs else None
    n = sum(len(r.split()) for r, _ in pairs)
    heard, total = (sum(c[k] for c in counts.values()) for k in (0, 1))
    pct = lambda a, b: 100.0 * a / b if b else float("nan")  # noqa: E731
    s, d, ins = (out.substitutions, out.deletions, out.insertions) if out else (0, 0, 0)
    return AsrScore(videos=len(vids), reference_words=n, wer=pct(s + d + ins, n), substitutions=s, deletions=d,
                    insertions=ins, content_words=total, content_recall=pct(heard, total),
                    verb_recall=pct(*counts["VERB"]), noun_recall=pct(*counts["NOUN"]), missing_videos=missing)


def _word_times(rec: dict, i: int, doc) -> list[float]:
    """A time for each spaCy token of line i: the start of the timed word (eSpeak's, the recogniser's) the
    token lies in, found by character offset, so a word spaCy splits ("i'm" -> "i", "'m") keeps its time;
    the line's tokens spread evenly over its span when the line has no word times or they do not match its
    whitespace words."""
    start, end = float(rec["start"][i]), float(rec["end"][i])
    words = (rec.get("words") or [None] * len(rec["text"]))[i]
    text = rec["text"][i]
    spans = [m.start() for m in re.finditer(r"\S+", text)]
    if words and len(words) == len(spans):
        return [float(words[bisect.bisect_right(spans, tok.idx) - 1 if tok.idx >= spans[0] else 0][1]) for tok in doc]
    n = len(doc)
    return [start + (end - start) * (k + 0.5) / max(1, n) for k in range(n)]


def _timed_lemmas(hyp: dict, nlp) -> list[tuple[str, float]]:
    out = []
    for i, doc in enumerate(nlp.pipe(hyp["text"])):
        for tok, t in zip(doc, _word_times(hyp, i, doc)):
            out.append((tok.lemma_.lower(), t))
    return out
