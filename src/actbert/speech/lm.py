"""A domain language model for pocketsphinx, built from text the user gives (``--vocabulary-from``).

pocketsphinx decodes with an n-gram model in ARPA format and a pronunciation dictionary. Its general
English model knows 130 k words and every way to string them; a narrow domain (recipes, a product, a
lecture series) is recognised far better, and faster, by a small model of that domain's own sentences.

Why our own estimator: no PyPI package writes an ARPA file from text without a native toolkit (KenLM's
``lmplz`` and SRILM are C++ binaries, not wheels; NLTK's ``nltk.lm`` has no ARPA writer). The model here
is a standard backoff trigram with absolute discounting (Ney et al. 1994), small enough to check by hand.

Words the bundled CMU dictionary cannot pronounce are left out (pocketsphinx could not hypothesise them
anyway) and reported, so a user sees which of their domain words are missing.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DomainModel", "build_arpa", "read_vocabulary_text", "normalize_words", "build_domain_model"]

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def normalize_words(text: str) -> list[str]:
    """Lower-case words as the CMU dictionary spells them (letters and inner apostrophes)."""
    return _WORD.findall(text.lower())


def read_vocabulary_text(path: str | Path) -> list[str]:
    """Sentences of a domain text: a caption JSON (HowTo100M-style, its ``text`` lists) or plain text, one
    sentence per line."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the vocabulary text ({type(exc).__name__}: {exc})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise ValueError(f'{path}: expected a caption JSON {{video_id: {{"text": [...]}}}}')
        return [t for rec in data.values() if isinstance(rec, dict) for t in rec.get("text", []) if isinstance(t, str)]
    return [line for line in raw.splitlines() if line.strip()]


def build_arpa(sentences: list[list[str]], order: int = 3, discount: float = 0.7) -> str:
    """ARPA text of a backoff n-gram model with absolute discounting, over the given word lists."""
    counts: list[Counter] = [Counter() for _ in range(order + 1)]
    for words in sentences:
        padded = ["<s>", *words, "</s>"]
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                counts[n][tuple(padded[i:i + n])] += 1
    total = sum(c for g, c in counts[1].items() if g != ("<s>",))
    logp: dict[tuple, float] = {}
    for g, c in counts[1].items():
        logp[g] = -99.0 if g == ("<s>",) else math.log10(c / total)

    def prob(g: tuple) -> float:
        """Backed-off probability of the last word of g given the rest (linear)."""
        if g in logp:
            return 10 ** logp[g]
        if len(g) == 1:
            return 0.0
        return 10 ** backoff.get(g[:-1], 0.0) * prob(g[1:])

    backoff: dict[tuple, float] = {}
    for n in range(2, order + 1):
        by_history: dict[tuple, list[tuple[tuple, int]]] = defaultdict(list)
        for g, c in counts[n].items():
            by_history[g[:-1]].append((g, c))
        for h, grams in by_history.items():
            h_total = sum(c for _, c in grams)
            for g, c in grams:
                logp[g] = math.log10(max(c - discount, 1e-9) / h_total)
            left = discount * len(grams) / h_total          # mass freed by discounting
            lower_seen = sum(prob(g[1:]) for g, _ in grams)  # what the shorter history gives the seen words
            backoff[h] = math.log10(max(left, 1e-9) / max(1.0 - lower_seen, 1e-6))
    out = ["\\data\\"] + [f"ngram {n}={len(counts[n])}" for n in range(1, order + 1)] + [""]
    for n in range(1, order + 1):
        out.append(f"\\{n}-grams:")
        for g in sorted(counts[n]):
            bo = f"\t{backoff.get(g, 0.0):.4f}" if n < order else ""
            out.append(f"{logp[g]:.4f}\t{' '.join(g)}{bo}")
        out.append("")
    out.append("\\end\\")
    return "\n".join(out) + "\n"


@dataclass
class DomainModel:
    """Files pocketsphinx loads (``lm`` ARPA, ``dict`` the pronunciations of its words) and what was left out."""

    lm: Path
    dict: Path
    words: int
    sentences: int
    oov: Counter = field(default_factory=Counter)  # domain words the dictionary cannot pronounce


def build_domain_model(texts: list[str], folder: str | Path, dictionary: str | Path) -> DomainModel:
    """Write ``domain.lm`` (trigram ARPA) and ``domain.dict`` into ``folder`` from the domain sentences."""
    pronunciations: dict[str, list[str]] = defaultdict(list)
    with open(dictionary, encoding="utf-8") as f:
        for line in f:
            head = line.split(" ", 1)[0]
            pronunciations[head.split("(", 1)[0]].append(line.rstrip("\n"))
    oov: Counter = Counter()
    sentences = []
    for text in texts:
        words = normalize_words(text)
        oov.update(w for w in words if w not in pronunciations)
        kept = [w for w in words if w in pronunciations]
        if kept:
            sentences.append(kept)
    if not sentences:
        raise ValueError("the vocabulary text has no word the pronunciation dictionary knows")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = sorted({w for s in sentences for w in s})
    lm, dict_path = folder / "domain.lm", folder / "domain.dict"
    lm.write_text(build_arpa(sentences), encoding="utf-8")
    dict_path.write_text("".join(p + "\n" for w in vocab for p in pronunciations[w]), encoding="utf-8")
    return DomainModel(lm, dict_path, len(vocab), len(sentences), oov)
