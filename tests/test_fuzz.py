"""Fuzz the readers of every format we accept, the feature-store opener and the clip-index opener.

Each target starts from a small valid input and applies random byte-level damage (truncation, random
bytes, structural characters, invalid UTF-8, duplicated slices). Whatever the damage, only our named
errors (`actbert.errors.ActbertError` and its subclasses) may escape: a KeyError, IndexError, RecursionError,
csv.Error, UnicodeDecodeError ... from a bad file is a bug, because the CLI would print a traceback for it.
Inputs are derandomised, so a failure reproduces on every run.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actbert.data.formats import FORMATS, read
from actbert.errors import ActbertError

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

_MC = {"qid": "mc0", "clip_name": "video9", "answer": "1", "options": ["a", "b", "c"]}
SAMPLES: dict[str, dict[str, str]] = {  # format -> {file name: valid content}; "." is the path given to the reader
    "youcook2": {".": json.dumps({"database": {"a": {"duration": 10.0, "subset": "training", "recipe_type": "1",
                                                     "annotations": [{"segment": [1, 5], "id": 0, "sentence": "cut"}]}}},
                                 indent=1)},
    "youcook2-csv": {".": "end,start,task,text,video_id\n60,47,226,pick the ends,xHr8X2Wpmno\n9,2,3,\"a, b\",v2\n"},
    "msrvtt-csv": {".": "key,vid_key,video_id,sentence\nret0,msr7579,video7579,a girl sings\n"},
    "msrvtt-ids": {".": "video_id\nvideo1\nvideo2\n"},
    "msrvtt-json": {".": '{"videos": [\n{"category": 9, "url": "u", "video_id": "video0", "split": "train"}],\n'
                         '"sentences": [\n{"caption": "a man", "video_id": "video0", "sen_id": 0}]}\n'},
    "msrvtt-mc": {".": json.dumps(_MC) + "\n" + json.dumps({**_MC, "qid": "mc1"}) + "\n"},
    "coin": {".": json.dumps({"database": {"v": {"duration": 5.5, "class": "C", "recipe_type": 0, "subset": "testing",
                                                 "annotation": [{"id": "65", "segment": [0.6, 2.2], "label": "clean"}],
                                                 "video_url": "u"}}}, indent=2)},
    "coin-taxonomy": {"taxonomy_target_action_mapping.csv": "Target Id,Target Label,Action Id,Action Label\n0,A,1,x\n0,A,2,y\n",
                      "taxonomy_domain_target_mapping.csv": "Domains,Targets\nD,A\n"},
    "crosstask": {"tasks_primary.txt": "23521\nMake Pancakes\nhttp://w/1\n2\nmix batter,fry\n\n",
                  "videos.csv": "23521,v_00,https://youtu.be/v_00\n",
                  "annotations/23521_v_00.csv": "1,3.5,7.0\n2,8.0,12.25\n"},
    "howto100m-captions": {".": '{"v1": {"start": [0, 2.5], "end": [3, 5], "text": ["cut it", "mix"]}}'},
    "howto100m-csv": {".": "video_id,category_1,category_2,rank,task_id\nnVbIUDjzWY4,Cars,Motorcycles,27,52907\n"},
}
assert set(SAMPLES) == set(FORMATS), "every format needs a fuzz sample"

# bytes that break structure: quotes, brackets, separators, newlines, NUL, invalid UTF-8, deep nesting
SPECIAL = [b'"', b"{", b"[", b"]", b"}", b",", b":", b"\n", b"\r", b"\x00", b"\xff", b"\xc3", b"\\", b"-1",
           b"1e999", b"NaN", b"null", b"[" * 3000, b'{"a":' * 1500, b"x" * 200_000]


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """`data` after 1-3 random edits."""
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["truncate", "insert", "replace", "special", "duplicate", "delete"]))
        if op == "truncate":
            data = data[:pos]
        elif op == "insert":
            data = data[:pos] + draw(st.binary(min_size=1, max_size=8)) + data[pos:]
        elif op == "replace":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data = data[:pos] + chunk + data[pos + len(chunk):]
        elif op == "special":
            data = data[:pos] + draw(st.sampled_from(SPECIAL)) + data[pos:]
        elif op == "duplicate":
            end = draw(st.integers(pos, len(data)))
            data = data[:end] + data[pos:end] + data[end:]
        else:
            data = data[:pos] + data[pos + draw(st.integers(1, 16)):]
    return data


def _write_sample(root: Path, fmt: str) -> Path:
    files = SAMPLES[fmt]
    if "." in files:
        path = root / "input"
        path.write_text(files["."], encoding="utf-8")
        return path
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_samples_are_valid(fmt, tmp_path):
    read(fmt, _write_sample(tmp_path, fmt))  # the fuzz starts from input the reader accepts


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_format_readers_raise_only_named_errors(fmt, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"fuzz-{fmt}")
    path = _write_sample(root, fmt)
    victims = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    originals = {p: p.read_bytes() for p in victims}

    @FUZZ
    @given(st.data())
    def check(data):
        victim = data.draw(st.sampled_from(victims))
        for p, b in originals.items():
            p.write_bytes(b)
        victim.write_bytes(data.draw(damaged(originals[victim])))
        try:
            read(fmt, path)
        except ActbertError:
            pass

    check()


# -- feature store ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Path:
    from actbert.bench.store import make_synthetic_video
    from actbert.data.store import StoreWriter

    root = tmp_path_factory.mktemp("fuzz-store") / "store"
    rng = np.random.default_rng(0)
    with StoreWriter(root, shard_videos=2, meta={"note": "fuzz"}) as w:
        for i in range(3):
            w.add(make_synthetic_video(f"v{i}", rng, num_clips=3, num_frames=2, boxes=2, action_dim=4,
                                       region_dim=4, num_classes=3))
    return root


def _fuzz_folder(template: Path, work: Path, files: list[Path], damage, use, examples: int = 300) -> None:
    """Copy `template` to `work`, damage one of its `files` (`damage(data, rel, raw)`), call `use(work)`."""
    @settings(FUZZ, max_examples=examples)
    @given(st.data())
    def check(data):
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(template, work)
        rel = data.draw(st.sampled_from(files))
        (work / rel).write_bytes(damage(data, rel, (work / rel).read_bytes()))
        try:
            use(work)
        except ActbertError:
            pass

    check()


def test_store_opener_raises_only_named_errors(small_store, tmp_path_factory):
    from actbert.data.store import FeatureStore

    files = sorted(p.relative_to(small_store) for p in small_store.rglob("*") if p.is_file()
                   and not p.name.startswith(".lock"))
    assert any(f.suffix == ".safetensors" for f in files) and Path("store.json") in files

    def damage(data, rel: Path, raw: bytes) -> bytes:
        if rel.suffix == ".safetensors":  # damage the header (the first bytes), where the structure is
            n = 8 + int.from_bytes(raw[:8], "little")
            return data.draw(damaged(raw[:n])) + raw[n:]
        return data.draw(damaged(raw))

    def use(root: Path) -> None:
        fs = FeatureStore(root)
        for vid in fs.video_ids():
            fs[vid]

    _fuzz_folder(small_store, tmp_path_factory.mktemp("fuzz-store-work") / "store", files, damage, use)


# -- clip index ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_index(tmp_path_factory) -> Path:
    from actbert.api.index import IndexWriter

    root = tmp_path_factory.mktemp("fuzz-index") / "idx"
    rng = np.random.default_rng(0)
    w = IndexWriter(root, dim=4, chunk_rows=3, dtype="float32")
    for v in range(3):
        e = rng.standard_normal((2, 4)).astype(np.float32)
        w.add(f"v{v}", [(0.0, 1.0), (1.0, 2.0)], e / np.linalg.norm(e, axis=1, keepdims=True))
    w.close({"store": "store", "clip_seconds": 1.0, "stride": 1.0})
    return root


def test_index_opener_raises_only_named_errors(small_index, tmp_path_factory):
    from actbert.api.index import ClipIndex

    query = np.ones((1, 4), np.float32) / 2

    def use(root: Path) -> None:
        idx = ClipIndex(root)
        scores, rows = idx.search(query, k=4)
        idx.clips(rows[0].tolist())
        assert np.isfinite(scores).all()  # NaN rows are refused, never ranked

    _fuzz_folder(small_index, tmp_path_factory.mktemp("fuzz-index-work") / "idx",
                 sorted(Path(p.name) for p in small_index.iterdir() if p.is_file()),
                 lambda data, rel, raw: data.draw(damaged(raw)), use)
