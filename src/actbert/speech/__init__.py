"""Narration from the videos themselves: subtitles, or offline speech recognition of the audio track.

`transcribe_videos` (the `actbert transcribe` command) writes HowTo100M-style caption JSON with word
times and confidences; `recognizers` holds pocketsphinx (default, offline) and a local Whisper backend;
`lm` builds a domain language model from user text; `tts` speaks text with eSpeak NG (the speaking
world); `evaluation` measures word error rate and content-word recall.
"""
from actbert.speech.audio import SAMPLE_RATE, Audio, AudioError, read_audio
from actbert.speech.result import Line, VideoTranscript, Word
from actbert.speech.transcribe import SOURCES, TranscribeSummary, transcribe_videos

__all__ = ["SAMPLE_RATE", "Audio", "AudioError", "read_audio", "Line", "Word", "VideoTranscript", "SOURCES",
           "TranscribeSummary", "transcribe_videos"]
