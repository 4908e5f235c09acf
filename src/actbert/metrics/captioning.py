"""Captioning metrics (BLEU-3/4, METEOR, ROUGE-L, CIDEr-D) with pycocoevalcap, in the spec's two protocols.

* ``corpus`` (UniVL, VideoCLIP: pycocoevalcap scorers called nlg-eval style, without a tokenizer):
  captions are lower-cased, punctuation is split off into its own tokens (the form a BERT-decoded
  caption takes: ``"fry it, then serve."`` → ``"fry it , then serve ."``) and whitespace is collapsed;
  then BLEU is corpus-level, METEOR is the jar's aggregate score, ROUGE-L and CIDEr-D (pycocoevalcap's
  ``Cider`` implements CIDEr-D: clipped counts, Gaussian length penalty, x10) are averaged over sentences,
  the CIDEr document frequencies coming from the whole reference set.
* ``per_video`` (the dense-captioning evaluator used by VideoBERT-era papers): captions go through
  pycocoevalcap's ``PTBTokenizer`` (Stanford PTB, lower-cased, punctuation tokens removed; needs Java);
  every scorer is then run on each video's clips alone and the scores are averaged over videos. CIDEr
  document frequencies are therefore per video: a video with a single clip always gets CIDEr 0 (its
  log reference count is 0) -- a property of that protocol, reproduced, not a bug here.

Scale, as in the ActBERT / VideoBERT tables: BLEU3, BLEU4, METEOR, ROUGE_L in percent (x100), CIDEr as
pycocoevalcap returns it. METEOR starts one Java process per call (about 8 s) unless a running scorer is
passed in; ``meteor=False`` skips it and leaves the ``METEOR`` key out.
"""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Hashable, Mapping, Sequence

import numpy as np

__all__ = ["PROTOCOLS", "normalize_caption", "caption_metrics"]

PROTOCOLS = ("corpus", "per_video")
_PUNCT = re.compile(r"([^\w\s])")
_SPACE = re.compile(r"\s+")
SCALE_NOTE = "BLEU3/BLEU4/METEOR/ROUGE_L x100, CIDEr x1"


def normalize_caption(text: str, punctuation: str = "split") -> str:
    """Lower-case, handle punctuation (``split`` into tokens, ``strip`` it, or ``keep`` it attached), collapse spaces."""
    if punctuation not in ("split", "strip", "keep"):
        raise ValueError(f"punctuation must be 'split', 'strip' or 'keep', got {punctuation!r}")
    text = text.lower()
    if punctuation == "split":
        text = _PUNCT.sub(r" \1 ", text)
    elif punctuation == "strip":
        text = _PUNCT.sub(" ", text)
    # METEOR's stdio protocol separates fields with '|||': never let a caption contain it
    text = text.replace("|||", " ")
    return _SPACE.sub(" ", text).strip()


def _validate(predictions: Mapping, references: Mapping) -> None:
    if not predictions or not references:
        raise ValueError(f"predictions ({len(predictions)} keys) and references ({len(references)} keys) "
                         "must both be non-empty")
    if set(predictions) != set(references):
        only_p = sorted(map(str, set(predictions) - set(references)))[:5]
        only_r = sorted(map(str, set(references) - set(predictions)))[:5]
        raise ValueError(f"predictions ({len(predictions)} keys) and references ({len(references)} keys) must "
                         f"have the same keys; only in predictions: {only_p}, only in references: {only_r}")
    for k, p in predictions.items():
        if not isinstance(p, str):
            raise ValueError(f"predictions[{k!r}] must be one string, got {type(p).__name__}")
    for k, refs in references.items():
        if isinstance(refs, str) or not isinstance(refs, Sequence) or len(refs) == 0:
            raise ValueError(f"references[{k!r}] must be a non-empty list of strings, got {refs!r}")
        if not all(isinstance(r, str) for r in refs):
            raise ValueError(f"references[{k!r}] must hold only strings, got {refs!r}")


class _MeteorSession:
    """A METEOR scorer for the duration of a `with` block.

    `meteor=True` starts one jar process and stops it on exit (the jar takes seconds to start, so a
    whole evaluation shares one). An object with pycocoevalcap's ``compute_score(gts, res)`` is used as
    given and left running, so that a caller scoring many runs pays the start-up once.
    """

    def __init__(self, meteor):
        self.given = None if meteor is True else meteor
        self.meteor = None

    def __enter__(self):
        if self.given is not None:
            if not callable(getattr(self.given, "compute_score", None)):
                raise ValueError(f"meteor must be True, False or a scorer with compute_score(gts, res), "
                                 f"got {type(self.given).__name__}")
            return self.given
        from pycocoevalcap.meteor.meteor import Meteor

        try:
            self.meteor = Meteor()
        except FileNotFoundError as exc:  # no `java` on PATH
            raise RuntimeError("METEOR needs Java (`java` on PATH); pass meteor=False to skip it") from exc
        return self.meteor

    def __exit__(self, *exc_info):
        if self.meteor is not None:
            proc = self.meteor.meteor_p
            proc.stdin.close()
            proc.kill()
            proc.wait()
        return False


