"""Region detector: extraction contract, weights loading, save/load, COCO reading, AP, training, CLI."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from actbert.video.detector import (RegionExtractor, box_location5, build_detector, load_region_extractor,
                                    save_region_extractor, torchvision_weights_path)
from actbert.video.detector_coco import average_precision, evaluate_detections, make_shapes_coco, read_coco

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes_coco(tmp_path_factory.mktemp("shapes") / "set", num_images=200, seed=1)


@pytest.fixture(scope="module")
def trained(shapes, tmp_path_factory):
    """Tiny detector trained briefly on 160 synthetic frames (40 held out); shared by several tests."""
    from actbert.video.detector_train import train_detector

    out = tmp_path_factory.mktemp("trained")
    # 5 epochs x 20 steps: about 15 CPU-seconds; the time cap only guards against a stalled machine.
    return train_detector(shapes, out, backbone="tiny", epochs=5, batch_size=8, val_fraction=0.2, seed=0,
                          progress=False, max_seconds=45)


@pytest.fixture
def frames():
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (112, 112, 3), dtype=np.uint8) for _ in range(3)]
    imgs.append(rng.integers(0, 255, (96, 144, 3), dtype=np.uint8))  # another size in the same batch
    return imgs


def test_average_precision_hand_computed():
    # 3 ground-truth boxes; detections by score: TP, FP, TP, FP.
    # precision 1, 1/2, 2/3, 1/2 at recall 1/3, 1/3, 2/3, 2/3; envelope: 1 on (0, 1/3], 2/3 on (1/3, 2/3].
    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0], 3) == pytest.approx(1 / 3 + (1 / 3) * (2 / 3))
    assert average_precision([0.6, 0.9], [1, 1], 2) == pytest.approx(1.0)
    assert average_precision([], [], 2) == 0.0
    assert math.isnan(average_precision([0.5], [0], 0))


def test_evaluate_detections_matching(shapes):
    data = read_coco(shapes)
    gt = [im for im in data.images if len(im.boxes)][:5]
    perfect = [{"boxes": g.boxes, "labels": g.labels, "scores": np.ones(len(g.boxes))} for g in gt]
    assert evaluate_detections(perfect, gt, data.class_names)["map50"] == pytest.approx(1.0)
    # every box also reported shifted by 30 px with a *higher* score: those are false positives ranked
    # first, so precision (and AP) drops, while recall stays 1.
    shifted = [{"boxes": np.concatenate([g.boxes + 30, g.boxes]), "labels": np.concatenate([g.labels, g.labels]),
                "scores": np.concatenate([np.ones(len(g.boxes)), np.full(len(g.boxes), 0.5)])} for g in gt]
    res = evaluate_detections(shifted, gt, data.class_names)
    assert 0.3 < res["map50"] < 1.0
    assert all(r == 1.0 for r in res["recall_per_class"].values() if not math.isnan(r))


def test_box_location5():
    boxes = np.array([[10, 20, 50, 60], [0, 0, 200, 100], [-5, 90, 20, 130]], np.float32)
    loc = box_location5(boxes, (100, 200))  # H=100, W=200
    assert loc.shape == (3, 5) and loc.dtype == np.float32
    assert np.all((loc >= 0) & (loc <= 1))
    np.testing.assert_allclose(loc[0], [0.05, 0.2, 0.25, 0.6, 0.2 * 0.4], rtol=1e-6)
    np.testing.assert_allclose(loc[1], [0, 0, 1, 1, 1])
    np.testing.assert_allclose(loc[:, 4], (loc[:, 2] - loc[:, 0]) * (loc[:, 3] - loc[:, 1]), rtol=1e-6)
    assert box_location5(np.zeros((0, 4)), (10, 10)).shape == (0, 5)


def test_extract_contract_random_weights(frames):
    torch.manual_seed(0)
    ex = RegionExtractor(build_detector("tiny", 4), top_k=5, backbone="tiny", batch_size=3)
    out = ex.extract(frames)
    assert len(out) == len(frames) and ex.top_k == 5 and ex.num_classes == 4 and len(ex.class_names) == 4
    for img, r in zip(frames, out):
        k = len(r.scores)
        assert 1 <= k <= 5
        assert r.boxes.shape == (k, 4) and r.features.shape == (k, ex.feature_dim) and r.class_probs.shape == (k, 4)
        assert all(a.dtype == np.float32 for a in (r.boxes, r.features, r.class_probs, r.scores))
        np.testing.assert_allclose(r.class_probs.sum(1), 1.0, atol=1e-5)
        h, w = img.shape[:2]
        assert np.all(r.boxes[:, [0, 2]] <= w) and np.all(r.boxes[:, [1, 3]] <= h) and np.all(r.boxes >= 0)
        assert np.all(np.diff(r.scores) <= 1e-6)


def test_extract_empty_and_bad_input(frames):
    ex = RegionExtractor(build_detector("tiny", 3), top_k=4, score_thresh=0.999, backbone="tiny")
    black = np.zeros((112, 112, 3), np.uint8)
    r = ex.extract([black, frames[0]])
    for x in r:
        assert x.boxes.shape == (0, 4) and x.features.shape == (0, ex.feature_dim)
        assert x.class_probs.shape == (0, 3) and x.scores.shape == (0,)
    assert box_location5(r[0].boxes, (112, 112)).shape == (0, 5)
    assert ex.extract([]) == []
    with pytest.raises(ValueError, match="image 1"):
        ex.extract([black, black.astype(np.float32)])
    with pytest.raises(ValueError, match="image 0"):
        ex.extract([np.zeros((0, 5, 3), np.uint8)])


def test_trained_detector_learns_and_features_are_per_box(trained, shapes):
    m = trained.metrics
    assert trained.map50 > trained.map50_initial + 0.25, m
    assert m["num_val_images"] == 40 and set(m["ap_per_class"]) == {"red_square", "green_circle", "blue_bar"}
    assert json.loads((trained.out_dir / "metrics.json").read_text())["map50"] == pytest.approx(trained.map50)
    ex = load_region_extractor(trained.out_dir)
    assert ex.class_names[0] == "__background__"
    data = read_coco(shapes)
    from actbert.video.detector_coco import load_image
    imgs = [load_image(im.path) for im in data.images[:6]]
    for r, img in zip(ex.extract(imgs), imgs):
        np.testing.assert_allclose(r.class_probs.sum(1), 1.0, atol=1e-5)
        if len(r.scores) >= 2:  # each box has its own RoI feature
            d = np.abs(r.features[:, None] - r.features[None]).sum(-1)
            assert np.all(d[~np.eye(len(d), dtype=bool)] > 1e-4)
        loc = box_location5(r.boxes, img.shape[:2])
        assert np.all((loc >= 0) & (loc <= 1))


def test_save_load_roundtrip_and_bad_files(tmp_path, frames):
    torch.manual_seed(3)
    ex = RegionExtractor(build_detector("tiny", 4), top_k=6, nms_thresh=0.4, backbone="tiny",
                         class_names=["__background__", "a", "b", "c"])
    d = save_region_extractor(ex, tmp_path / "ex")
    ex2 = load_region_extractor(d)
    assert (ex2.top_k, ex2.nms_thresh, ex2.class_names) == (6, 0.4, ex.class_names)
    for a, b in zip(ex.extract(frames), ex2.extract(frames)):
        for f in ("boxes", "features", "class_probs", "scores"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))

    weights = d / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match="model.safetensors"):
        load_region_extractor(d)
    d2 = save_region_extractor(ex, tmp_path / "ex2")
    cfg = json.loads((d2 / "config.json").read_text())
    cfg["num_classes"], cfg["class_names"] = 6, cfg["class_names"] + ["d", "e"]
    (d2 / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="model.safetensors"):
        load_region_extractor(d2)
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_region_extractor(tmp_path / "nowhere")


def test_coco_weights_load_except_predictor(tmp_path, monkeypatch):
    """A 91-class torchvision-style file (frozen BN: no num_batches_tracked) fine-tunes into 4 classes."""
    torch.manual_seed(0)
    coco = build_detector("fasterrcnn_mobilenet_v3_large_320_fpn", 91)
    state = {k: v for k, v in coco.state_dict().items() if not k.endswith("num_batches_tracked")}
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    expected = torchvision_weights_path("fasterrcnn_mobilenet_v3_large_320_fpn")
    with pytest.raises(FileNotFoundError, match=str(expected)):
        build_detector("fasterrcnn_mobilenet_v3_large_320_fpn", 4, weights="torchvision")
    expected.parent.mkdir(parents=True)
    torch.save(state, expected)
    model = build_detector("fasterrcnn_mobilenet_v3_large_320_fpn", 4, weights="torchvision")
    got = model.state_dict()
    key = "backbone.body.0.0.weight"
    assert torch.equal(got[key], state[key]) and torch.equal(got["rpn.head.conv.0.0.weight"], state["rpn.head.conv.0.0.weight"])
    assert got["roi_heads.box_predictor.cls_score.weight"].shape[0] == 4
    with pytest.raises(ValueError, match="fasterrcnn_mobilenet_v3_large_320_fpn"):  # wrong backbone for the file
        build_detector("tiny", 4, weights=expected)
    with pytest.raises(ValueError, match="no torchvision weights"):
        build_detector("tiny", 4, weights="torchvision")


def test_read_coco_bad_items(tmp_path, shapes):
    empty = tmp_path / "empty.json"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.json"):
        read_coco(empty)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_coco(tmp_path / "missing.json")
    data = json.loads(shapes.read_text())
    data["images"].append({"id": 10_000, "file_name": "images/nope.png", "width": 112, "height": 112})
    data["annotations"] += [
        {"id": 90_001, "image_id": 10_000, "category_id": 1, "bbox": [1, 1, 5, 5]},     # its image is missing
        {"id": 90_002, "image_id": 0, "category_id": 1, "bbox": [200, 200, 10, 10]},   # outside the image
        {"id": 90_003, "image_id": 0, "category_id": 1, "bbox": [100, 100, 30, 30]},   # partly outside: clipped
        {"id": 90_004, "image_id": 0, "category_id": 77, "bbox": [1, 1, 5, 5]},        # unknown category
    ]
    bad = shapes.parent / "bad.json"
    bad.write_text(json.dumps(data))
    got = read_coco(bad)
    assert len(got.images) == 200
    assert got.skipped["missing_or_unreadable_image"] == 1 and got.skipped["box_empty_or_outside_image"] == 1
    assert got.skipped["annotation_unknown_category"] == 1 and got.skipped["box_clipped_to_image(kept)"] == 1
    assert got.images[0].boxes.max() <= 112
    data["annotations"].append({"id": 90_005, "image_id": 0, "category_id": 1, "bbox": [1, 2]})
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="90005"):
        read_coco(bad)
    data["annotations"] = []
    bad.write_text(json.dumps(data))
    from actbert.video.detector_train import train_detector
    with pytest.raises(ValueError, match="bad.json.*no usable boxes"):
        train_detector(bad, tmp_path / "never", epochs=1, progress=False)


def test_cli_train_detector(tmp_path, capsys):
    from actbert.cli import train_detector as cli
    from actbert.cli.main import main

    js = make_shapes_coco(tmp_path / "small", num_images=20, seed=5)
    rc = main(["train-detector", "--coco", str(js), "--out", str(tmp_path / "out"), "--epochs", "1",
               "--batch-size", "4", "--no-progress", "--val-fraction", "0.25", "--threads", "1"])
    text = capsys.readouterr().out
    assert rc == 0 and "mAP@0.5" in text and "green_circle" in text
    assert (tmp_path / "out" / "metrics.json").is_file() and (tmp_path / "out" / "config.json").is_file()
    import argparse
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert all(a.help for a in parser._actions)
    assert main(["train-detector", "--coco", str(tmp_path / "none.json"), "--out", str(tmp_path / "o2")]) == 2
    assert "none.json" in capsys.readouterr().err
