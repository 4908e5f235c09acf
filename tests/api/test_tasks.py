"""Pipeline.answer / localize / caption / segment and checkpoint resolution (the docs' examples run in
tests/test_docs.py)."""
from __future__ import annotations

import gc
import shutil
import warnings
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
    Segmenter(pipe.model.actbert, seg, {1: "cut the onion"}).save(tmp_path / "seg" / "model")  # a run folder
    heads = actbert.Pipeline(str(world[0]), captioner=str(tmp_path / "cap"), segmenter=str(tmp_path / "seg"))
    heads.open_index(pipe._index.path)
    assert isinstance(heads.caption("v2", 0, 8), str) and isinstance(heads.caption("v2"), str)
    ids = heads.segment_ids("v2")
    assert len(ids) == 16 and set(ids) <= {0, 1, 2}
    names = {0: "background", 1: "cut the onion", 2: "step 2"}  # step 2 has no name in the checkpoint
    assert heads.segment("v2") == [names[k] for k in ids]
    for start, end in ((50, 60), (8, 4), (-1, 3), (0, 30)):  # v2 lasts 16 s
        with pytest.raises(ValueError, match="outside video 'v2', which lasts 16.0 s"):
            heads.caption("v2", start, end)
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



def test_unknown_words_warn_and_known_ones_do_not(pipe):
    from actbert.api.pipeline import UnknownWordsWarning

    with pytest.warns(UnknownWordsWarning, match="3 of the 4 words .*rabbit.*kitchen world"):
        pipe.search("a rabbit rides bikes", top_k=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipe.search(caption_of(1, 0), top_k=2)
        pipe.search("cut the onion", top_k=2)  # one unknown word of three is not "most"


def test_videos_extracted_on_the_fly_are_deleted(tmp_path):
    """answer() on a file outside the index extracts it into a temporary folder: close() removes it, and so
    does dropping the pipeline."""
    from tests.test_docs import _tiny_nets_and_model

    model_dir, nets = _tiny_nets_and_model(tmp_path)
    video = nets / "clip.mp4"
    p = actbert.Pipeline(str(model_dir), action_net=str(nets / "action"), detector=str(nets / "detector"))
    p.answer(str(video), options=["cut", "salt"])
    temp = p._extra_store
    assert temp is not None and (temp / "shards").is_dir()
    p.close()
    assert not temp.exists()
    with actbert.Pipeline(str(model_dir), action_net=str(nets / "action"), detector=str(nets / "detector")) as q:
        q.answer(str(video), options=["cut", "salt"])
        temp = q._extra_store
    assert not temp.exists()
    r = actbert.Pipeline(str(model_dir), action_net=str(nets / "action"), detector=str(nets / "detector"))
    r.answer(str(video), options=["cut", "salt"])
    temp = r._extra_store
    del r
    gc.collect()
    assert not temp.exists()
