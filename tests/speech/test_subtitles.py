"""Sidecar subtitle files and container subtitle streams become caption lines; bad files are named errors."""
from __future__ import annotations

import pytest

from actbert.speech.subtitles import SubtitleError, find_sidecar, read_sidecar, read_stream_subtitles

YOUTUBE_VTT = """WEBVTT
Kind: captions
Language: en

00:00:00.030 --> 00:00:02.270 align:start position:0%
 
so<00:00:00.359><c> today</c><00:00:00.810><c> we're</c><00:00:01.079><c> going</c><00:00:01.260><c> to</c>

00:00:02.270 --> 00:00:02.280 align:start position:0%
so today we're going to
 

00:00:02.280 --> 00:00:04.610 align:start position:0%
so today we're going to
make<00:00:02.790><c> a</c><00:00:02.970><c> cake</c>
"""


def test_srt_sidecar_is_found_and_read(tmp_path):
    video = tmp_path / "talk.mp4"
    video.write_bytes(b"")
    (tmp_path / "talk.srt").write_text("1\n00:00:01,500 --> 00:00:03,000\nnow <b>slice</b> the\ntomato\n\n"
                                       "2\n00:00:03,200 --> 00:00:04,000\npour the oil\n")
    side = find_sidecar(video)
    assert side == tmp_path / "talk.srt"
    lines = read_sidecar(side)
    assert [(ln.start, ln.end, ln.text) for ln in lines] == [(1.5, 3.0, "now slice the tomato"),
                                                              (3.2, 4.0, "pour the oil")]


def test_language_tagged_vtt_prefers_english(tmp_path):
    video = tmp_path / "v1.mkv"
    for name in ("v1.de.vtt", "v1.en.vtt"):
        (tmp_path / name).write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhello\n")
    assert find_sidecar(video).name == "v1.en.vtt"
    assert find_sidecar(tmp_path / "other.mp4") is None


def test_youtube_rolling_vtt_keeps_each_word_once_with_its_time(tmp_path):
    path = tmp_path / "yt.en.vtt"
    path.write_text(YOUTUBE_VTT)
    lines = read_sidecar(path)
    assert " ".join(ln.text for ln in lines) == "so today we're going to make a cake"
    words = [w for ln in lines for w in ln.words]
    assert [(w.text, w.start) for w in words][:3] == [("so", 0.03), ("today", 0.359), ("we're", 0.81)]
    assert words[-1].text == "cake" and words[-1].start == pytest.approx(2.97) and words[-1].end == pytest.approx(4.61)
    assert all(w.confidence is None for w in words)


@pytest.mark.parametrize("name,content", [("bad.srt", "1\n00:00:01,000 --> garbage\nhello\n"),
                                          ("bad.vtt", "WEBVTT\n\nno timing line here\n"),
                                          ("bin.srt", b"\xff\xfe\x00garbage\x00\x01")])
def test_malformed_or_unreadable_file_is_a_named_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(SubtitleError) as err:
        read_sidecar(path)
    assert str(path) in str(err.value)


def test_subtitle_stream_in_container(media):
    lines = read_stream_subtitles(media["stream_subs"])
    assert [(round(ln.start, 3), round(ln.end, 3), ln.text) for ln in lines] == [
        (0.5, 1.5, "now slice the tomato"), (1.8, 2.9, "pour the oil")]
    assert read_stream_subtitles(media["speech"]) is None
