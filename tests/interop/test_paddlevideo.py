"""PaddleVideo parity: a converted model equals PaddleVideo's own outputs, and the LMDB protocol reproduces its
ranks, on golden files made by running PaddleVideo's code (../shared/data/paddlevideo-actbert/README.md)."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from actbert.cli.main import main
from actbert.interop import paddlevideo_msrvtt as P
from actbert.interop.paddlevideo import PaddleConversionError, config_from_yaml, convert_state
from actbert.interop.safe_pickle import load_numpy_pickle
from actbert.model.pretraining import ActBERTForPretraining


@pytest.fixture(scope="module")
def golden(shared_data):
    return shared_data / "paddlevideo-actbert"


@pytest.fixture(scope="module")
def converted(golden, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    assert main(["convert", "paddlevideo", str(golden / "model.pdparams"), "--config", str(golden / "backbone.yaml"),
                 "--out", str(out)]) == 0
    return out


def _paddle_forward(model, golden):
    x = {k: torch.from_numpy(v) for k, v in np.load(golden / "inputs.npz").items()}
    with torch.no_grad():
        enc = model.actbert(dict(
            text_ids=x["text_ids"], text_mask=x["text_mask"], text_segment=x["token_type_ids"],
            action_feats=x["action_feat"], action_mask=x["action_mask"],
            # PaddleVideo's image inputs carry the global token at index 0; ours takes it separately
            region_feats=x["image_feat"][:, 1:], region_loc=x["image_loc"][:, 1:], region_mask=x["image_mask"][:, 1:],
            region_global=x["image_feat"][:, 0]))
        return {
            "prediction_scores_t": model.mlm_head(enc.text_hidden)[:, :12],
            "prediction_scores_v": model.region_head(enc.region_hidden),
            "prediction_scores_a": model.action_head(enc.action_hidden),
            "seq_relationship_score": model.match_logits(enc).flip(-1),  # Paddle: index 0 = matched
        }


def test_converted_model_equals_paddlevideo_outputs(converted, golden):
    model = ActBERTForPretraining.from_pretrained(converted).eval()
    assert model.config.text_stage_layers == [2, 1, 1] and model.config.action_stage_layers == [0, 1, 2]
    ours = _paddle_forward(model, golden)
    reference = np.load(golden / "outputs.npz")
    for name, value in ours.items():
        np.testing.assert_allclose(value.numpy(), reference[name], atol=1e-4, rtol=0, err_msg=name)


def test_paddle_resize_quirk_is_what_paddle_does(converted, golden):
    """Sample 0 has padded action slots. PaddleVideo resizes the contexts over every slot (the preset's
    context_resize_over="all"); over real slots only (our default) sample 0 moves away from Paddle's output,
    by 20x float32 noise in this small random model, while samples 1 and 2 (all slots real) do not move."""
    reference = np.load(golden / "outputs.npz")["prediction_scores_v"]
    error = {}
    for mode in ("all", "real"):
        model = ActBERTForPretraining.from_pretrained(converted, context_resize_over=mode).eval()
        ours = _paddle_forward(model, golden)["prediction_scores_v"].numpy()
        error[mode] = np.abs(ours - reference).reshape(3, -1).max(1)
    noise = error["all"].max()
    assert noise < 2e-6
    assert error["real"][0] > 10 * noise and error["real"][1:].max() <= noise


def test_lmdb_evaluation_reproduces_paddlevideo_ranks(converted, golden, tmp_path):
    expected = json.loads((golden / "msrvtt" / "expected.json").read_text())
    out = tmp_path / "eval"
    assert main(["evaluate", "retrieval", "--model", str(converted), "--format", "paddlevideo-lmdb",
                 "--csv", str(golden / "msrvtt" / "test.csv"), "--features", str(golden / "msrvtt" / "features.lmdb"),
                 "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    metrics = json.loads((out / "results.json").read_text())["metrics"]
    assert metrics["ranks"] == expected["ranks"]
    for key in ("R@1", "R@5", "R@10", "MedR", "MeanR"):
        assert metrics[key] == pytest.approx(expected[key], abs=1e-9), key
    np.testing.assert_allclose(np.load(out / "scores.npy"), np.array(expected["score_matrix"]), atol=1e-5)


def test_paddle_metric_definitions_by_hand():
    m = P.paddle_metrics(np.array([0, 4, 9, 20]))
    assert m == {"R@1": 25.0, "R@5": 50.0, "R@10": 75.0, "MedR": 7.0, "MeanR": 9.25}  # median 6.5 -> floor(7.5)
    rows = [("a", "x"), ("b", "y"), ("a", "z")]  # video a listed twice: the first entry is the target
    scores = np.array([[0.1, 0.9, 0.5], [0.2, 0.3, 0.1], [0.0, 0.1, 0.9]], dtype=np.float32)
    assert P.paddle_ranks(scores, rows).tolist() == [2, 0, 2]


# --- bad input -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def paddle_state(golden):
    return load_numpy_pickle(golden / "model.pdparams")


def test_missing_extra_and_misshaped_tensors_are_named(golden, paddle_state):
    config = config_from_yaml(golden / "backbone.yaml")
    state = dict(paddle_state)
    del state["bert.t_pooler.dense.bias"]
    with pytest.raises(PaddleConversionError, match=r"missing 1 tensors.*t_pooler\.dense\.bias"):
        convert_state(state, config, "m.pdparams")
    state = {**paddle_state, "bert.encoder.layer.9.output.dense.bias": np.zeros(32, np.float32)}
    with pytest.raises(PaddleConversionError, match=r"no place for.*layer\.9"):
        convert_state(state, config, "m.pdparams")
    with pytest.raises(PaddleConversionError, match=r"actionPredictions\.decoder\.weight.*set a_target_size"):
        convert_state(paddle_state, config.replace(num_action_classes=401), "m.pdparams")
    state = {**paddle_state, "cls.predictions.decoder_weight": paddle_state["cls.predictions.decoder_weight"] + 1}
    with pytest.raises(PaddleConversionError, match="ties them"):
        convert_state(state, config, "m.pdparams")


class _Payload:
    """What a malicious pickle would do: a side effect at load time."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_cli_refuses_a_code_carrying_pdparams_and_runs_nothing(golden, tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pdparams"
    evil.write_bytes(pickle.dumps({"bert.embeddings.word_embeddings.weight": _Payload(str(marker))}))
    rc = main(["convert", "paddlevideo", str(evil), "--config", str(golden / "backbone.yaml"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and not marker.exists() and not (tmp_path / "o").exists()
    assert err.count("\n") == 0 and str(evil) in err and "io.open" in err, err


def test_cli_names_a_yaml_without_backbone(tmp_path, golden, capsys):
    bad = tmp_path / "b.yaml"
    bad.write_text("MODEL:\n  framework: ActBert\n")
    assert main(["convert", "paddlevideo", str(golden / "model.pdparams"), "--config", str(bad), "--out",
                 str(tmp_path / "o")]) == 2
    assert "no MODEL.backbone" in capsys.readouterr().err


def _write_lmdb(path, entries):
    import lmdb

    env = lmdb.open(str(path), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for key, value in entries.items():
            txn.put(key.encode(), value)
    env.close()


def test_lmdb_errors_name_the_file_and_the_video(tmp_path):
    good = {"video_id": "v1", "image_h": 10, "image_w": 20, "features": np.ones(2 * 8, np.float32),
            "boxes": np.array([0, 0, 10, 5, 5, 5, 20, 10], np.float32), "action_features": np.ones(8, np.float32)}
    _write_lmdb(tmp_path / "f.lmdb", {"v1": pickle.dumps(good), "v2": pickle.dumps([1, 2]),
                                      "v3": pickle.dumps({**good, "action_features": np.ones(6 * 8, np.float32)}),
                                      "v4": pickle.dumps(_Payload(str(tmp_path / "pwned")))})
    db = P.PaddleFeatureLMDB(tmp_path / "f.lmdb", region_dim=8, action_dim=8)
    v1 = db.inputs("v1")
    np.testing.assert_allclose(v1.region_loc[:2], [[0, 0, 0.5, 0.5, 0.25], [0.25, 0.5, 1, 1, 0.375]])
    assert v1.region_mask.sum() == 2 and v1.region_feats.shape == (35, 8) and v1.action_feats.shape == (5, 8)
    with pytest.raises(P.PaddleDataError, match=r"f\.lmdb.*no entry for video 'v9'"):
        db.inputs("v9")
    with pytest.raises(P.PaddleDataError, match=r"f\.lmdb\[v2\].*not PaddleVideo's feature dict"):
        db.inputs("v2")
    with pytest.raises(P.PaddleDataError, match=r"f\.lmdb\[v3\].*6 action clips"):
        db.inputs("v3")
    with pytest.raises(ValueError, match=r"f\.lmdb\[v4\].*refused.*io\.open"):
        db.inputs("v4")
    assert not (tmp_path / "pwned").exists()


def test_csv_errors_name_the_line(tmp_path):
    bad = tmp_path / "t.csv"
    bad.write_text("video1,a man cooks\nvideo2 no comma here\n")
    with pytest.raises(P.PaddleDataError, match=r"t\.csv:2: expected 'video_id,caption'"):
        P.read_paddle_csv(bad)
