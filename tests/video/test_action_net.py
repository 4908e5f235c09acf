"""Action network: architectures, weight loading (never downloading), save/load, and that training learns."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from actbert.video.action_net import (ActionSample, ActionTrainConfig, build_action_net, build_action_samples,
                                      load_action_net, save_action_net, train_action_net)
from actbert.video.action_models import kinetics_weights_path
from tests.video.test_decode import write_video


DIRECTIONS = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}


def direction_video(path, labels, rng, fps=8, seconds_per_label=1, h=48, w=48, size=10, speed=3):
    """A square moves in direction ``labels[k]`` during second k (new random start, colour, background)."""
    frames = []
    for lab in labels:
        dx, dy = list(DIRECTIONS.values())[lab]
        n = fps * seconds_per_label
        travel = speed * (n - 1)
        x0 = rng.integers(2, w - size - 2 - travel + 1) + (travel if dx < 0 else 0)
        y0 = rng.integers(2, h - size - 2 - travel + 1) + (travel if dy < 0 else 0)
        if dx == 0:
            x0 = rng.integers(2, w - size - 2)
        if dy == 0:
            y0 = rng.integers(2, h - size - 2)
        colour, bg = rng.integers(120, 256, 3), rng.integers(0, 80)
        for i in range(n):
            img = np.full((h, w, 3), bg, np.uint8)
            x, y = x0 + dx * speed * i, y0 + dy * speed * i
            img[y:y + size, x:x + size] = colour
            frames.append(img)
    return write_video(path, frames, fps=fps)


@pytest.mark.parametrize("arch,dim,shape", [("tiny3d", 256, (2, 3, 8, 32, 32)), ("r3d_18", 512, (1, 3, 4, 32, 32)),
                                            ("r2plus1d_18", 512, (1, 3, 4, 32, 32)),
                                            ("s3d", 1024, (1, 3, 8, 64, 64))])
def test_architectures_features_and_logits(arch, dim, shape):
    net = build_action_net(arch, num_classes=7).eval()
    x = torch.randn(shape)
    with torch.no_grad():
        feats, logits = net.features(x), net(x)
    assert feats.shape == (shape[0], dim) and net.feature_dim == dim
    assert logits.shape == (shape[0], 7)
    clips = np.random.default_rng(0).integers(0, 256, (shape[0], shape[2], shape[3], shape[4], 3), dtype=np.uint8)
    emb = net.embed(clips)
    assert emb.shape == (shape[0], dim) and emb.dtype == np.float32


def test_weights_from_torchvision_state_dict_and_kinetics_never_downloads(tmp_path, monkeypatch):
    from torchvision.models.video import r3d_18

    tv = r3d_18(weights=None, num_classes=400)  # stands in for the Kinetics file: torchvision key names, 400 classes
    pth = tmp_path / "r3d_18-kinetics.pth"
    torch.save(tv.state_dict(), pth)
    net = build_action_net("r3d_18", num_classes=5, weights=pth)
    assert torch.equal(net.body.layer1[0].conv1[0].weight, tv.layer1[0].conv1[0].weight)
    assert net.body.fc.out_features == 5  # classifier re-initialised for the verb classes
    with pytest.raises(ValueError, match="does not fit"):
        build_action_net("tiny3d", num_classes=5, weights=pth)
    # "kinetics" reads only the local hub cache and says where the file belongs when it is absent
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match="never downloads") as err:
        build_action_net("r3d_18", 5, weights="kinetics")
    path, url = kinetics_weights_path("r3d_18")
    assert str(path) in str(err.value) and url in str(err.value)
    path.parent.mkdir(parents=True)
    torch.save(tv.state_dict(), path)
    net = build_action_net("r3d_18", 400, weights="kinetics")
    assert torch.equal(net.body.fc.weight, tv.fc.weight)
    with pytest.raises(ValueError, match="unknown action-net arch"):
        build_action_net("resnet50", 5)


def test_save_load_round_trip_identical_features(tmp_path):
    net = build_action_net("tiny3d", num_classes=4, clip_frames=8, fps=8.0, resize=40, crop=32,
                           verbs=["cut", "pour", "stir", "fry"])
    with torch.no_grad():  # non-trivial BatchNorm statistics must round-trip too
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    save_action_net(net, tmp_path / "net")
    cfg = json.loads((tmp_path / "net" / "config.json").read_text())
    assert cfg["arch"] == "tiny3d" and cfg["verbs"] == ["cut", "pour", "stir", "fry"] and cfg["crop"] == 32
    back = load_action_net(tmp_path / "net")
    clips = np.random.default_rng(1).integers(0, 256, (3, 8, 32, 32, 3), dtype=np.uint8)
    assert np.array_equal(net.embed(clips), back.embed(clips))
    fast = net.embed(clips, bf16=True)  # bfloat16 autocast: same features up to bf16 rounding
    assert np.abs(fast - net.embed(clips)).max() <= 0.05 * np.abs(net.embed(clips)).max()
    # and a saved net is a valid weights file for build_action_net (e.g. continue training with new verbs)
    again = build_action_net("tiny3d", 9, weights=tmp_path / "net" / "action_net.safetensors")
    assert torch.equal(again.body.features[0][0].weight, net.body.features[0][0].weight)


class _Vocab:
    verbs = ["cut", "pour"]

    def label(self, text):
        for i, v in enumerate(self.verbs):
            if v in text.split():
                return i
        return None

    def __len__(self):
        return len(self.verbs)


def test_build_action_samples_skips_lines_without_verb():
    caps = {"v1": {"start": [0, 2, 4, 5], "end": [2, 4, 5, 5], "text": ["cut it", "then talk", "pour it", "cut"]},
            "v2": {"start": [0], "end": [1], "text": ["cut"]}}
    samples, skipped = build_action_samples(caps, _Vocab(), {"v1": "/x/v1.mp4"})
    assert [(s.start, s.end, s.label, s.video_id) for s in samples] == [(0, 2, 0, "v1"), (4, 5, 1, "v1")]
    assert skipped == {"no_verb": 1, "no_video": 1, "bad_time": 1}


def test_tiny3d_learns_motion_direction(tmp_path):
    """Label = direction a square moves; chance is 25 %; held-out videos must be clearly above it."""
    rng = np.random.default_rng(0)
    samples = []
    for v in range(16):
        labels = list(rng.permutation(4))
        path = direction_video(tmp_path / f"dir{v:02d}.mp4", labels, rng)
        samples += [ActionSample(str(path), float(k), float(k + 1), int(lab), f"dir{v:02d}")
                    for k, lab in enumerate(labels)]
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    samples.append(ActionSample(str(bad), 0.0, 1.0, 0, "broken"))
    cfg = ActionTrainConfig(arch="tiny3d", epochs=10, batch_size=8, lr=3e-3, weight_decay=0.01, clip_frames=8,
                            fps=8.0, resize=40, crop=32, hflip=False, held_out_fraction=0.25, seed=0,
                            progress=False, device="cpu", verbs=list(DIRECTIONS))
    t0 = time.perf_counter()
    net = train_action_net(samples, num_classes=4, cfg=cfg)
    elapsed = time.perf_counter() - t0
    rep = net.report
    assert rep.failures and rep.failures[0][0] == str(bad)
    assert rep.train_clips + rep.held_out_clips == 64 and rep.held_out_clips >= 8
    assert rep.held_out_accuracy >= 0.6, rep.history
    assert elapsed < 40, f"training took {elapsed:.1f}s"
    save_action_net(net, tmp_path / "trained")
    assert json.loads((tmp_path / "trained" / "config.json").read_text())["training"]["held_out_accuracy"] >= 0.6


def test_cli_train_action_net(tmp_path, capsys):
    pytest.importorskip("spacy")
    from actbert.cli.main import main
    from actbert.data.vocab import ActionVocab

    try:
        ActionVocab(["cut", "pour"], {"cut": 2, "pour": 2}).label("cut the onion")
    except OSError as exc:  # the spaCy model package is not installed
        pytest.skip(f"spaCy English model unavailable: {exc}")
    ActionVocab(["cut", "pour"], {"cut": 2, "pour": 2}).save(tmp_path / "vocab.json")
    rng = np.random.default_rng(3)
    caps = {}
    (tmp_path / "videos").mkdir()
    for v in range(3):
        direction_video(tmp_path / "videos" / f"v{v}.mp4", [0, 1, 0], rng)
        caps[f"v{v}"] = {"start": [0, 1, 2], "end": [1, 2, 3],
                         "text": ["cut the onion", "pour the water", "and that's it"]}
    caps["missing"] = {"start": [0], "end": [1], "text": ["cut it"]}
    (tmp_path / "caps.json").write_text(json.dumps(caps))
    rc = main(["train-action-net", "--videos", str(tmp_path / "videos"), "--captions", str(tmp_path / "caps.json"),
               "--vocab", str(tmp_path / "vocab.json"), "--arch", "tiny3d", "--out", str(tmp_path / "net"),
               "--epochs", "1", "--clip-frames", "4", "--fps", "4", "--resize", "36", "--crop", "32",
               "--val-fraction", "0.34", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "held-out accuracy" in out and "lines skipped: no kept verb" in out
    cfg = json.loads((tmp_path / "net" / "config.json").read_text())
    assert cfg["verbs"] == ["cut", "pour"] and cfg["training"]["train_clips"] == 4
    assert cfg["training"]["held_out_clips"] == 2
    assert cfg["training"]["skipped_lines"] == {"no_verb": 3, "no_video": 1, "bad_time": 0}
    assert load_action_net(tmp_path / "net").num_classes == 2
