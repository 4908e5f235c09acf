"""The Whisper backend's code path on a tiny randomly initialised Whisper saved here (no quality claim:
its words are noise). It loads from the local folder only; HF_HUB_OFFLINE makes any download attempt fail."""
from __future__ import annotations

import json

import pytest

from actbert.cli.main import main


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    import torch
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration,
                              WhisperProcessor, WhisperTokenizer)
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    d = tmp_path_factory.mktemp("whisper") / "tiny-random-whisper"
    d.mkdir()
    special = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}  # byte-level BPE with no merges
    vocab.update({s: len(vocab) + k for k, s in enumerate(special)})
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    eot = vocab["<|endoftext|>"]
    tok = WhisperTokenizer(str(d / "vocab.json"), str(d / "merges.txt"), unk_token="<|endoftext|>",
                           bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                           additional_special_tokens=special[1:])
    torch.manual_seed(0)
    cfg = WhisperConfig(vocab_size=len(vocab), num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                        max_source_positions=1500, max_target_positions=64, pad_token_id=eot, eos_token_id=eot,
                        bos_token_id=eot, decoder_start_token_id=vocab["<|startoftranscript|>"],
                        suppress_tokens=None, begin_suppress_tokens=None)
    model = WhisperForConditionalGeneration(cfg)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=cfg.decoder_start_token_id, eos_token_id=eot, pad_token_id=eot, max_length=64,
        no_timestamps_token_id=vocab["<|notimestamps|>"],
        suppress_tokens=[vocab[s] for s in special[1:]], begin_suppress_tokens=[eot])  # emit byte tokens
    model.save_pretrained(d)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tok).save_pretrained(d)
    return d


def test_whisper_backend_writes_scored_timed_words_from_a_local_folder(tiny_whisper, media, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "c.json"
    rc = main(["transcribe", str(media["speech"]), "--out", str(out), "--recognizer", "whisper",
               "--model", str(tiny_whisper), "--no-progress"])
    assert rc == 0
    rec = json.loads(out.read_text())["speech"]
    assert rec["source"] == "asr:whisper:tiny-random-whisper"
    words = [w for line in rec["words"] for w in line]
    assert words and all(0.0 < w[3] <= 1.0 for w in words)
    assert all("<|" not in w[0] for w in words)
    spans = media["spans"]
    assert spans[0][0] - 0.5 <= words[0][1] and words[-1][2] <= spans[-1][1] + 0.5
    assert [" ".join(w[0] for w in line) for line in rec["words"]] == rec["text"]


def test_whisper_needs_a_local_model_folder(tmp_path, media):
    with pytest.raises(SystemExit, match="needs --model"):
        main(["transcribe", str(media["speech"]), "--out", str(tmp_path / "c.json"), "--recognizer", "whisper"])
    with pytest.raises(SystemExit, match="not a model folder"):
        main(["transcribe", str(media["speech"]), "--out", str(tmp_path / "c.json"), "--recognizer", "whisper",
              "--model", str(tmp_path)])
