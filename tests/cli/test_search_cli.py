"""`actbert index` + `actbert search` end to end on a tiny (untrained) model and a small store, plus errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from actbert.cli.main import main
from actbert.data.store import StoreWriter
from tests.api.conftest import D_A, D_R, N_CLS, WORDS, make_video


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from actbert.data.tokenizer import WordPieceTokenizer
    from actbert.model import ActBERTForPretraining, get_preset

    root = tmp_path_factory.mktemp("search_cli")
    protos = np.random.default_rng(0).standard_normal((len(WORDS), D_A + D_R)).astype(np.float32)
    rng = np.random.default_rng(0)
    with StoreWriter(root / "store") as w:
        for i in range(3):
            w.add(make_video(i, protos, rng))
    tok = WordPieceTokenizer.train([" ".join(WORDS)] * 3, vocab_size=120, min_frequency=1)
    torch.manual_seed(0)
    cfg = get_preset("tiny", vocab_size=tok.vocab_size, action_feat_dim=D_A, region_feat_dim=D_R,
                     num_region_classes=N_CLS, max_actions=4, max_regions=8, max_text_len=8)
    ActBERTForPretraining(cfg).save_pretrained(root / "run" / "model", tokenizer=tok)  # a pre-training run
    return root


def test_index_then_search_prints_a_ranked_table(setup, capsys):
    root = setup
    assert main(["index", str(root / "store"), "--out", str(root / "idx"), "--model", str(root / "run"),
                 "--clip-seconds", "4", "--stride", "4", "--batch-size", "5", "--chunk-rows", "7", "--no-progress"]) == 0
    assert "indexed 12 clips of 3 videos (4 s every 4 s)" in capsys.readouterr().out
    assert main(["search", "cut the onion", "--index", str(root / "idx"), "--top-k", "5", "--rerank", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["rank", "video", "start", "end", "score", "first-stage"]
    assert [ln.split()[0] for ln in lines[1:]] == ["1", "2", "3", "4", "5"]
    assert [ln.split()[4] == "–" for ln in lines[1:]] == [False] * 3 + [True] * 2  # only 3 re-ranked
    scores = [float(ln.split()[4]) for ln in lines[1:4]]
    assert scores == sorted(scores, reverse=True)
    assert main(["search", "cut the onion", "--index", str(root / "idx"), "--top-k", "2", "--no-rerank",
                 "--json"]) == 0
    hits = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert len(hits) == 2 and hits[0]["reranked"] is False and hits[0]["score"] == hits[0]["first_stage_score"] and hits[0]["path"].startswith("/videos/")


def test_cli_errors_are_messages(setup, capsys, tmp_path):
    root = setup
    if not (root / "idx" / "index.json").exists():
        main(["index", str(root / "store"), "--out", str(root / "idx"), "--model", str(root / "run"), "--no-progress"])
    capsys.readouterr()
    assert main(["search", "  ", "--index", str(root / "idx")]) == 2
    assert "empty query" in capsys.readouterr().err
    assert main(["search", "cut", "--index", str(tmp_path / "nothing")]) == 2
    assert "not a clip index" in capsys.readouterr().err
    assert main(["index", str(tmp_path / "gone"), "--out", str(tmp_path / "i"), "--model", str(root / "run")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "vids").mkdir()
    assert main(["index", str(tmp_path / "vids"), "--out", str(tmp_path / "i"), "--model", str(root / "run")]) == 2
    assert "--action-net DIR --detector DIR" in capsys.readouterr().err
