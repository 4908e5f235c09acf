"""`transcribe_videos` / `actbert transcribe`: sources in order, recognition with word times and
confidences, bad input as counted skips, resume, shards, and captions the HowTo100M reader accepts."""
from __future__ import annotations

import json
import shutil

import pytest

from actbert.cli.main import main
from actbert.cli.transcribe import build_recognizer
from actbert.data.formats.howto100m import read_captions
from actbert.speech.audio import AudioError, read_audio
from actbert.speech.transcribe import transcribe_videos


@pytest.fixture(scope="module")
def recognizer(domain_text, tmp_path_factory):
    rec = build_recognizer("pocketsphinx", None, domain_text, str(tmp_path_factory.mktemp("lm")))
    return lambda: rec


def test_domain_recognizer_hears_the_spoken_sentences_at_their_times(media, recognizer):
    lines = recognizer().transcribe(read_audio(media["speech"]))
    words = [w for ln in lines for w in ln.words]
    heard = {w.text for w in words}
    # eSpeak's voice is far from pocketsphinx's training speech: most, not all, content words are heard
    assert len({"pour", "oil", "pan", "slice", "tomato", "board"} & heard) >= 4, heard
    spans = media["spans"]
    for w in words:  # every word lies inside (or within 0.3 s of) a spoken sentence
        assert any(s - 0.3 <= w.start and w.end <= e + 0.3 for s, e in spans), w
        assert 0.0 <= w.confidence <= 1.0
    assert [ln.text for ln in lines] == [" ".join(w.text for w in ln.words) for ln in lines]


def test_general_model_fallback_is_offline_and_recognizes_something(media, tmp_path):
    """The default recognizer (no domain text) works from the wheel's own model: no download."""
    rec = build_recognizer("pocketsphinx", None, None, str(tmp_path))
    assert rec.name == "pocketsphinx"
    words = [w.text for ln in rec.transcribe(read_audio(media["speech"])) for w in ln.words]
    assert len(words) >= 4 and {"the"} & set(words)


def test_bad_inputs_are_named_counted_skips_and_the_rest_is_kept(media, recognizer, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for key in ("speech", "silent", "no_audio", "corrupt", "stream_subs"):
        shutil.copy(media[key], videos / media[key].name)
    shutil.copy(media["speech"], videos / "subbed.mp4")
    (videos / "subbed.srt").write_text("1\n00:00:00,500 --> 00:00:02,000\nfrom the sidecar\n")
    shutil.copy(media["speech"], videos / "badsubs.mp4")
    (videos / "badsubs.srt").write_text("1\n00:00:01,000 --> garbage\n")
    out = tmp_path / "captions.json"
    s = transcribe_videos(videos, out, recognizer, progress=False)
    reasons = {vid: reason for vid, _, reason in s.skipped}
    assert sorted(s.done) == ["speech", "stream_subs", "subbed"]
    assert reasons["silent"] == "silent audio: no speech found"
    assert reasons["no_audio"] == "no audio stream"
    assert reasons["corrupt"].startswith("cannot open")
    assert "badsubs.srt" in reasons["badsubs"] and "malformed" in reasons["badsubs"]
    data = json.loads(out.read_text())
    assert data["subbed"]["source"] == "sidecar:subbed.srt" and data["subbed"]["text"] == ["from the sidecar"]
    assert data["stream_subs"]["source"] == "stream"
    assert data["speech"]["source"] == "asr:pocketsphinx+domain"
    caps = read_captions(out)  # the HowTo100M reader takes it as it is
    assert [c.text for c in caps["speech"]] == data["speech"]["text"]
    assert len(data["speech"]["words"]) == len(data["speech"]["text"])
    report = json.loads((tmp_path / "captions.report.json").read_text())
    assert set(report["skipped"]) == {"silent", "no_audio", "corrupt", "badsubs"}
    assert not (tmp_path / "captions.json.journal.jsonl").exists()

    # resume: nothing redone, skips kept (not retried)
    calls = []
    again = transcribe_videos(videos, out, lambda: calls.append(1) or recognizer(), progress=False)
    assert sorted(again.already_done) == sorted(s.done) and not again.done and not calls
    assert {v for v, *_ in again.skipped} == set(reasons)
    assert json.loads(out.read_text()) == data


def test_killed_run_resumes_from_its_journal(media, recognizer, tmp_path):
    videos = [shutil.copy(media["speech"], tmp_path / f"v{i}.mp4") for i in range(2)]
    out = tmp_path / "c.json"
    first = transcribe_videos(videos[:1], out, recognizer, progress=False)
    rec = json.loads(out.read_text())["v0"]
    out.unlink()  # as if killed before the final write: only the journal holds v0 (+ a cut-off line)
    journal = tmp_path / "c.json.journal.jsonl"
    journal.write_text(json.dumps({"settings": {"sources": ["sidecar", "stream", "asr"]}}) + "\n"
                       + json.dumps({"video_id": "v0", "status": "ok", "captions": rec}) + "\n{\"video_id\": \"v1\", \"sta")
    calls = []
    s = transcribe_videos(videos, out, lambda: calls.append(1) or recognizer(), progress=False)
    assert s.already_done == ["v0"] and s.done == ["v1"] and len(calls) == 1 and first.done == ["v0"]
    assert set(json.loads(out.read_text())) == {"v0", "v1"}
    journal.write_text(json.dumps({"settings": {"sources": ["asr"]}}) + "\n")
    with pytest.raises(ValueError, match="other settings"):
        transcribe_videos(videos, out, recognizer, progress=False)


def test_shards_write_parts_and_the_last_one_merges(media, recognizer, tmp_path):
    videos = [shutil.copy(media["stream_subs"], tmp_path / f"clip{i}.mkv") for i in range(6)]
    out = tmp_path / "caps.json"
    summaries = [transcribe_videos(videos, out, recognizer, num_shards=2, shard_index=i, progress=False)
                 for i in range(2)]
    assert [s.merged for s in summaries] == [False, True]
    assert sum(len(s.done) for s in summaries) == 6 and summaries[0].other_shards == len(summaries[1].done)
    assert (tmp_path / "caps.part000of002.json").is_file()
    assert sorted(json.loads(out.read_text())) == [f"clip{i}" for i in range(6)]


def test_audio_errors_name_the_file(media):
    with pytest.raises(AudioError, match="no audio stream") as err:
        read_audio(media["no_audio"])
    assert str(media["no_audio"]) in str(err.value)


def test_cli_single_bad_file_is_one_line_error(media, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["transcribe", str(media["no_audio"]), "--out", str(tmp_path / "c.json"), "--no-progress"])
    assert str(err.value) == f"actbert transcribe: {media['no_audio']}: no audio stream"


def test_cli_writes_captions_and_table(media, tmp_path, capsys):
    vocab = tmp_path / "domain.txt"
    vocab.write_text("pour the oil into the pan\nslice the tomato\n")
    rc = main(["transcribe", str(media["speech"]), "--out", str(tmp_path / "c.json"), "--vocabulary-from", str(vocab),
               "--no-progress"])
    assert rc == 0
    assert "videos transcribed             1" in capsys.readouterr().out
    assert json.loads((tmp_path / "c.json").read_text())["speech"]["source"] == "asr:pocketsphinx+domain"
