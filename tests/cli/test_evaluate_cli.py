"""`actbert evaluate` / `actbert finetune` end to end on a tiny saved checkpoint, a tiny feature store and
tiny annotation files written here: retrieval (both modes), localization, qa, retrieval fine-tuning."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from actbert.bench.store import make_synthetic_video
from actbert.cli.main import main
from actbert.data.store import StoreWriter
from tests.tasks.test_localization import write_release
from tests.tasks.test_retrieval import DIMS, captions, make_tokenizer, tiny_model


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    ids = [f"v{i}" for i in range(6)] + [f"t{i}" for i in range(4)]
    with StoreWriter(root / "store", part="p0", shard_videos=4) as w:
        for vid in ids:
            w.add(make_synthetic_video(vid, rng, num_clips=5, num_frames=5, **DIMS))
    tok = make_tokenizer()
    tiny_model().save_pretrained(root / "ckpt", tokenizer=tok)
    texts = captions(10, seed=4)
    (root / "yc_val.csv").write_text("end,start,task,text,video_id\n" + "".join(
        f"{4 + i % 3}.0,{i % 3}.0,113,{texts[i]},v{i}\n" for i in range(6)))
    (root / "yc.json").write_text(json.dumps({"database": {f"t{i}": {
        "duration": 10.0, "subset": "training", "recipe_type": "113", "video_url": "",
        "annotations": [{"segment": [0, 4], "id": 0, "sentence": texts[6 + i]},
                        {"segment": [4, 9], "id": 1, "sentence": texts[i]}]} for i in range(4)}}))
    (root / "mc.jsonl").write_text("".join(json.dumps(
        {"qid": f"mc{i}", "clip_name": f"v{i}", "answer": str(i % 5), "options": texts[i:i + 5]}) + "\n"
        for i in range(4)))
    rel = write_release(root / "crosstask", n_videos=4)
    (rel / "videos_val.csv").write_text("")
    with open(rel / "videos.csv", "a") as f:
        f.write("t1,v99,http://y\n")
    (rel / "annotations" / "t1_v99.csv").write_text("1,0.0,2.0\n")
    return root


def common(env, out):
    return ["--model", str(env / "ckpt"), "--store", str(env / "store"), "--out", str(env / out),
            "--batch-size", "7", "--no-progress"]


def read(env, out):
    rec = json.loads((env / out / "results.json").read_text())
    assert (env / out / "results.md").is_file() and rec["checkpoint"]
    return rec


@pytest.mark.parametrize("mode", ["exhaustive", "two-stage"])
def test_evaluate_retrieval(env, mode):
    assert main(["evaluate", "retrieval", *common(env, mode), "--dataset", "youcook2",
                 "--annotations", str(env / "yc_val.csv"), "--mode", mode, "--rerank", "3"]) == 0
    rec = read(env, mode)
    assert rec["task"] == "retrieval" and rec["split"] == "val" and mode in rec["protocol"]
    m = rec["metrics"]
    assert m["t2v"]["n_queries"] == 6 and m["v2t"]["direction"] == "v2t" and 0 <= m["t2v"]["R1"] <= 100
    assert (m["n_pairs_scored"] == 36 if mode == "exhaustive" else m["n_pairs_scored"] <= 36)
    assert m["tie_policy"] == "reference"


def test_evaluate_qa_and_localization(env):
    assert main(["evaluate", "qa", *common(env, "qa"), "--annotations", str(env / "mc.jsonl")]) == 0
    m = read(env, "qa")["metrics"]
    assert m["n"] == 4 and m["chance"] == 20.0
    loc = [*common(env, "loc"), "--crosstask", str(env / "crosstask"), "--n-train", "1"]
    with pytest.raises(KeyError, match="v99.*not in the feature store|not in the feature store.*v99"):
        main(["evaluate", "localization", *loc])  # v99 is annotated but has no features
    assert main(["evaluate", "localization", *loc, "--skip-missing"]) == 0
    rec = read(env, "loc")
    m = rec["metrics"]
    assert rec["split"] == "test" and m["n_videos"] == 3 and m["missing_from_store"] == 1
    assert 0 <= m["avg_recall"] <= 100 and "random_baseline" in m and "seed 0" in rec["protocol"]

def test_finetune_retrieval_then_held_out_eval(env):
    run = env / "pretrain_run"  # a pre-training run folder: what `actbert pretrain --out` writes
    shutil.copytree(env / "ckpt", run / "model", dirs_exist_ok=True)
    args = common(env, "ft_eval")
    args[1] = str(run)
    assert main(["finetune", "retrieval", *args, "--dataset", "youcook2",
                 "--annotations", str(env / "yc_val.csv"), "--train-annotations", str(env / "yc.json"),
                 "--max-steps", "3", "--train-batch-size", "4", "--lr", "1e-3", "--hard-negatives", "2"]) == 0
    out = env / "ft_eval" / "model"  # the fine-tuned model goes into --out, beside results.json
    assert (out / "model.safetensors").is_file() and (out / "vocab.txt").is_file()
    assert len(json.loads((out / "finetune_history.json").read_text())) == 3
    rec = read(env, "ft_eval")
    assert rec["checkpoint"] == str(out) and rec["config"]["train_clips"] == 8 and rec["split"] == "val"
    # ... and that run folder is itself a --model for the next command
    assert main(["evaluate", "retrieval", "--model", str(env / "ft_eval"),
                 *common(env, "ft_eval2")[2:], "--dataset", "youcook2", "--annotations", str(env / "yc_val.csv")]) == 0
    assert read(env, "ft_eval2")["metrics"]["t2v"] == rec["metrics"]["t2v"]
    # training on the test videos is refused
    with pytest.raises(ValueError, match="also in the training"):
        main(["finetune", "retrieval", *common(env, "bad"), "--dataset", "youcook2", "--annotations",
              str(env / "yc_val.csv"), "--train-annotations", str(env / "yc_val.csv")])


def test_zero_shot_finetune_and_unknown_task(env, capsys):
    assert main(["finetune", "qa", "--model", "x"]) == 2
    assert main(["finetune", "localization"]) == 2
    assert "zero-shot" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "nope"])
