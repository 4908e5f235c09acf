"""The side-by-side benchmark feeds PaddleVideo's step our batch in its layout and checks it is the same model."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from actbert.bench.peer_paddle import WORKER, PeerSetupError, main, peer_inputs, shape_mismatches, venv_python
from actbert.bench.train_step import masked_batch
from actbert.interop.paddlevideo import config_from_yaml
from actbert.interop.safe_pickle import load_numpy_pickle
from actbert.model import get_preset
from actbert.model.losses import IGNORE

REPO = Path(__file__).resolve().parents[2]


def test_peer_inputs_follow_paddlevideos_layout_and_conventions():
    config = get_preset("tiny")
    batch = masked_batch(config, 4)
    x = peer_inputs(batch)
    n, a = config.max_regions, config.max_actions
    assert x["image_feat"].shape == (4, n + 1, config.region_feat_dim) and x["image_loc"].shape == (4, n + 1, 5)
    assert x["image_mask"].shape == (4, n + 1) and (x["image_mask"][:, 0] == 1).all()  # the global token is real
    assert x["image_label"].shape == (4, n) and x["image_target"].shape == (4, n, config.num_region_classes)
    real = batch["region_mask"][1].bool()
    if real.any():  # the global feature is the mean of the real regions, as our embedding computes it
        np.testing.assert_allclose(x["image_feat"][1, 0], batch["region_feats"][1][real].mean(0).numpy(), rtol=1e-5)
    # PaddleVideo ignores label -1 (ours: -100) and calls index 0 "matched" (ours: 1)
    assert ((x["text_labels"] == -1) == (batch["mlm_labels"] == IGNORE).numpy()).all()
    assert ((x["action_label"] == -1) == (batch["action_target"] == IGNORE).numpy()).all() and x["action_label"].shape == (4, a)
    assert (x["next_sentence_label"] == 1 - batch["match_labels"].numpy()).all()


def test_shape_check_accepts_the_same_model_and_names_a_different_one(shared_data):
    golden = shared_data / "paddlevideo-actbert"
    shapes = {k: list(v.shape) for k, v in load_numpy_pickle(golden / "model.pdparams").items() if hasattr(v, "shape")}
    assert shape_mismatches(shapes, config_from_yaml(golden / "backbone.yaml")) == []
    problems = shape_mismatches(shapes)  # the small golden model is not the full-size paddlevideo preset
    assert problems and any("bert.embeddings.word_embeddings.weight" in p for p in problems)
    del shapes["bert.t_pooler.dense.weight"]
    assert any("missing in the peer" in p for p in shape_mismatches(shapes, config_from_yaml(golden / "backbone.yaml")))


def test_missing_peer_venv_is_one_line_naming_it(tmp_path, capsys):
    from actbert.cli.main import main as cli

    assert cli(["bench", "peer-paddle", "--venv", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nowhere" in err and "--setup" in err
    with pytest.raises(PeerSetupError, match="nowhere"):  # the module itself raises; the CLI reports
        main(["--venv", str(tmp_path / "nowhere")])


def test_ab_environment_assignments_are_checked():
    from actbert.bench.train_step_ab import _env
    from actbert.errors import ConfigError

    env = _env(["ACTBERT_ONEDNN_LINEAR=0", "X=a=b"], 1)
    assert env["ACTBERT_ONEDNN_LINEAR"] == "0" and env["X"] == "a=b" and env["OMP_NUM_THREADS"] == "1"
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        _env(["NOEQUALS"], 1)


def test_peer_worker_trains_paddlevideos_model_when_the_peer_venv_exists(shared_data, tmp_path):
    venv = Path(os.environ.get("ACTBERT_PEER_VENV", REPO / ".venv-paddle"))
    if not venv_python(venv).exists():
        pytest.skip(f"no peer virtualenv at {venv} (Paddle is not a dependency; `actbert bench peer-paddle --setup`)")
    golden = shared_data / "paddlevideo-actbert"
    config = config_from_yaml(golden / "backbone.yaml")
    np.savez(tmp_path / "batch.npz", **peer_inputs(masked_batch(config, 2)))
    backbone = {k: v for k, v in yaml.safe_load((golden / "backbone.yaml").read_text())["MODEL"]["backbone"].items() if k != "name"}
    out = subprocess.run(
        [str(venv_python(venv)), str(WORKER), "--batch-file", str(tmp_path / "batch.npz"), "--threads", "1",
         "--warmup", "1", "--backbone-args", json.dumps(backbone)],
        input="run 1\nquit\n", capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    ready, timed = (json.loads(line) for line in out.stdout.splitlines() if line.startswith("{"))
    assert ready["framework"].startswith("paddle") and shape_mismatches(ready["shapes"], config) == []
    with torch.device("meta"):  # value_av is the one peer tensor the converter drops (never read)
        from actbert.model import ActBERTForPretraining

        ours = sum(p.numel() for p in ActBERTForPretraining(config).parameters())
    dropped = sum(int(np.prod(s)) for k, s in ready["shapes"].items() if "value_av" in k)
    assert ready["params"] - dropped == ours
    assert len(timed["step_s"]) == 1 and timed["step_s"][0] > 0 and timed["peak_rss_gib"] > 0
