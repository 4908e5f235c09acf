"""Pipeline.answer / localize / caption / segment, checkpoint resolution, and the docs/api.md example run
as written on test-made videos, networks and a pre-training run folder."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import actbert
from actbert.api.heads import MissingHeadError
from actbert.api.pipeline import resolve_checkpoint
from tests.api.conftest import caption_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pipe(world):
    p = actbert.Pipeline(str(world[0]))
    p.index(world[1], out=world[0].parent / "tasks_index", progress=False, overwrite=True)
    return p


def test_answer_and_localize(pipe):
    options = [caption_of(1, 0), caption_of(4, 1), "boil water"]
    best, scores = pipe.answer("v1", options=options)
    assert len(scores) == 3 and best == int(np.argmax(scores)) and all(np.isfinite(scores))
    assert pipe.answer(pipe._index.store()["v1"], options=options) == (best, scores)  # features given directly
    seconds = pipe.localize("v1", steps=[caption_of(1, 0), caption_of(1, 1)])
    assert len(seconds) == 2 and 0 <= seconds[0] < seconds[1] < 16
    with pytest.raises(ValueError, match="options"):
        pipe.answer("v1", options=[])
    with pytest.raises(ValueError, match="fewer seconds"):
        pipe.localize("v1", steps=["cut"] * 17)


def test_caption_and_segment_heads(pipe, world, tmp_path):
    from actbert.tasks.caption_decoder import CaptionHeadConfig
    from actbert.tasks.captioning import Captioner
    from actbert.tasks.segmentation import SegmentHeadConfig, Segmenter

    with pytest.raises(MissingHeadError, match="actbert finetune captioning"):
        pipe.caption("v2", 0, 8)
    with pytest.raises(MissingHeadError, match="actbert finetune segmentation"):
        pipe.segment("v2")
    cfg, tok = pipe.model.config, pipe.tokenizer
    torch.manual_seed(0)
    head = CaptionHeadConfig(num_layers=1, max_len=3, beam_size=1).resolve(cfg, tok)
    Captioner(pipe.model.actbert, head, tok).save(tmp_path / "cap")
    seg = SegmentHeadConfig(num_classes=3, window=8, stride=4, max_regions=4, cls_id=tok.cls_id, sep_id=tok.sep_id)
    Segmenter(pipe.model.actbert, seg).save(tmp_path / "seg")
    heads = actbert.Pipeline(str(world[0]), captioner=str(tmp_path / "cap"), segmenter=str(tmp_path / "seg"))
    heads.open_index(pipe._index.path)
    assert isinstance(heads.caption("v2", 0, 8), str)
    labels = heads.segment("v2")
    assert len(labels) == 16 and set(labels) <= {0, 1, 2}
    calls = []
    fake = actbert.Pipeline(str(world[0]), captioner=lambda v, s, e: calls.append((v.video_id, s, e)) or "hi")
    assert fake.caption(pipe._index.store()["v3"], 2, 6) == "hi" and calls == [("v3", 2, 6)]


def test_resolve_checkpoint_of_a_run(world, tmp_path):
    run = tmp_path / "run"
    step = run / "checkpoints" / "step-00000005"
    shutil.copytree(world[0], step)
    (run / "checkpoints" / "step-00000009").mkdir()  # a newer, incomplete folder is passed over
    assert resolve_checkpoint(run) == step
    shutil.copytree(world[0], run / "model")
    assert resolve_checkpoint(run) == run / "model" and resolve_checkpoint(step) == step
    with pytest.raises(FileNotFoundError, match="holds no model"):
        resolve_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_checkpoint(tmp_path / "nothing")
    from actbert.model import ActBERTForPretraining

    loaded = ActBERTForPretraining.from_pretrained(world[0])
    assert actbert.Pipeline(loaded).tokenizer is not None  # a loaded model remembers its folder's vocab.txt
    with pytest.raises(FileNotFoundError, match="pass tokenizer="):  # a model built in memory has none
        actbert.Pipeline(ActBERTForPretraining(loaded.config))


def _python_blocks(md: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", md, flags=re.S)


def test_docs_example_runs_as_written(tmp_path, monkeypatch):
    """docs/api.md's Python blocks, executed unchanged in a folder holding what their paths name."""
    from actbert.data.tokenizer import WordPieceTokenizer
    from actbert.model import ActBERTForPretraining, get_preset
    from actbert.video.action_net import build_action_net, save_action_net
    from actbert.video.detector import RegionExtractor, build_detector, save_region_extractor
    from tests.video.test_decode import moving_square_frames, write_video

    blocks = _python_blocks((ROOT / "docs" / "api.md").read_text())
    assert len(blocks) >= 2 and "pipe.search(" in blocks[0] and "pipe.answer(" in blocks[1]
    torch.manual_seed(0)
    net = build_action_net("tiny3d", num_classes=3, clip_frames=4, fps=4.0, resize=36, crop=32).eval()
    det = RegionExtractor(build_detector("tiny", num_classes=4), top_k=4, backbone="tiny")
    save_action_net(net, tmp_path / "nets" / "action")
    save_region_extractor(det, tmp_path / "nets" / "detector")
    (tmp_path / "my_videos").mkdir()
    for i, name in enumerate(("cooking", "salad")):
        write_video(tmp_path / "my_videos" / f"{name}.mp4", moving_square_frames(30, seed=i), fps=10)
    tok = WordPieceTokenizer.train(["cut the tomato someone cuts a dog runs on beach add salt"] * 3,
                                   vocab_size=80, min_frequency=1)
    cfg = get_preset("tiny", vocab_size=tok.vocab_size, action_feat_dim=net.feature_dim,
                     region_feat_dim=det.feature_dim, num_region_classes=det.num_classes, max_actions=4,
                     max_regions=8, max_text_len=10)
    ActBERTForPretraining(cfg).save_pretrained(tmp_path / "runs" / "pretrain" / "model", tokenizer=tok)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(blocks[0], "docs/api.md[0]", "exec"), scope)
    exec(compile(blocks[1], "docs/api.md[1]", "exec"), scope)
    assert {h.video for h in scope["pipe"].search("cut the tomato", top_k=5)} <= {"cooking", "salad"}
    assert scope["best"] in (0, 1) and len(scope["seconds"]) == 2
    assert (tmp_path / "my_index" / "store" / "shards").is_dir() and os.listdir(tmp_path / "my_index")
