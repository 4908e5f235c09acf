"""`actbert pretrain` through the real data layer: store -> NarratedCorpus -> PretrainCollator -> pretrain()."""
from __future__ import annotations

import json

import numpy as np
import pytest

from actbert.cli.main import main

VERBS = ["cut", "add", "mix", "pour"]
WORDS = "cut the onion add salt mix the flour pour the batter into a pan slowly".split()


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory):
    from actbert.bench.store import make_synthetic_video
    from actbert.data.store import StoreWriter
    from actbert.data.vocab import ActionVocab

    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    caps = {}
    with StoreWriter(root / "store", shard_videos=4) as w:
        for i in range(12):
            vid = f"v{i:03d}"
            w.add(make_synthetic_video(vid, rng, num_clips=10, num_frames=10, boxes=4, action_dim=16, region_dim=24,
                                       num_classes=7))
            starts = np.arange(0.0, 17.5, 2.5)
            caps[vid] = {"start": starts.tolist(), "end": (starts + 2.5).tolist(),
                         "text": [" ".join(rng.choice(WORDS, 6)) for _ in starts]}
    (root / "captions.json").write_text(json.dumps(caps))
    ActionVocab(VERBS, {v: 10 for v in VERBS}).save(root / "vocab.json")
    return root


def _args(root, out, *extra):
    return ["pretrain", "--store", str(root / "store"), "--captions", str(root / "captions.json"),
            "--vocab", str(root / "vocab.json"), "--preset", "tiny", "--out", str(out), "--batch-size", "4",
            "--eval-every", "0", "--eval-batches", "1", "--eval-retrieval", "4", "--val-fraction", "0.3",
            "--tokenizer-vocab-size", "120", "--device", "cpu", "--threads", "1", "--no-progress", *extra]


def test_cli_trains_and_resumes(corpus_files, tmp_path):
    out = tmp_path / "run"
    assert main(_args(corpus_files, out, "--steps", "2", "--save-every", "2")) == 0
    for name in ("vocab.txt", "config.json", "train_config.json", "metrics.jsonl", "curves.png", "summary.json",
                 "model/model.safetensors", "checkpoints/step-00000002/trainer.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and "eval_t2v_R1" in summary and "eval_match_acc" in summary
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["action_feat_dim"], cfg["region_feat_dim"], cfg["num_region_classes"], cfg["num_action_classes"]) == \
        (16, 24, 7, 4)
    # resume with more steps: the run's own vocab.txt is reused
    assert main(_args(corpus_files, out, "--steps", "3", "--save-every", "2", "--resume")) == 0
    assert json.loads((out / "summary.json").read_text())["steps"] == 3


def test_cli_bad_inputs(corpus_files, tmp_path, capsys):
    bad_store = _args(corpus_files, tmp_path / "a", "--steps", "1")
    bad_store[bad_store.index("--store") + 1] = str(tmp_path / "nowhere")
    assert main(bad_store) == 2
    err = capsys.readouterr().err
    assert "feature store" in err and "nowhere" in err
    bad_caps = _args(corpus_files, tmp_path / "b", "--steps", "1")
    bad_caps[bad_caps.index("--captions") + 1] = str(tmp_path / "none.json")
    assert main(bad_caps) == 2
    assert "caption file" in capsys.readouterr().err
    (tmp_path / "other.json").write_text(json.dumps({"zzz": {"start": [0], "end": [3], "text": ["cut it"]}}))
    empty = _args(corpus_files, tmp_path / "c", "--steps", "1")
    empty[empty.index("--captions") + 1] = str(tmp_path / "other.json")
    assert main(empty) == 2
    assert "training corpus is empty" in capsys.readouterr().err
    assert main(_args(corpus_files, tmp_path / "d", "--steps", "1", "--loss-weights", "mlm=1,foo=2")) == 2
    assert "bad loss weight 'foo=2'" in capsys.readouterr().err


def test_cli_help_explains_every_flag(capsys):
    import argparse

    from actbert.cli import pretrain as cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    for action in parser._actions:
        assert action.help, action.dest
    with pytest.raises(SystemExit) as exc:
        main(["pretrain", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "torchrun --nproc_per_node" in text and "--resume" in text and "--loss-weights" in text


def test_cli_init_text_from_bert(corpus_files, tmp_path, minilm_dir):
    out = tmp_path / "bert"
    assert main(_args(corpus_files, out, "--steps", "1", "--init-text", str(minilm_dir), "--eval-retrieval", "0")) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["vocab_size"] == 30522 and cfg["text_hidden"] == 384
    assert (out / "vocab.txt").read_text().splitlines()[:1] == ["[PAD]"]
