"""Speech recognizers: offline pocketsphinx (the default) and a local Whisper model.

Both first cut the audio into utterances with pocketsphinx's voice-activity segmenter (WebRTC-style VAD),
so silence costs nothing and each utterance becomes one caption line, as YouTube's ASR lines are; an
utterance longer than ``max_line_seconds`` is split between words.

* :class:`PocketSphinxRecognizer`: CMU pocketsphinx 5 with the US-English acoustic model, dictionary and
  language model its wheel ships (nothing is downloaded). Word times come from the decoder's alignment,
  word confidences from its lattice posteriors (``bestpath``). ``domain`` swaps the general language
  model for one built from the user's text (:mod:`actbert.speech.lm`).
* :class:`WhisperRecognizer`: a Hugging Face ``transformers`` Whisper model from a local folder, loaded
  with ``local_files_only`` (it never downloads). Word confidence is the mean probability of the word's
  tokens; word times are spread over the utterance by character count (Whisper's own word timestamps
  need cross-attention alignment heads, which a fine-tuned or random checkpoint may not define).
"""
from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np

from actbert.speech.audio import SAMPLE_RATE, Audio
from actbert.speech.result import Line, Word

log = logging.getLogger(__name__)

__all__ = ["Recognizer", "PocketSphinxRecognizer", "WhisperRecognizer", "speech_segments", "split_line"]


def speech_segments(audio: Audio, max_seconds: float | None = None) -> list[tuple[float, np.ndarray]]:
    """(start seconds, samples) of each voiced stretch; stretches over ``max_seconds`` are cut evenly."""
    from pocketsphinx import Segmenter

    out = []
    for seg in Segmenter(sample_rate=SAMPLE_RATE).segment(io.BytesIO(audio.samples.tobytes())):
        pcm = np.frombuffer(seg.pcm, np.int16)
        start = max(0.0, float(seg.start_time))
        if max_seconds and len(pcm) > max_seconds * SAMPLE_RATE:
            n = int(np.ceil(len(pcm) / (max_seconds * SAMPLE_RATE)))
            for k, piece in enumerate(np.array_split(pcm, n)):
                out.append((start + k * len(pcm) / n / SAMPLE_RATE, piece))
        else:
            out.append((start, pcm))
    return out


def split_line(words: list[Word], max_seconds: float) -> list[Line]:
    """Caption lines of at most ``max_seconds`` (a single longer word stays whole), cut between words."""
    lines, current = [], []
    for w in words:
        if current and w.end - current[0].start > max_seconds:
            lines.append(current)
            current = []
        current.append(w)
    if current:
        lines.append(current)
    return [Line(ws[0].start, ws[-1].end, " ".join(w.text for w in ws), tuple(ws)) for ws in lines]


