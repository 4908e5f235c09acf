"""Fixtures of the API / search tests: a tiny model trained so that the right clip is known, and a small store.

World: 6 videos of 16 s; the first 8 s of video i show two "words" (feature prototypes + noise), the
last 8 s two other words. The tiny model is fine-tuned a few dozen steps (matching with hard negatives
+ the contrastive loss, which trains the first stage) on exactly those 12 (caption, window) pairs, so
the query "w1 w2" has a known answer: the window made of w1 and w2.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from actbert.data.store import StoreWriter, VideoFeatures
from actbert.tasks.scoring import Clip

WORDS = ("cut slice chop fry boil stir pour mix whisk bake grill peel onion tomato egg pasta water oil salt "
         "flour dough garlic pepper cheese").split()
D_A, D_R, N_CLS = 16, 16, 5
N_VIDEOS, CLIP_S, T = 6, 8.0, 8  # T clips of 2 s per video


def caption_of(video: int, half: int) -> str:
    a = 4 * video + 2 * half
    return f"{WORDS[a]} {WORDS[a + 1]}"


def make_video(i: int, protos: np.ndarray, rng: np.random.Generator, noise: float = 0.3) -> VideoFeatures:
    """Video `v{i}`: clips / key frames of each half built from that half's two word prototypes."""
    act, reg = [], []
    for t in range(T):
        a = 4 * i + 2 * (t >= T // 2)
        words = protos[[a, a + 1]]
        act.append(words[t % 2, :D_A] + noise * rng.standard_normal(D_A))
        reg.append(words[rng.integers(0, 2, 3), D_A:] + noise * rng.standard_normal((3, D_R)))
    starts = np.arange(T, dtype=np.float32) * 2
    cls = np.full((T, 3, N_CLS), 1.0 / N_CLS, np.float32)
    return VideoFeatures(
        f"v{i}", np.asarray(act, np.float32), np.stack([starts, starts + 2], 1), np.asarray(reg, np.float32),
        np.tile(np.array([10, 10, 200, 150], np.float32), (T, 3, 1)), cls, np.ones((T, 3), np.float32),
        np.ones((T, 3), bool), starts + 1.0, (360, 640), float(2 * T), extra={"path": f"/videos/v{i}.mp4"})


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """`(checkpoint dir, store dir)`: the trained tiny model (+ vocab.txt) and the feature store."""
    from actbert.data.tokenizer import WordPieceTokenizer
    from actbert.model import ActBERTForPretraining, get_preset
    from actbert.tasks.retrieval import finetune_retrieval

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("api_world")
    protos = np.random.default_rng(0).standard_normal((len(WORDS), D_A + D_R)).astype(np.float32) * 2
    rng = np.random.default_rng(1)
    videos = [make_video(i, protos, rng) for i in range(N_VIDEOS)]
    with StoreWriter(root / "store", shard_videos=4) as w:  # two shards: streaming crosses a shard boundary
        for v in videos:
            w.add(v)
    tok = WordPieceTokenizer.train([" ".join(WORDS)] * 3, vocab_size=120, min_frequency=1)
    torch.manual_seed(0)
    cfg = get_preset("tiny", vocab_size=tok.vocab_size, action_feat_dim=D_A, region_feat_dim=D_R,
                     num_region_classes=N_CLS, max_actions=4, max_regions=8, max_text_len=8)
    model = ActBERTForPretraining(cfg)
    clips = [Clip(f"v{i}", caption_of(i, h), CLIP_S * h, CLIP_S * (h + 1)) for i in range(N_VIDEOS) for h in (0, 1)]
    store = {v.video_id: v for v in videos}
    finetune_retrieval(model, tok, clips, _DictStore(store), batch_size=12, lr=3e-3, hard_negatives=1,
                       contrastive_weight=1.0, max_steps=30, seed=0, progress=False)
    model.save_pretrained(root / "ckpt", tokenizer=tok)
    return root / "ckpt", root / "store"


class _DictStore(dict):
    root = "<test store>"
