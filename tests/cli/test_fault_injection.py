"""Fault injection through the real CLI entry point (`actbert.cli.main.main`), one test per class of bad input.

Every case asserts what docs/errors.md promises: a non-zero exit and ONE line on stderr naming the file and
the problem, never a traceback - or, for items of a batch (videos), a counted skip in the summary.
"""
from __future__ import annotations

import json
import os
import pickle
import resource
import shutil
import signal
import time

import numpy as np
import pytest
import torch

from actbert.cli.main import main
from actbert.data.store import StoreWriter
from tests.cli.test_search_cli import setup  # noqa: F401 - the module fixture `world` builds on

VERBS = ["cut", "slice", "fry", "boil"]


def one_line_error(capsys, argv, *needles: str, code: int = 2) -> str:
    """Run the CLI; assert exit `code`, no traceback, and a last stderr line holding every needle."""
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and '  File "' not in err, err
    assert rc == code, (rc, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines, f"nothing on stderr (stdout: {out!r})"
    line = lines[-1]
    for n in needles:
        assert n in line, (n, line)
    assert len(line) < 1500, line  # one readable line, not a dump of the input
    return line


# -- a small world: store, tiny model, index, pretrain inputs ------------------------------------------
@pytest.fixture(scope="module")
def world(setup):
    """`test_search_cli`'s store (3 videos) and untrained tiny model, plus an index and pretrain inputs."""
    from actbert.data.vocab import ActionVocab

    root = setup
    if not (root / "ckpt").exists():
        (root / "ckpt").symlink_to(root / "run" / "model")
    assert main(["index", str(root / "store"), "--out", str(root / "idx"), "--model", str(root / "ckpt"),
                 "--clip-seconds", "4", "--chunk-rows", "7", "--no-progress"]) == 0
    caps = {f"v{i}": {"start": [0.0, 4.0, 8.0, 12.0], "end": [4.0, 8.0, 12.0, 16.0],
                      "text": ["cut the onion", "fry the egg", "boil water", "slice tomato"]} for i in range(3)}
    (root / "captions.json").write_text(json.dumps(caps))
    ActionVocab(VERBS, {v: 10 for v in VERBS}).save(root / "vocab.json")
    return root


def copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def pretrain_args(world, store, out, *extra):
    return ["pretrain", "--store", str(store), "--captions", str(world / "captions.json"), "--vocab",
            str(world / "vocab.json"), "--preset", "tiny", "--out", str(out), "--batch-size", "4", "--steps", "2",
            "--eval-every", "0", "--val-fraction", "0", "--tokenizer-vocab-size", "120", "--device", "cpu",
            "--threads", "1", "--no-progress", *extra]


# -- 1. benchmark / corpus files: csv, UTF-8, JSON structure -------------------------------------------
CSV_HEAD = "key,vid_key,video_id,sentence\n"


@pytest.mark.parametrize("fmt,content,needles", [
    ("msrvtt-csv", CSV_HEAD + 'ret0,msr1,video1,"a girl sings\nret1,msr2,video2,b\n', [":2:", "csv", "quote"]),
    ("msrvtt-csv", CSV_HEAD + "ret0,msr1,video1," + "x" * 300_000 + "\n", [":2:", "field limit"]),
    ("msrvtt-csv", CSV_HEAD + "ret0,msr1,video1,ok\nret1,msr2,video2,caf\xe9\n".replace("\xe9", "\udce9"),
     [":3:", "UTF-8"]),
    ("youcook2", "[" * 100_000 + "]" * 100_000, ["nested 100000 levels"]),
    ("youcook2", '{"database": {"a": {"duration": 1}, "a": {"duration": 2}}}', ["duplicate JSON key 'a'"]),
    ("msrvtt-mc", '{"qid": 1, "clip_name": "v", "answer": 0, "options": ["a", "b"]}\n'
                  '{"qid": 1, "clip_name": "w", "answer": 0, "options": ["a", "b"]}\n', [":2:", "duplicate qid"]),
    ("msrvtt-mc", '{"qid": 1, "clip_name": null, "answer": 0, "options": ["a", "b"]}\n', [":1:", "clip_name"]),
    ("howto100m-captions", '{"v1": {"start": [0], "end": [1], "text": ["a"], "text": ["b"]}}', ["duplicate JSON key"]),
])
def test_bad_benchmark_files(fmt, content, needles, tmp_path, capsys):
    p = tmp_path / "input"
    p.write_bytes(content.encode("utf-8", "surrogateescape"))
    one_line_error(capsys, ["data", "check", fmt, str(p)], str(p), *needles)


def test_non_utf8_captions_in_pretrain_name_file_and_line(world, tmp_path, capsys):
    caps = tmp_path / "captions.json"
    caps.write_bytes((world / "captions.json").read_bytes().replace(b"fry", b"fr\xff", 1))
    argv = pretrain_args(world, world / "store", tmp_path / "run")
    argv[argv.index("--captions") + 1] = str(caps)
    one_line_error(capsys, argv, f"{caps}:1", "UTF-8")


# -- 2. configs: validated before anything is allocated -------------------------------------------------
@pytest.mark.parametrize("change,needle", [
    ({"text_stage_layers": [1_000_000, 1, 1]}, "1000002 layers"),
    ({"text_hidden": 10**9}, "parameters"),
    ({"text_heads": 0}, "text_heads must be a positive integer"),
    ({"text_hidden": "64"}, "text_hidden must be a positive integer"),
    ({"not_a_field": 1}, "unknown ActBERTConfig fields"),
])
def test_bad_actbert_config(world, tmp_path, capsys, change, needle):
    ckpt = copy(world / "ckpt", tmp_path / "ckpt")
    cfg = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**cfg, **change}))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    one_line_error(capsys, ["index", str(world / "store"), "--out", str(tmp_path / "idx"), "--model", str(ckpt)],
                   str(ckpt / "config.json"), needle)
    assert time.perf_counter() - t < 30
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 512 * 1024  # KiB: nothing big allocated


