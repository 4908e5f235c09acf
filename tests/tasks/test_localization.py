"""CrossTask localization: obvious hand-made scores decode to the true steps; the task runs on a tiny model;
the split rule and the random baseline."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from actbert.tasks import localization as L
from tests.tasks.test_retrieval import make_store, make_tokenizer, tiny_model

STEPS = ("cut the onion", "fry egg", "pour water")


def test_hand_made_scores_give_full_recall(monkeypatch):
    store = make_store(2, clips=10)  # 20 s each
    truth = {"v0": [3, 9, 15], "v1": [1, 2, 18]}

    def fake(model, text_state, video, window=1, batch_size=256):
        s = np.full((20, 3), -5.0)
        for k, t in enumerate(truth[video.video_id]):
            s[t, k] = 0.0  # the true second of each step is obvious
        s[0, 2] = -0.1  # a tempting out-of-order second for the last step: the order constraint rejects it
        return s

    monkeypatch.setattr(L, "step_scores", fake)
    videos = [L.LocVideo("t1", v, STEPS, tuple((k, t - 0.5, t + 1.0) for k, t in enumerate(ts)))
              for v, ts in truth.items()]
    m = L.evaluate_localization(tiny_model(), make_tokenizer(), videos, store, progress=False)
    assert m["avg_recall"] == 100.0 and m["per_task"]["t1"]["hits"] == 6
    assert m["random_baseline"]["avg_recall"] < 50.0 and m["skipped"] == []


def test_runs_on_tiny_model_and_skips_short_videos():
    store = make_store(3, clips=4)  # 8 s each
    store["short"] = dataclasses.replace(make_store(1, clips=1)["v0"], video_id="short")  # 2 s, 3 steps
    videos = [L.LocVideo("t1", "v0", STEPS, ((0, 0, 2), (1, 3, 5), (2, 6, 8))),
              L.LocVideo("t2", "v1", STEPS[:2], ((1, 4, 6),)), L.LocVideo("t2", "v2", STEPS[:2], ((0, 0, 1),)),
              L.LocVideo("t1", "short", STEPS, ((0, 0, 1),))]
    m = L.evaluate_localization(tiny_model(), make_tokenizer(), videos, store, window=1, batch_size=5, progress=False)
    assert m["n_tasks"] == 2 and m["n_videos"] == 3 and 0 <= m["avg_recall"] <= 100
    assert m["skipped"] == [{"video": "short", "task": "t1", "seconds": 2, "steps": 3}]
    with pytest.raises(KeyError, match="nope"):
        L.evaluate_localization(tiny_model(), make_tokenizer(), [L.LocVideo("t1", "nope", STEPS, ())], store)


def write_release(root, n_videos=34):
    root.mkdir(parents=True, exist_ok=True)
    (root / "tasks_primary.txt").write_text("t1\nMake eggs\nhttp://x\n3\n" + ",".join(STEPS) + "\n\n")
    (root / "videos.csv").write_text("".join(f"t1,v{i},http://y\n" for i in range(n_videos)))
    (root / "videos_val.csv").write_text("t1,v0,http://y\n")
    (root / "annotations").mkdir(exist_ok=True)
    for i in range(n_videos):
        (root / "annotations" / f"t1_v{i}.csv").write_text("1,0.0,2.0\n2,3.0,5.0\n3,6.0,8.0\n")
    return root


def test_split_rule(tmp_path):
    from actbert.data.formats import read_crosstask

    rel = read_crosstask(write_release(tmp_path / "ct"))
    test = L.crosstask_videos(rel, "test", n_train=30, seed=0)
    train = L.crosstask_videos(rel, "train", n_train=30, seed=0)
    assert len(test) == 3 and len(train) == 30  # 34 videos, v0 dropped (val), 30 train
    assert not {v.video_id for v in test} & {v.video_id for v in train} and "v0" not in {v.video_id for v in test}
    assert test[0].intervals == ((0, 0.0, 2.0), (1, 3.0, 5.0), (2, 6.0, 8.0))
    assert [v.video_id for v in L.crosstask_videos(rel, "test", seed=0)] == [v.video_id for v in test]
