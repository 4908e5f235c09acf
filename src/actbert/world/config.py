"""`WorldConfig`: every knob of the synthetic world, with named presets.

The config is saved verbatim in `world.json`; a rerun with the same seed and config reuses the
world on disk instead of regenerating it, so every field must be JSON-serialisable (ints, floats,
strings, tuples of those).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class NarrationConfig:
    """How ASR-like the narration is."""

    synonym_prob: float = 0.4          # a step is narrated with a synonym instead of its canonical verb
    filler_prob: float = 0.5           # a line gets a filler word ("um", "so", "okay") somewhere
    word_error_prob: float = 0.08      # a line gets one ASR word error (replaced or dropped word)
    repeat_prob: float = 0.35          # a step gets a second, overlapping line (YouTube rolling captions)
    chatter_per_minute: float = 4.0    # off-topic lines ("don't forget to subscribe") per minute of video
    intro_prob: float = 0.7            # the video opens with "today we are making <recipe>"
    timing_jitter: float = 1.5         # narration starts up to this many seconds before/after its step
    line_seconds: tuple[float, float] = (2.0, 5.0)  # length of one caption line


@dataclass(frozen=True)
class WorldConfig:
    """Size, timing and appearance of a generated world.

    `height`/`width` must be even (H.264 with yuv420p). Durations are seconds; a video's length is
    drawn in `[min_duration, max_duration]` and its steps and idle gaps are fitted into it.
    """

    num_videos: int = 16
    min_duration: float = 20.0
    max_duration: float = 30.0
    height: int = 112
    width: int = 112
    fps: int = 8
    test_fraction: float = 0.3
    step_seconds: tuple[float, float] = (3.0, 5.0)
    min_idle_seconds: float = 1.0      # >= 1 s so whole-second (YouCook2) segments never overlap
    skip_optional_prob: float = 0.35   # each optional recipe step is left out with this probability
    distractors: tuple[int, int] = (1, 3)  # distractor objects on the shelf, inclusive range
    detection_interval: float = 2.0    # one detection frame every this many seconds of TRAIN videos
    crf: int = 20                      # x264 quality (lower = larger files, fewer artefacts)
    narration: NarrationConfig = field(default_factory=NarrationConfig)

    def __post_init__(self) -> None:
        problems = []
        if self.num_videos < 2:
            problems.append(f"num_videos={self.num_videos} (need >= 2: one train and one test video)")
        if self.height % 2 or self.width % 2 or min(self.height, self.width) < 48:
            problems.append(f"frame size {self.height}x{self.width} (need even sides >= 48 for H.264 yuv420p)")
        if not 0 < self.min_duration <= self.max_duration:
            problems.append(f"durations [{self.min_duration}, {self.max_duration}]")
        if not 0.0 < self.test_fraction < 1.0:
            problems.append(f"test_fraction={self.test_fraction} (must be in (0, 1))")
        if self.fps < 1:
            problems.append(f"fps={self.fps}")
        if not 0 < self.step_seconds[0] <= self.step_seconds[1]:
            problems.append(f"step_seconds={self.step_seconds}")
        if self.min_idle_seconds < 1.0:
            problems.append(f"min_idle_seconds={self.min_idle_seconds} (< 1 s lets whole-second segments overlap)")
        if problems:
            raise ValueError("invalid WorldConfig: " + "; ".join(problems))

    def to_dict(self) -> dict:
        """JSON form (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "WorldConfig":
        """Inverse of `to_dict`; unknown keys are an error so a typo never goes unnoticed."""
        data = dict(data)
        narration = NarrationConfig(**_tuples(data.pop("narration", {})))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown WorldConfig fields: {sorted(unknown)}")
        return cls(narration=narration, **_tuples(data))


def _tuples(data: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


PRESETS: dict[str, WorldConfig] = {
    # test fixture: a handful of short, small videos (seconds to generate)
    "tiny": WorldConfig(num_videos=6, min_duration=14.0, max_duration=18.0, height=64, width=64,
                        step_seconds=(2.5, 3.5)),
    # CI smoke test of the demo
    "quick": WorldConfig(num_videos=16, min_duration=20.0, max_duration=30.0),
    # the demo
    "default": WorldConfig(num_videos=56, min_duration=30.0, max_duration=45.0, step_seconds=(3.5, 6.0)),
}


def get_world_config(name: str, **overrides) -> WorldConfig:
    """A preset by name (`tiny`, `quick`, `default`), optionally with fields replaced."""
    if name not in PRESETS:
        raise KeyError(f"unknown world preset {name!r}; choose from {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)