def bert_folder(root, world, **config):
    """A BERT-style folder (config.json + vocab.txt) whose sizes fit the tiny preset."""
    root.mkdir()
    n_vocab = len((world / "ckpt" / "vocab.txt").read_text().splitlines())
    cfg = {"vocab_size": n_vocab, "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128,
           "num_hidden_layers": 3, "max_position_embeddings": 64, "type_vocab_size": 2, **config}
    (root / "config.json").write_text(json.dumps({k: v for k, v in cfg.items() if v is not None}))
    shutil.copy(world / "ckpt" / "vocab.txt", root / "vocab.txt")
    return root


@pytest.mark.parametrize("change,needle", [
    ({"num_attention_heads": None}, "missing key(s) ['num_attention_heads']"),
    ({"num_hidden_layers": 10**6}, "layers"),
    ({"hidden_size": "big"}, "hidden_size must be a positive integer"),
])
def test_bad_bert_config(world, tmp_path, capsys, change, needle):
    bert = bert_folder(tmp_path / "bert", world, **change)
    one_line_error(capsys, pretrain_args(world, world / "store", tmp_path / "run", "--init-text", str(bert)),
                   "config.json", needle)


# -- 3. checkpoints: never unpickle, name the file --------------------------------------------------------
class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_bert_pickle_is_refused_and_never_runs(world, tmp_path, capsys):
    bert = bert_folder(tmp_path / "bert", world)
    marker = tmp_path / "pwned"
    with open(bert / "pytorch_model.bin", "wb") as f:
        pickle.dump({"bert.embeddings.word_embeddings.weight": _Payload(marker)}, f)
    line = one_line_error(capsys, pretrain_args(world, world / "store", tmp_path / "run", "--init-text", str(bert)),
                          str(bert / "pytorch_model.bin"), "refused")
    assert not marker.exists()
    assert "weights_only=False" not in line