def _score_set(gts: dict, res: dict, meteor) -> dict:
    """The four pycocoevalcap scorers on one set of (already tokenized) captions; raw 0-1 / CIDEr values."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out = {"BLEU3": float(bleu[2]), "BLEU4": float(bleu[3])}
    if meteor is not None:
        out["METEOR"] = float(meteor.compute_score(gts, res)[0])
    out["ROUGE_L"] = float(Rouge().compute_score(gts, res)[0])
    out["CIDEr"] = float(Cider().compute_score(gts, res)[0])
    return out


def cider_per_caption(predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]],
                      punctuation: str = "split") -> list[float]:
    """CIDEr of each caption (in `references` order), tokenized as the corpus protocol: their mean is the
    corpus CIDEr (the document frequencies come from the whole set), so they can be resampled for intervals."""
    from pycocoevalcap.cider.cider import Cider

    _validate(predictions, references)
    gts = {k: [normalize_caption(r, punctuation) for r in references[k]] for k in references}
    res = {k: [normalize_caption(predictions[k], punctuation)] for k in references}
    return [float(x) for x in Cider().compute_score(gts, res)[1]]


def _ptb_tokenize(predictions: Mapping, references: Mapping) -> tuple[dict, dict]:
    """PTB-tokenize predictions and references in one Java call; returns (gts, res) keyed like the inputs."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    # PTB lines are matched back to captions by order; a line break inside a caption would shift them
    # all, so fold whitespace first. Integer ids are ours; the tokenizer only needs hashable keys.
    keys = list(references)
    batch: dict = {}
    for i, k in enumerate(keys):
        batch[("r", i)] = [{"caption": _SPACE.sub(" ", r).strip()} for r in references[k]]
        batch[("p", i)] = [{"caption": _SPACE.sub(" ", predictions[k]).strip()}]
    try:
        tok = PTBTokenizer().tokenize(batch)
    except FileNotFoundError as exc:
        raise RuntimeError("the per_video protocol needs Java (`java` on PATH) for the PTB tokenizer") from exc
    gts, res = {}, {}
    for i, k in enumerate(keys):
        # an empty caption can come back as no line at all: treat it as the empty token sequence
        gts[k] = tok.get(("r", i)) or [""] * len(references[k])
        res[k] = tok.get(("p", i)) or [""]
        if len(gts[k]) != len(references[k]) or len(res[k]) != 1:
            raise RuntimeError(f"PTB tokenizer returned {len(gts[k])} references and {len(res[k])} predictions "
                               f"for key {k!r}; expected {len(references[k])} and 1")
    return gts, res


def caption_metrics(predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]],
                    protocol: str = "corpus", video_of: Mapping[Hashable, Hashable] | None = None,
                    meteor=True, punctuation: str = "split") -> dict:
    """BLEU3, BLEU4, METEOR, ROUGE_L, CIDEr of `predictions[key]` against `references[key]`.

    `protocol` is ``"corpus"`` or ``"per_video"`` (see the module docstring); ``per_video`` needs
    `video_of[key]` = the video of each clip. `punctuation` applies to the corpus protocol only (the
    PTB tokenizer decides for per_video). `meteor` is True (start a METEOR jar for this call), False
    (skip METEOR) or a running pycocoevalcap ``Meteor`` to reuse. The result also carries ``protocol``, ``tokenization``,
    ``scale``, ``n_captions`` and, for per_video, ``n_videos``.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    _validate(predictions, references)
    if protocol == "corpus":
        gts = {k: [normalize_caption(r, punctuation) for r in references[k]] for k in references}
        res = {k: [normalize_caption(predictions[k], punctuation)] for k in references}
        if meteor:
            with _MeteorSession(meteor) as m:
                raw = _score_set(gts, res, m)
        else:
            raw = _score_set(gts, res, None)
        extra = {"tokenization": f"whitespace, lower-case, punctuation {punctuation}"}
    else:
        if video_of is None:
            raise ValueError("protocol 'per_video' needs video_of[key] = the video of each caption key")
        missing = [k for k in references if k not in video_of]
        if missing:
            raise ValueError(f"video_of has no video for {len(missing)} of {len(references)} keys, "
                             f"e.g. {sorted(map(str, missing))[:5]}")
        gts_all, res_all = _ptb_tokenize(predictions, references)
        by_video: dict = defaultdict(list)
        for k in references:
            by_video[video_of[k]].append(k)
        per_video = []

        def run_all(m):
            for keys in by_video.values():
                per_video.append(_score_set({k: gts_all[k] for k in keys}, {k: res_all[k] for k in keys}, m))

        if meteor:
            with _MeteorSession(meteor) as m:
                run_all(m)
        else:
            run_all(None)
        raw = {name: float(np.mean([s[name] for s in per_video])) for name in per_video[0]}
        extra = {"tokenization": "PTB (Stanford CoreNLP 3.4.1 via pycocoevalcap), lower-case, punctuation removed",
                 "n_videos": len(by_video)}
    out = {name: (value if name == "CIDEr" else 100.0 * value) for name, value in raw.items()}
    out.update({"protocol": protocol, "scale": SCALE_NOTE, "n_captions": len(references)})
    out.update(extra)
    return out