class Recognizer:
    """``transcribe(audio) -> lines``; ``name`` goes into the captions' ``source``."""

    name = "recognizer"
    max_line_seconds = 8.0

    def transcribe(self, audio: Audio) -> list[Line]:
        words: list[Word] = []
        for start, pcm in speech_segments(audio, self.segment_limit):
            words.extend(Word(w.text, w.start + start + audio.offset, w.end + start + audio.offset, w.confidence)
                         for w in self.recognize(pcm))
        return split_line(words, self.max_line_seconds)

    segment_limit: float | None = None

    def recognize(self, pcm: np.ndarray) -> list[Word]:
        """Words of one utterance, times relative to its start."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {"recognizer": self.name}


class PocketSphinxRecognizer(Recognizer):
    """pocketsphinx with the bundled US-English model; ``domain`` = a :class:`DomainModel`."""

    name = "pocketsphinx"
    FRAME_RATE = 100  # pocketsphinx frames per second (10 ms)

    def __init__(self, domain=None, **decoder_options):
        from pocketsphinx import Decoder

        options = {"samprate": SAMPLE_RATE, "loglevel": "FATAL", "bestpath": True, **decoder_options}
        if domain is not None:
            options.update(lm=str(domain.lm), dict=str(domain.dict))
            self.name = "pocketsphinx+domain"
        self.domain = domain
        self.decoder = Decoder(**options)

    def recognize(self, pcm: np.ndarray) -> list[Word]:
        d = self.decoder
        d.start_utt()
        d.process_raw(pcm.tobytes(), full_utt=True)
        d.end_utt()
        if d.hyp() is None:
            return []
        words = []
        for seg in d.seg():
            text = seg.word.split("(", 1)[0]  # "the(2)" is the dictionary's second pronunciation of "the"
            if text.startswith(("<", "[", "++")) or not text:  # <s>, </s>, <sil>, [NOISE], ++fillers++
                continue
            words.append(Word(text, seg.start_frame / self.FRAME_RATE, (seg.end_frame + 1) / self.FRAME_RATE,
                              float(min(1.0, max(0.0, seg.prob)))))
        return words

    def describe(self) -> dict:
        out = {"recognizer": self.name}
        if self.domain is not None:
            out.update(domain_words=self.domain.words, domain_sentences=self.domain.sentences,
                       domain_oov=dict(self.domain.oov.most_common(20)))
        return out


class WhisperRecognizer(Recognizer):
    """A local Whisper checkpoint folder (``save_pretrained`` of a model and its processor)."""

    name = "whisper"
    segment_limit = 30.0  # Whisper's encoder sees 30 s windows

    def __init__(self, model_dir: str | Path, device: str = "cpu", max_new_tokens: int = 96,
                 language: str | None = None):
        import torch
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{model_dir}: not a Whisper model folder (no config.json); give a local folder "
                                    f"written by save_pretrained (this command never downloads)")
        self.processor = WhisperProcessor.from_pretrained(model_dir, local_files_only=True)
        self.model = WhisperForConditionalGeneration.from_pretrained(model_dir, local_files_only=True).to(device).eval()
        # prompt tokens + new tokens must fit the decoder's positions (448 in OpenAI's checkpoints)
        limit = getattr(self.model.config, "max_target_positions", 448) - 8
        self.device, self.max_new_tokens, self.language = device, max(1, min(max_new_tokens, limit)), language
        self.name = f"whisper:{model_dir.name}"
        self._torch = torch

    def recognize(self, pcm: np.ndarray) -> list[Word]:
        torch = self._torch
        feats = self.processor.feature_extractor(pcm.astype(np.float32) / 32768.0, sampling_rate=SAMPLE_RATE,
                                                 return_tensors="pt").input_features.to(self.device)
        kwargs = {"language": self.language} if self.language else {}
        with torch.no_grad():
            out = self.model.generate(feats, max_new_tokens=self.max_new_tokens, return_dict_in_generate=True,
                                      output_scores=True, **kwargs)
        tokens = out.sequences[0, -len(out.scores):].tolist() if out.scores else []
        probs = [float(torch.softmax(s[0].float(), -1)[t]) for s, t in zip(out.scores, tokens)]
        tok = self.processor.tokenizer
        special = set(tok.all_special_ids)
        words: list[tuple[str, list[float]]] = []
        for t, p in zip(tokens, probs):
            if t in special:
                continue
            piece = tok.decode([t])
            if not piece.strip() or (piece.startswith("<|") and piece.endswith("|>")):  # unregistered control token
                continue
            if piece[:1].isspace() or not words:
                words.append((piece.strip(), [p]))
            else:
                words[-1] = (words[-1][0] + piece.strip(), words[-1][1] + [p])
        seconds = len(pcm) / SAMPLE_RATE
        chars = sum(len(w) for w, _ in words) or 1
        out_words, t = [], 0.0
        for w, ps in words:
            dt = seconds * len(w) / chars
            out_words.append(Word(w, t, t + dt, float(np.mean(ps))))
            t += dt
        return out_words
