"""A world that speaks: each video's narration spoken by eSpeak NG into the audio track of a copy of its mp4.

`speak_world(world_dir)` writes ``<world>/spoken/``: ``videos/<vid>.mp4`` (the world's H.264 stream copied
packet for packet, plus an AAC mono track) and ``narration_spoken.json``, the ground truth: HowTo100M-style
lists of the lines as actually spoken (their text, and their spoken start/end times), each with its word
start times from eSpeak's word events, the voice and the rate. It is additive: the world's own files are
never touched, and the folder is rebuilt only when its settings or the world change.

Each video gets one voice and speaking rate drawn from its own seeded stream (`VOICES`, `RATES`), so the
world is not a single voice. Lines are spoken in order of their written start; the world's rolling
captions overlap in time, so a line that would start while the previous one is still being spoken waits
for it (plus a short pause). A line that would end after the video is left out and counted.
"""
from __future__ import annotations

import fractions
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from actbert.speech.tts import VOICES, sample_rate, speak
from actbert.utils import atomic_write_json
from actbert.world.world import load_world

__all__ = ["RATES", "SpokenWorld", "speak_world", "SPOKEN_DIR"]

RATES = (140, 160, 180)   # words per minute
PAUSE = 0.15              # seconds between two lines that would overlap
SPOKEN_DIR = "spoken"
SPEECH_VERSION = 1


@dataclass(frozen=True)
class SpokenWorld:
    root: Path                # <world>/spoken
    videos: int
    lines_spoken: int
    lines_dropped: int        # would have ended after their video
    seconds_of_speech: float
    reused: bool

    def video_path(self, video_id: str) -> Path:
        return self.root / "videos" / f"{video_id}.mp4"

    @property
    def ground_truth(self) -> Path:
        return self.root / "narration_spoken.json"


def _settings(world_json: dict) -> dict:
    return {"version": SPEECH_VERSION, "voices": list(VOICES), "rates": list(RATES), "pause": PAUSE,
            "world_seed": world_json["seed"], "world_config": world_json["config"]}


def _voice_for(video_id: str, seed: int) -> tuple[str, int]:
    h = int.from_bytes(hashlib.sha1(f"{seed}:{video_id}:voice".encode()).digest()[:8], "big")
    return VOICES[h % len(VOICES)], RATES[(h // len(VOICES)) % len(RATES)]


def speak_world(world_dir: str | Path, progress: bool = True) -> SpokenWorld:
    """Speak the narration of every video of the world at ``world_dir`` (see the module doc)."""
    world_dir = Path(world_dir)
    world = load_world(world_dir)
    world_json = json.loads((world_dir / "world.json").read_text(encoding="utf-8"))
    out = world_dir / SPOKEN_DIR
    settings = _settings(world_json)
    manifest = out / "speech.json"
    if manifest.is_file():
        saved = json.loads(manifest.read_text(encoding="utf-8"))
        if saved.get("settings") == settings and all((out / "videos" / f"{v}.mp4").is_file() for v in world.videos):
            return SpokenWorld(out, **saved["summary"], reused=True)
    tmp = world_dir / f".{SPOKEN_DIR}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "videos").mkdir(parents=True)
    truth, spoken, dropped, speech_s = {}, 0, 0, 0.0
    try:
        for vid in tqdm(sorted(world.videos), desc="world: speak narration", unit="video", disable=not progress):
            v = world.videos[vid]
            voice, rate = _voice_for(vid, world.seed)
            track, lines = _narration_track(v.narration, v.duration, voice, rate)
            spoken += len(lines)
            dropped += len(v.narration) - len(lines)
            speech_s += sum(e - s for s, e, *_ in lines)
            _mux(world.video_path(vid), tmp / "videos" / f"{vid}.mp4", track)
            truth[vid] = {"start": [round(s, 3) for s, *_ in lines], "end": [round(e, 3) for _, e, *_ in lines],
                          "text": [t for *_, t, _ in lines],
                          "words": [[[w, round(t, 3)] for w, t in ws] for *_, ws in lines],
                          "voice": voice, "rate": rate}
        atomic_write_json(tmp / "narration_spoken.json", truth)
        summary = {"videos": len(truth), "lines_spoken": spoken, "lines_dropped": dropped,
                   "seconds_of_speech": round(speech_s, 2)}
        atomic_write_json(tmp / "speech.json", {"settings": settings, "summary": summary})  # last: marks complete
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SpokenWorld(out, **summary, reused=False)


def _narration_track(narration, duration: float, voice: str, rate: int):
    """(int16 samples for the whole video, [(start, end, text, [(word, time)])] of the lines spoken)."""
    sr = sample_rate()
    track = np.zeros(int(round(duration * sr)), np.int16)
    lines, free_at = [], 0.0
    for line in sorted(narration, key=lambda n: n.start):
        speech = speak(line.text, voice, rate)
        start = max(line.start, free_at + PAUSE if lines else line.start)
        end = start + len(speech.samples) / sr
        if end > duration:
            continue
        i = int(round(start * sr))
        track[i:i + len(speech.samples)] = speech.samples[:len(track) - i]
        lines.append((start, end, line.text, [(w, start + t) for w, t in speech.words]))
        free_at = end
    return track, lines


def _mux(video_in: Path, video_out: Path, track: np.ndarray) -> None:
    """Copy the video stream of ``video_in`` and add ``track`` as AAC mono audio."""
    sr = sample_rate()
    with av.open(str(video_in)) as src, av.open(str(video_out), "w", format="mp4") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        aout = dst.add_stream("aac", rate=sr, layout="mono")
        aout.time_base = fractions.Fraction(1, sr)
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            dst.mux(packet)
        step = 1024 * 8
        for i in range(0, len(track), step):
            frame = av.AudioFrame.from_ndarray(track[None, i:i + step], format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = sr, i, fractions.Fraction(1, sr)
            dst.mux(aout.encode(frame))
        dst.mux(aout.encode(None))


def catalog_text(world_dir: str | Path) -> list[str]:
    """A domain glossary a cook could write without seeing any video: each recipe's title and steps, each
    step also with every synonym of its verb ("slice the tomato", "chop the tomato"). No narration line,
    template or filler is in it, so it is fair vocabulary for recognising every video of the world."""
    catalog = json.loads((Path(world_dir) / "world.json").read_text(encoding="utf-8"))["catalog"]
    synonyms = {v["name"]: [v["name"], *v["synonyms"]] for v in catalog["verbs"]}
    out = []
    for recipe in catalog["recipes"]:
        out.append(f"making {recipe['title']}")
        for step in recipe["steps"]:
            out.append(step["description"])
            rest = step["description"].split(" ", 1)[1] if " " in step["description"] else ""
            out.extend(f"{verb} {rest}".strip() for verb in synonyms.get(step["verb"], [])[1:])
    return list(dict.fromkeys(out))
