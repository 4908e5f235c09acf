"""ASR-like narration: what a YouTube cook says while doing the steps, with YouTube's caption timing.

Each step gets one main line that contains its verb (or a synonym) and overlaps the step in time,
though it may start up to `timing_jitter` seconds early or late; sometimes a second, overlapping
line repeats it in other words (rolling captions). Filler words, one-word ASR errors, an intro
naming the dish and off-topic chatter are mixed in. ASR errors never hit the verb of a step line,
so verb mining always finds the step's verb (or one of its synonyms) where the step happens.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actbert.world.catalog import OBJECT_BY_NAME, VERB_BY_NAME
from actbert.world.config import NarrationConfig
from actbert.world.plan import PlannedStep, VideoPlan, rng_for

STEP_TEMPLATES = (
    "now {v} the {o}{t}", "let's {v} this {o}{t}", "ok so we {v} the {o}{t}", "next you want to {v} the {o}{t}",
    "i'm going to {v} the {o}{t}", "and then we {v} our {o}{t}", "we are {ving} the {o} now",
    "just {v} the {o} like this", "you can {v} the {o}{t} here", "{v} the {o}{t}",
)
STIR_TEMPLATES = (  # the object of stir is the container: people say what is in it
    "now {v} everything in the {o}", "let's {v} it all together", "ok so we {v} the mixture",
    "{v} it well in the {o}", "we are {ving} the {o} now", "just {v} it like this",
)
TARGET_PHRASES = {"add": (" into the {t}", " to the {t}", " in the {t}"), "pour": (" into the {t}", " in the {t}"),
                  "fry": (" in the {t}",), "squeeze": (" into the {t}", " over the {t}")}
FILLERS = ("um", "uh", "so", "okay", "alright", "you know", "like", "and")
CHATTER = (
    "hi guys welcome back to my channel", "don't forget to subscribe", "this is my favourite part",
    "my kids love this recipe", "it smells so good already", "the weather is lovely today",
    "let me know in the comments", "i bought this at the market", "my grandmother taught me this",
    "this is really easy", "thanks for watching", "hit the like button", "i love this music",
    "we had this last week too", "sorry about the noise",
)
CONFUSIONS = {"the": "a", "a": "the", "bowl": "ball", "pan": "pen", "cup": "cop", "oil": "all", "now": "no",
              "then": "than", "this": "these", "water": "waiter", "bread": "bred", "dough": "doe", "milk": "melk",
              "tomato": "tomatoes", "lemon": "lemons", "onion": "onions", "carrot": "carrots", "potato": "potatoes",
              "egg": "eggs", "we": "he", "our": "are", "into": "in to", "so": "sew"}
DOUBLE_FINAL = {"cut", "stir", "chop", "flip", "drop", "dip"}


@dataclass(frozen=True)
class NarrationLine:
    """One caption line; `step_index` is the recipe step it narrates (None for chatter/intro)."""

    start: float
    end: float
    text: str
    step_index: int | None
    kind: str   # step | repeat | intro | chatter | outro

    def to_json(self) -> dict:
        return {"start": self.start, "end": self.end, "text": self.text, "step_index": self.step_index,
                "kind": self.kind}


def gerund(verb: str) -> str:
    """'cut' -> 'cutting', 'slice' -> 'slicing', 'fry' -> 'frying'."""
    if verb in DOUBLE_FINAL:
        return verb + verb[-1] + "ing"
    if verb.endswith("e") and not verb.endswith("ee"):
        return verb[:-1] + "ing"
    return verb + "ing"


def _step_line(step: PlannedStep, rng: np.random.Generator, cfg: NarrationConfig) -> tuple[list[str], int]:
    """Words of one narrated step and the index of its verb word (protected from ASR errors)."""
    verb = VERB_BY_NAME[step.verb]
    word = verb.name if rng.random() >= cfg.synonym_prob else verb.synonyms[int(rng.integers(len(verb.synonyms)))]
    templates = STIR_TEMPLATES if step.verb == "stir" else STEP_TEMPLATES
    template = templates[int(rng.integers(len(templates)))]
    target = ""
    if step.target and step.verb in TARGET_PHRASES and rng.random() < 0.7:
        phrases = TARGET_PHRASES[step.verb]
        target = phrases[int(rng.integers(len(phrases)))].format(t=OBJECT_BY_NAME[step.target].noun)
    marker = "\x00"
    text = template.format(v=marker, ving=marker + "ing", o=OBJECT_BY_NAME[step.object].noun, t=target)
    words = text.split()
    verb_at = next(i for i, w in enumerate(words) if w.startswith(marker))
    words[verb_at] = gerund(word) if words[verb_at].endswith("ing") else word
    if step.verb == "cut" and words[verb_at] in {"cut", "chop"} and rng.random() < 0.3:
        words.insert(verb_at + 1, "up")
    return words, verb_at


def _asr_noise(words: list[str], protect: int | None, rng: np.random.Generator, cfg: NarrationConfig) -> str:
    """Fillers and one replaced/dropped word, never touching `protect` (the verb)."""
    words = list(words)
    if rng.random() < cfg.word_error_prob:
        candidates = [i for i in range(len(words)) if i != protect]
        if candidates:
            i = candidates[int(rng.integers(len(candidates)))]
            if words[i] in CONFUSIONS and rng.random() < 0.7:
                words[i] = CONFUSIONS[words[i]]
            elif len(words) > 3:
                del words[i]
                protect = protect - 1 if protect is not None and i < protect else protect
    if rng.random() < cfg.filler_prob:
        filler = FILLERS[int(rng.integers(len(FILLERS)))]
        at = 0 if rng.random() < 0.6 else int(rng.integers(0, len(words) + 1))
        words.insert(at, filler)
    return " ".join(words)


def _timed(start: float, length: float, duration: float) -> tuple[float, float]:
    start = min(max(0.0, start), max(0.0, duration - 0.5))
    return round(start, 2), min(duration, round(start + length, 2))


def narrate_video(plan: VideoPlan, cfg: NarrationConfig, seed: int) -> list[NarrationLine]:
    """All caption lines of one video, sorted by start time."""
    rng = rng_for(seed, plan.index, "narration")
    duration = plan.duration
    lo, hi = cfg.line_seconds
    lines: list[NarrationLine] = []
    if rng.random() < cfg.intro_prob:
        s, e = _timed(rng.uniform(0, 0.5), rng.uniform(lo, hi), duration)
        lines.append(NarrationLine(s, e, _asr_noise(f"hi everyone today we are making {plan.recipe.title}".split(),
                                                    None, rng, cfg), None, "intro"))
    for step in plan.steps:
        words, verb_at = _step_line(step, rng, cfg)
        length = rng.uniform(lo, hi)
        start = step.start + rng.uniform(-cfg.timing_jitter, cfg.timing_jitter)
        # keep at least half a second of overlap with the step, whatever the jitter
        start = min(start, step.end - 0.5)
        start = max(start, step.start + 0.5 - length)
        s, e = _timed(start, length, duration)
        lines.append(NarrationLine(s, e, _asr_noise(words, verb_at, rng, cfg), step.step_index, "step"))
        if rng.random() < cfg.repeat_prob:
            words2, verb2 = _step_line(step, rng, cfg)
            s2, e2 = _timed(s + rng.uniform(1.0, 2.5), rng.uniform(lo, hi), duration)
            if e2 - s2 >= 0.5:
                lines.append(NarrationLine(s2, e2, _asr_noise(words2, verb2, rng, cfg), step.step_index, "repeat"))
    for _ in range(int(rng.poisson(cfg.chatter_per_minute * duration / 60.0))):
        s, e = _timed(rng.uniform(0, duration - 1.0), rng.uniform(lo, hi), duration)
        text = CHATTER[int(rng.integers(len(CHATTER)))]
        lines.append(NarrationLine(s, e, _asr_noise(text.split(), None, rng, cfg), None, "chatter"))
    if rng.random() < 0.5:
        s, e = _timed(duration - rng.uniform(1.5, 2.5), 2.0, duration)
        lines.append(NarrationLine(s, e, "thanks for watching see you next time", None, "outro"))
    lines.sort(key=lambda line: (line.start, line.end))
    return lines
