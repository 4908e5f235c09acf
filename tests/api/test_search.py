"""Pipeline.index / search: the known clip is found, re-ranking equals the full model's own ranking,
chunked streaming equals one chunk, faiss equals exact, and every bad input gets a clear error."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import actbert
from actbert.api import ClipIndex, IndexMismatchError
from actbert.api.index import clip_windows
from actbert.api.vector_search import exact_topk, faiss_available, stream_chunks
from actbert.tasks import scoring as S
from tests.api.conftest import N_VIDEOS, caption_of


@pytest.fixture(scope="module")
def built(world, tmp_path_factory):
    ckpt, store = world
    pipe = actbert.Pipeline(str(ckpt), batch_size=5)
    idx = pipe.index(store, out=tmp_path_factory.mktemp("idx") / "index", clip_seconds=8.0, chunk_rows=5,
                     progress=False)
    return pipe, idx


def test_first_stage_finds_the_known_clip(built):
    pipe, idx = built
    assert idx.n_clips == 2 * N_VIDEOS and idx.info["n_videos"] == N_VIDEOS and len(idx.chunks) == 3
    for i in range(N_VIDEOS):
        for half in (0, 1):
            hits = pipe.search(caption_of(i, half), top_k=3, rerank=0)
            assert (hits[0].video, hits[0].start, hits[0].end) == (f"v{i}", 8.0 * half, 8.0 * (half + 1))
            assert not hits[0].reranked and hits[0].score == hits[0].first_stage_score
            assert hits[0].path == f"/videos/v{i}.mp4"
            assert hits[0].first_stage_score >= hits[1].first_stage_score


def test_rerank_is_the_full_models_own_ranking(built):
    """With rerank = every clip, the order is exactly the model's log P(matched) order, computed here
    independently of the index (windows straight from the store)."""
    pipe, idx = built
    query = caption_of(2, 1)
    hits = pipe.search(query, top_k=idx.n_clips, rerank=idx.n_clips)
    model, cfg = pipe.model, pipe.model.config
    clips = list(idx.iter_clips())
    items = S.windows_for(idx.store(), clips, cfg)
    with torch.no_grad():
        ids, mask = S.tokenize(pipe.tokenizer, [query], cfg.max_text_len)
        text = S.encode_texts(model, ids, mask)
        video = S.encode_windows(model, items)
        full = S.score_pairs(model, text, video, np.zeros(len(clips), np.int64), np.arange(len(clips)))
        cos = (model.embed_text(text) @ model.embed_video(video).T)[0].numpy()
    expect = [clips[j] for j in np.argsort(-full, kind="stable")]
    assert [(h.video, h.start, h.end) for h in hits] == expect
    np.testing.assert_allclose([h.score for h in hits], np.sort(full)[::-1], atol=1e-5)
    by_clip = {c: cos[j] for j, c in enumerate(clips)}  # batch composition changes the last bits
    np.testing.assert_allclose([h.first_stage_score for h in hits], [by_clip[(h.video, h.start, h.end)]
                                                                     for h in hits], atol=2e-3)
    # a shallower re-rank keeps the first stage's candidates, re-ordered by the full model
    two = pipe.search(query, top_k=4, rerank=3)
    assert [h.reranked for h in two] == [True, True, True, False] and two[3].score == two[3].first_stage_score
    assert [h.score for h in two[:3]] == sorted((h.score for h in two[:3]), reverse=True)


def test_chunked_streaming_equals_one_chunk_and_faiss(built, tmp_path):
    pipe, idx = built
    one = pipe.index(idx.store_path, out=tmp_path / "one", chunk_rows=10_000, progress=False)
    f16 = pipe.index(idx.store_path, out=tmp_path / "f16", dtype="float16", progress=False)
    assert np.load(f16.emb_paths()[0]).dtype == np.float16 and np.load(one.emb_paths()[0]).dtype == np.float32
    assert len(one.chunks) == 1 and len(idx.chunks) == 3
    q = np.random.default_rng(0).standard_normal((2, idx.dim)).astype(np.float32)
    ref = one.search(q, 9, block_rows=1 << 16)
    for block in (1, 4, 5, 100):  # blocks smaller than a chunk, equal, spanning: same rows, same scores
        got = idx.search(q, 9, block_rows=block)
        np.testing.assert_array_equal(got[1], ref[1])
        np.testing.assert_allclose(got[0], ref[0], atol=1e-6)  # BLAS blocking changes the last bit
    for q in (caption_of(0, 0), caption_of(5, 1), "stir the pasta"):
        a = pipe.search(q, top_k=7, rerank=4, index=idx)
        b = pipe.search(q, top_k=7, rerank=4, index=one)
        assert [(h.video, h.start) for h in a] == [(h.video, h.start) for h in b]
        np.testing.assert_allclose([h.first_stage_score for h in a], [h.first_stage_score for h in b], atol=1e-6)
        half = pipe.search(q, top_k=7, rerank=0, index=f16)  # float16 storage: about 3 decimal digits
        np.testing.assert_allclose([h.first_stage_score for h in half],
                                   [h.first_stage_score for h in pipe.search(q, top_k=7, rerank=0, index=idx)], atol=2e-3)
        if faiss_available():
            f = pipe.search(q, top_k=7, rerank=4, index=idx, backend="faiss")
            assert [(h.video, h.start) for h in f] == [(h.video, h.start) for h in a]


def test_exact_topk_blocks_and_ties():
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((53, 8)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)  # unit rows: a row's best match is itself
    rows[40] = rows[3]  # a tie: the lower row id must win whatever the blocking
    q = rows[[3, 7]]
    ref = q @ rows.T
    for block in (1, 7, 53, 100):
        blocks = ((lo, rows[lo:lo + block]) for lo in range(0, 53, block))
        s, i = exact_topk(q, blocks, 5)
        assert i[0, 0] == 3 and i[0, 1] == 40
        np.testing.assert_allclose(s, -np.sort(-ref, axis=1)[:, :5], rtol=1e-5)
    s, i = exact_topk(q, [(0, rows)], 500)  # k larger than the rows: all of them
    assert i.shape == (2, 53)


def test_stream_chunks_reads_memmaps_block_by_block(tmp_path):
    a, b = np.arange(12, dtype=np.float16).reshape(6, 2), np.ones((3, 2), np.float16)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    got = list(stream_chunks([tmp_path / "a.npy", tmp_path / "b.npy"], block_rows=4))
    assert [(o, x.shape, x.dtype) for o, x in got] == [(0, (4, 2), np.float32), (4, (2, 2), np.float32),
                                                       (6, (3, 2), np.float32)]


def test_clip_windows_cover_the_video():
    assert clip_windows(16.0, 8.0, 8.0) == [(0.0, 8.0), (8.0, 16.0)]
    assert clip_windows(19.0, 8.0, 8.0)[-1] == (11.0, 19.0)  # the tail gets a full-length window
    assert clip_windows(3.0, 8.0, 4.0) == [(0.0, 3.0)]
    assert len(clip_windows(16.0, 8.0, 4.0)) == 3
    with pytest.raises(ValueError, match="stride"):
        clip_windows(10.0, 8.0, 0.0)


# --- bad input ------------------------------------------------------------------------------------------
def test_empty_query_and_no_index(built, world):
    pipe, _ = built
    for q in ("", "   ", None):
        with pytest.raises(ValueError, match="empty query"):
            pipe.search(q)
    with pytest.raises(ValueError, match="no index"):
        actbert.Pipeline(str(world[0])).search("cut")


def test_index_of_another_model_or_vocabulary(built, world, tmp_path):
    from actbert.data.tokenizer import WordPieceTokenizer
    from actbert.model import ActBERTForPretraining

    pipe, idx = built
    other = ActBERTForPretraining.from_pretrained(world[0])
    with torch.no_grad():
        other.contrastive_head.video_proj.weight.mul_(1.01)  # e.g. a later checkpoint of the same run
    other.save_pretrained(tmp_path / "other", tokenizer=pipe.tokenizer)
    with pytest.raises(IndexMismatchError, match=f"built with model '{world[0]}'.*'{tmp_path / 'other'}'.*weights"):
        actbert.Pipeline(str(tmp_path / "other")).open_index(idx.path)
    tok2 = WordPieceTokenizer.train(["completely different words here"] * 3, vocab_size=pipe.tokenizer.vocab_size,
                                    min_frequency=1)
    with pytest.raises(IndexMismatchError, match="vocabulary"):
        actbert.Pipeline(str(world[0]), tokenizer=tok2).search("cut", index=idx.path)


def test_missing_store_video_and_half_built_index(built, world, tmp_path):
    pipe, idx = built
    shutil.copytree(world[1], tmp_path / "store")
    moved = pipe.index(tmp_path / "store", out=tmp_path / "idx", progress=False)
    shutil.rmtree(tmp_path / "store")
    assert pipe.search("cut", top_k=2, rerank=0, index=moved)  # the first stage needs only the index
    with pytest.raises(FileNotFoundError, match="feature store .* no longer exists"):
        pipe.search("cut", top_k=2, rerank=2, index=moved)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pipe.answer(str(tmp_path / "gone.mp4"), options=["a", "b"])
    pipe.open_index(idx.path)
    with pytest.raises(KeyError, match="'nope' is not in the feature store"):
        pipe.localize("nope", steps=["cut"])
    (tmp_path / "idx" / "index.json").unlink()
    with pytest.raises(FileNotFoundError, match="not a clip index"):
        ClipIndex(tmp_path / "idx")
    with pytest.raises(FileExistsError, match="overwrite"):
        pipe.index(idx.store_path, out=idx.path, progress=False)