@pytest.mark.parametrize("payload", [b"", b"\x80\x02garbage" * 10, os.urandom(4096)])
def test_garbage_bert_checkpoint(world, tmp_path, capsys, payload):
    bert = bert_folder(tmp_path / "bert", world)
    (bert / "pytorch_model.bin").write_bytes(payload)
    one_line_error(capsys, pretrain_args(world, world / "store", tmp_path / "run", "--init-text", str(bert)),
                   str(bert / "pytorch_model.bin"))


def test_garbage_model_weights_for_index_and_qa(world, tmp_path, capsys):
    ckpt = copy(world / "ckpt", tmp_path / "ckpt")
    (ckpt / "model.safetensors").write_bytes(os.urandom(1000))
    one_line_error(capsys, ["index", str(world / "store"), "--out", str(tmp_path / "idx"), "--model", str(ckpt)],
                   str(ckpt / "model.safetensors"))
    qa = tmp_path / "mc.jsonl"
    qa.write_text('{"qid": 1, "clip_name": "v0", "answer": 0, "options": ["cut", "fry"]}\n')
    one_line_error(capsys, ["evaluate", "qa", "--model", str(ckpt), "--annotations", str(qa), "--store",
                            str(world / "store"), "--out", str(tmp_path / "qa")], str(ckpt / "model.safetensors"))


@pytest.fixture(scope="module")
def video_models(tmp_path_factory):
    from actbert.video.action_net import build_action_net, save_action_net
    from actbert.video.detector import RegionExtractor, build_detector, save_region_extractor
    from tests.video.test_decode import moving_square_frames, write_video

    d = tmp_path_factory.mktemp("video_models")
    torch.manual_seed(0)
    save_action_net(build_action_net("tiny3d", num_classes=3, clip_frames=4, fps=4.0, resize=36, crop=32).eval(),
                    d / "action")
    save_region_extractor(RegionExtractor(build_detector("tiny", num_classes=4), top_k=3, backbone="tiny"),
                          d / "detector")
    (d / "videos").mkdir()
    write_video(d / "videos" / "good.mp4", moving_square_frames(30, h=48, w=64), fps=10)
    return d


def extract_args(d, out, action=None, detector=None, videos=None):
    return ["extract", str(videos or d / "videos"), "--out", str(out), "--action-net", str(action or d / "action"),
            "--detector", str(detector or d / "detector"), "--device", "cpu", "--no-progress"]


@pytest.mark.parametrize("part,file,content,needle", [
    ("action", "action_net.safetensors", b"\x00" * 64, "cannot read action-net weights"),
    ("action", "config.json", '{"arch": "tiny3d"}', "missing key(s)"),
    ("action", "config.json", "[" * 5000, "nested"),
    ("detector", "model.safetensors", b"junk", "cannot read detector weights"),
    ("detector", "config.json", '{"format": "actbert-region-extractor/1", "backbone": "tiny", "num_classes": -3}',
     "num_classes"),
])
def test_bad_action_net_or_detector(video_models, tmp_path, capsys, part, file, content, needle):
    d = copy(video_models / part, tmp_path / part)
    if part == "detector" and file == "config.json":  # keep the real format tag: only the bad field differs
        cfg = json.loads((d / file).read_text())
        content = json.dumps({**cfg, "num_classes": -3})
    (d / file).write_bytes(content if isinstance(content, bytes) else content.encode())
    one_line_error(capsys, extract_args(video_models, tmp_path / "store", **{part: d}), str(d / file), needle)


# -- 4. videos: a truncated file is a counted failure, with both durations -------------------------------
def write_cut_faststart_mp4(path, frames, fps: int, fraction: float):
    """An mp4 with its index (moov) first, cut to `fraction` of its bytes: FFmpeg then ends the stream quietly
    at the cut, with no decode error - the silent-loss case."""
    from tests.video.test_decode import write_video

    data = write_video(path, frames, fps=fps, faststart=True).read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])


