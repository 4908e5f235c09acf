"""The world that speaks: narration spoken into a copy of each mp4, with the spoken lines as ground truth."""
from __future__ import annotations

import json

import av
import pytest

from actbert.speech.audio import read_audio
from actbert.world.speech import catalog_text, speak_world


@pytest.fixture(scope="module")
def spoken(tiny_dir):
    return speak_world(tiny_dir, progress=False)


def test_each_video_gets_its_video_stream_and_a_speech_track(tiny_dir, tiny_world, spoken):
    truth = json.loads(spoken.ground_truth.read_text())
    assert set(truth) == set(tiny_world.videos) and spoken.videos == len(truth)
    assert len({(v["voice"], v["rate"]) for v in truth.values()}) >= 3  # not a single voice
    for vid, v in tiny_world.videos.items():
        with av.open(str(tiny_world.video_path(vid))) as a, av.open(str(spoken.video_path(vid))) as b:
            assert not a.streams.audio and len(b.streams.audio) == 1
            original = [bytes(p) for p in a.demux(a.streams.video[0]) if p.size]
            copied = [bytes(p) for p in b.demux(b.streams.video[0]) if p.size]
            assert copied == original  # the frames are the world's, packet for packet
        t = truth[vid]
        assert all(0 <= s < e <= v.duration for s, e in zip(t["start"], t["end"]))
        assert all(e0 < s1 for e0, s1 in zip(t["end"], t["start"][1:]))  # spoken lines never overlap
        assert set(t["text"]) <= {n.text for n in v.narration}
        audio = read_audio(spoken.video_path(vid))
        assert abs(audio.seconds - v.duration) < 0.2
        for s, e in zip(t["start"], t["end"]):  # speech where the truth says, silence before the first line
            seg = audio.samples[int(s * 16000):int(e * 16000)].astype(float)
            assert (seg ** 2).mean() ** 0.5 > 300
        assert abs(audio.samples[:int(max(0.0, t["start"][0] - 0.1) * 16000)].astype(float)).max(initial=0) < 200
    assert spoken.lines_spoken + spoken.lines_dropped == sum(len(v.narration) for v in tiny_world.videos.values())


def test_rerun_reuses_and_world_files_are_untouched(tiny_dir, spoken):
    world_json = (tiny_dir / "world.json").read_bytes()
    again = speak_world(tiny_dir, progress=False)
    assert again.reused and (tiny_dir / "world.json").read_bytes() == world_json


def test_catalog_text_has_steps_and_synonyms_but_no_narration(tiny_dir, tiny_world):
    text = catalog_text(tiny_dir)
    assert "cut the tomato" in text and "slice the tomato" in text
    words = {w for line in text for w in line.split()}
    assert not words & {"um", "uh", "okay", "alright", "subscribe", "like", "today", "now", "we"}  # no narration style
    said = {n.text for v in tiny_world.videos.values() for n in v.narration}
    assert said - set(text)  # most narration lines are not in the glossary
