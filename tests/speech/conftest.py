"""Small media files made on the spot: speech spoken by eSpeak NG into mp4/mkv audio tracks, silence, a
video without audio, a corrupt file."""
from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np
import pytest

SENTENCES = ["pour the oil into the pan", "now slice the tomato on the board"]


def write_media(path: Path, audio: np.ndarray | None, rate: int, seconds: float = 4.0, video: bool = True,
                subtitles: list[tuple[float, float, str]] | None = None) -> Path:
    """A small file with an optional 8 fps gray video stream, int16 mono ``audio`` (AAC) and a SubRip stream."""
    fmt = "matroska" if path.suffix == ".mkv" else "mp4"
    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream("libx264", rate=8) if video else None
        if vs is not None:
            vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p"
        aus = out.add_stream("aac", rate=rate, layout="mono") if audio is not None else None
        ss = None
        if subtitles:
            ss = out.add_stream("subrip")
            ss.time_base = fractions.Fraction(1, 1000)
            ss.codec_context.subtitle_header = _ASS_HEADER
        if vs is not None:
            for i in range(int(seconds * 8)):
                frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 100 + i % 50, np.uint8), format="rgb24")
                out.mux(vs.encode(frame))
            out.mux(vs.encode(None))
        if aus is not None:
            for i in range(0, len(audio), 4096):
                frame = av.AudioFrame.from_ndarray(audio[None, i:i + 4096], format="s16", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = rate, i, fractions.Fraction(1, rate)
                out.mux(aus.encode(frame))
            out.mux(aus.encode(None))
        for start, end, text in subtitles or []:
            pkt = av.Packet(text.encode())
            pkt.stream, pkt.time_base = ss, ss.time_base
            pkt.pts = pkt.dts = round(start * 1000)
            pkt.duration = round((end - start) * 1000)
            out.mux(pkt)
    return path


_ASS_HEADER = (b"[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize\n"
               b"Style: Default,Arial,16\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, "
               b"MarginV, Effect, Text\n")


def spoken_track(sentences=SENTENCES, gap: float = 1.0) -> tuple[np.ndarray, int, list[tuple[float, float]]]:
    """eSpeak NG speech of each sentence with ``gap`` s of silence around; returns samples, rate, spans."""
    from actbert.speech.tts import sample_rate, speak

    sr = sample_rate()
    pieces, spans, t = [np.zeros(int(gap * sr), np.int16)], [], gap
    for s in sentences:
        sp = speak(s, "en-us", 150).samples
        spans.append((t, t + len(sp) / sr))
        pieces += [sp, np.zeros(int(gap * sr), np.int16)]
        t += len(sp) / sr + gap
    return np.concatenate(pieces), sr, spans


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    speech, sr, spans = spoken_track()
    seconds = len(speech) / sr
    files = {
        "speech": write_media(d / "speech.mp4", speech, sr, seconds),
        "silent": write_media(d / "silent.mp4", np.zeros(int(3 * sr), np.int16), sr, 3.0),
        "no_audio": write_media(d / "no_audio.mp4", None, sr, 2.0),
        "stream_subs": write_media(d / "stream_subs.mkv", None, sr, 3.0,
                                   subtitles=[(0.5, 1.5, "now slice the tomato"), (1.8, 2.9, "<i>pour</i> the oil")]),
    }
    (d / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    files["corrupt"] = d / "corrupt.mp4"
    files["spans"] = spans  # type: ignore[assignment]
    return files


@pytest.fixture(scope="session")
def domain_text() -> list[str]:
    return SENTENCES + ["cut the tomato", "add the egg to the bowl", "pour the milk into the cup"]