def test_truncated_video_is_a_counted_failure_in_extract_and_index(video_models, world, tmp_path, capsys):
    from tests.video.test_decode import moving_square_frames

    videos = copy(video_models / "videos", tmp_path / "videos")
    write_cut_faststart_mp4(videos / "cut.mp4", moving_square_frames(100, h=48, w=64), fps=10, fraction=0.5)  # 10 s
    rc = main(extract_args(video_models, tmp_path / "store", videos=videos))
    out, err = capsys.readouterr()
    assert rc == 1 and "Traceback" not in out + err
    assert "videos extracted             1" in out and "failed (skipped)             1" in out
    failed = [ln for ln in out.splitlines() if "FAILED cut" in ln]
    assert len(failed) == 1 and "truncated: decoded" in failed[0] and "10.00 s its header declares" in failed[0]
    rc = main(["index", str(videos), "--out", str(tmp_path / "idx"), "--model", str(world / "ckpt"), "--action-net",
               str(video_models / "action"), "--detector", str(video_models / "detector"), "--no-progress"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    # the tiny model was built for other feature sizes, so the index itself may refuse the store; what matters
    # here is that the cut video was recorded as a failure of the extraction, with its numbers
    store_failures = (tmp_path / "idx" / "store" / "failures-part000.jsonl").read_text()
    assert "truncated: decoded" in store_failures and "cut" in store_failures


# -- 5. stores --------------------------------------------------------------------------------------------
def test_concurrent_extract_on_one_store(video_models, tmp_path, capsys):
    with StoreWriter(tmp_path / "store"):  # another writer holds part000
        one_line_error(capsys, extract_args(video_models, tmp_path / "store"), str(tmp_path / "store"),
                       "being written by another process")


def test_truncated_store_json(world, tmp_path, capsys):
    store = copy(world / "store", tmp_path / "store")
    (store / "store.json").write_text((store / "store.json").read_text()[:20])
    one_line_error(capsys, ["index", str(store), "--out", str(tmp_path / "idx"), "--model", str(world / "ckpt")],
                   str(store / "store.json"), "not valid JSON")


def test_store_index_without_videos_key_is_rebuilt(world, tmp_path, capsys, caplog):
    store = copy(world / "store", tmp_path / "store")
    ip = store / "index" / "part000.json"
    data = json.loads(ip.read_text())
    for ent in data["shards"].values():
        del ent["videos"]
    ip.write_text(json.dumps(data))
    assert main(["index", str(store), "--out", str(tmp_path / "idx"), "--model", str(world / "ckpt"),
                 "--clip-seconds", "4", "--no-progress"]) == 0
    assert "indexed 12 clips of 3 videos" in capsys.readouterr().out
    assert "re-reading their shard headers" in caplog.text


def _damage_shard_header(store, keep_mtime: bool):
    shard = sorted((store / "shards").glob("*.safetensors"))[0]
    st = shard.stat()
    raw = bytearray(shard.read_bytes())
    raw[8:40] = b"\x00" * 32  # the header's JSON, damaged in place (same size)
    shard.write_bytes(bytes(raw))
    if keep_mtime:  # the part index matches size and mtime, so the damage is met only when the shard is read
        os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns))
    return shard


def test_shard_damaged_before_pretrain(world, tmp_path, capsys):
    store = copy(world / "store", tmp_path / "store")
    shard = _damage_shard_header(store, keep_mtime=False)
    one_line_error(capsys, pretrain_args(world, store, tmp_path / "run"), str(shard), "corrupt shard")


