"""Config parsing, the LR schedule, per-batch seeding of the real collator, checkpoint keep/round trip."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from actbert.training import checkpointing as ckpt
from actbert.training.config import TrainConfig, lr_factor, parse_loss_weights
from actbert.training.sampling import DataPosition, RankBatchSampler

from .helpers import tiny_config


def test_loss_weights_and_config_errors(tmp_path):
    assert parse_loss_weights("mlm=1, contrastive=0.1") == {"mlm": 1.0, "contrastive": 0.1}
    with pytest.raises(ValueError, match="'x=1'"):
        parse_loss_weights("x=1")
    with pytest.raises(ValueError, match="'abc' is not a number"):
        parse_loss_weights("mlm=abc")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8")
    tc = TrainConfig(steps=7, betas=(0.8, 0.9), loss_weights={"region": 0.5})
    tc.save(tmp_path)
    assert TrainConfig.load(tmp_path) == tc


def test_lr_schedule():
    tc = TrainConfig(steps=10, warmup=2, schedule="linear")
    assert [round(lr_factor(s, tc), 3) for s in range(10)] == [0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]
    cos = TrainConfig(steps=10, warmup=0, schedule="cosine")
    assert lr_factor(0, cos) == 1.0 and lr_factor(5, cos) == pytest.approx(0.5) and lr_factor(10, cos) == pytest.approx(0)


def test_sampler_resume_position():
    full = list(RankBatchSampler(12, 4, 0, 1, seed=1, epochs=3))
    pos = DataPosition().advance(3, 4)  # 4 batches consumed, 3 per epoch
    assert pos == DataPosition(1, 1)
    assert list(RankBatchSampler(12, 4, 0, 1, seed=1, start=pos, epochs=3)) == full[4:]
    with pytest.raises(ValueError, match="not divisible by the 3 processes"):
        RankBatchSampler(12, 4, 0, 3, seed=1)


def test_real_collator_is_seeded_per_batch():
    from actbert.data.corpus import ClipSample
    from actbert.data.tokenizer import WordPieceTokenizer
    from actbert.training.data import default_collator
    from actbert.training.sampling import SeededCollate

    tok = WordPieceTokenizer.train(["cut the onion and add the salt to the pan"] * 5, vocab_size=60, min_frequency=1)
    cfg = tiny_config(vocab_size=tok.vocab_size)
    rng = np.random.default_rng(0)
    samples = [ClipSample(f"v{i}", 0.0, 4.0, "cut the onion add salt", rng.normal(size=(2, 16)).astype(np.float32),
                          np.array([1, -100]), rng.normal(size=(3, 24)).astype(np.float32),
                          rng.uniform(size=(3, 5)).astype(np.float32), np.full((3, 7), 1 / 7, np.float32),
                          np.zeros(3, np.int64)) for i in range(6)]
    collate = SeededCollate(default_collator(tok, cfg))
    assert collate.takes_generator
    a = collate([(123, s) for s in samples])
    collate([(7, s) for s in samples])  # another batch in between must not change batch 123's draws
    b = collate([(123, s) for s in samples])
    assert all(torch.equal(a[k], b[k]) for k in a)
    clean = default_collator(tok, cfg).clean()(samples)
    assert "mlm_labels" not in clean and bool(clean["match_labels"].all())


def test_checkpoint_keep_and_optimizer_round_trip(tmp_path):
    from actbert.model import ActBERTForPretraining

    model = ActBERTForPretraining(tiny_config())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    for step in (1, 2, 3):
        ckpt.save_checkpoint(tmp_path, step, model, opt, sched, None, {"step": step}, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step-00000003", "step-00000002"]
    model2 = ActBERTForPretraining(tiny_config())
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-3)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: 1.0)
    path, meta = ckpt.load_latest(tmp_path, model2, opt2, sched2, None)
    assert path.name == "step-00000003" and meta["trainer"] == {"step": 3}
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for i in s1["state"]:
        for k in s1["state"][i]:
            assert torch.equal(s1["state"][i][k], s2["state"][i][k])


def test_bench_pretrain_smoke(tmp_path):
    import json

    from actbert.bench.pretrain import main

    out = tmp_path / "bench.json"
    assert main(["--presets", "tiny", "--steps", "3", "--batch-size", "4", "--precisions", "fp32", "--workers", "0",
                 "--threads", "1", "--videos", "4", "--seconds", "20", "--no-ddp", "--json", str(out)]) == 0
    run = json.loads(out.read_text())["runs"][0]
    assert run["samples_per_s"] > 0 and 0 <= run["data_time_share"] < 1 and run["steps_timed"] == 1