def test_shard_damaged_during_pretrain_is_a_counted_skip(world, tmp_path, capsys, caplog):
    from actbert.data.store import FeatureStore

    store = tmp_path / "store"
    src = FeatureStore(world / "store")
    with StoreWriter(store, shard_videos=2, meta=src.meta) as w:  # v0, v1 | v2: one shard damaged, one left
        for vid in sorted(src.video_ids()):
            w.add(src[vid])
    shard = _damage_shard_header(store, keep_mtime=True)
    assert main(pretrain_args(world, store, tmp_path / "run")) == 0
    assert "Traceback" not in capsys.readouterr().err
    skipped = [r.getMessage() for r in caplog.records if "skipped_window_unreadable_video" in r.getMessage()]
    assert skipped and str(shard) in skipped[0]


# -- 6. clip indexes: checked against index.json when opened ----------------------------------------------
def _damage_index(idx, how):
    if how == "short_emb":
        e = np.load(idx / "emb-00000.npy")
        np.save(idx / "emb-00000.npy", e[:3])
        return "emb-00000.npy", "index.json says (7,"
    if how == "nan_emb":
        e = np.load(idx / "emb-00000.npy")
        e[2] = np.nan
        np.save(idx / "emb-00000.npy", e)
        return "emb-00000.npy", "row 2: non-finite embedding"
    if how == "short_videos":
        (idx / "videos.json").write_text(json.dumps(json.loads((idx / "videos.json").read_text())[:1]))
        return "videos.json", "lists 1 videos, index.json says 3"
    if how == "no_chunks":
        info = json.loads((idx / "index.json").read_text())
        del info["chunks"]
        (idx / "index.json").write_text(json.dumps(info))
        return "index.json", "missing or invalid 'chunks'"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["short_emb", "nan_emb", "short_videos", "no_chunks"])
def test_damaged_index(world, tmp_path, capsys, how):
    idx = copy(world / "idx", tmp_path / "idx")
    name, needle = _damage_index(idx, how)
    one_line_error(capsys, ["search", "cut the onion", "--index", str(idx), "--model", str(world / "ckpt"),
                            "--no-rerank"], name, needle)


def test_invalid_utf8_query(world, capsys):
    one_line_error(capsys, ["search", "cut \udcff onion", "--index", str(world / "idx")], "not valid UTF-8",
                   "byte 0xff")


# -- 7. a full disk names the file being written ----------------------------------------------------------
def test_file_size_limit_names_the_file(world, tmp_path, capsys):
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, old_limit[1]))
        rc = main(["index", str(world / "store"), "--out", str(tmp_path / "idx"), "--model", str(world / "ckpt"),
                   "--clip-seconds", "4", "--no-progress"])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    out, err = capsys.readouterr()
    assert rc == 2 and "Traceback" not in err
    assert str(tmp_path / "idx" / "emb-00000.npy") in err and "short write" in err


def test_disk_full_names_the_file(world, tmp_path, capsys, monkeypatch):
    import errno

    import actbert.data.store_format as sf

    def full(fd, mode="r", *a, **k):
        class Full:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                os.close(fd)

            def write(self, data):
                raise OSError(errno.ENOSPC, "No space left on device")
        return Full()

    monkeypatch.setattr(sf.os, "fdopen", full)
    store = tmp_path / "store"
    from actbert.bench.store import make_synthetic_video
    from actbert.cli.main import run_reporting_errors

    def write_store():  # what `actbert extract` does when it opens its store: store.json is written first
        with StoreWriter(store) as w:
            w.add(make_synthetic_video("v", np.random.default_rng(0), num_clips=2, num_frames=2, boxes=2,
                                       action_dim=4, region_dim=4, num_classes=3))

    assert run_reporting_errors("actbert extract", write_store) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "store.json" in err and "disk full" in err


def test_debug_shows_the_traceback(video_models, tmp_path):
    from actbert.data.store import StoreError

    with StoreWriter(tmp_path / "store"), pytest.raises(StoreError):
        main(["--debug", *extract_args(video_models, tmp_path / "store")])
