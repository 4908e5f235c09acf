"""Exact resume (bit-identical parameters), corrupt-checkpoint fallback, NaN stop, vocabulary mismatch."""
from __future__ import annotations

import json

import pytest
import torch

from actbert.model import ActBERTForPretraining
from actbert.training import checkpointing as ckpt
from actbert.training.pretrain import NonFiniteLossError, PretrainError, pretrain

from .helpers import PoisonAfter, ToyClips, ToyCollate, ToyTokenizer, tiny_config, train_config


class Killed(Exception):
    pass


def _kill_at(step_to_die: int):
    def hook(step, model):
        if step == step_to_die:
            raise Killed()
    return hook


def _run(out, **kw):
    tc = kw.pop("tc", train_config(eval_every=0, eval_batches=1))
    return pretrain(tc, tiny_config(), ToyClips(20), ToyClips(6, seed=1), ToyTokenizer(), out, progress=False,
                    collate_fn=ToyCollate(), **kw)


def _params(path):
    return ActBERTForPretraining.from_pretrained(path).state_dict()


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    result = _run(out)
    return out, result


def test_killed_run_resumes_bit_exact(full_run, tmp_path):
    full, result = full_run
    assert result.step == 6 and (full / "curves.png").is_file() and (full / "tensorboard").is_dir()
    with pytest.raises(Killed):  # dies inside step 5 (0-based 4), after the checkpoint of step 3
        _run(tmp_path, on_step=_kill_at(4))
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "checkpoints")] == ["step-00000003"]
    resumed = _run(tmp_path, resume=True)
    assert resumed.step == 6
    a, b = _params(full / "model"), _params(tmp_path / "model")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # the log reads as one run: steps 1..6 once each, the dead run's step-4 record dropped
    steps = [r["step"] for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())
             if r["split"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]
    ref = [r["loss"] for r in map(json.loads, (full / "metrics.jsonl").read_text().splitlines()) if r["split"] == "train"]
    got = [r["loss"] for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines()) if r["split"] == "train"]
    assert ref == got


def test_corrupt_latest_checkpoint_falls_back(full_run, tmp_path):
    full, _ = full_run
    import shutil

    shutil.copytree(full / "checkpoints", tmp_path / "checkpoints")
    for name in ("config.json", "train_config.json", "metrics.jsonl"):
        shutil.copy(full / name, tmp_path / name)
    latest = tmp_path / "checkpoints" / "step-00000006" / "model.safetensors"
    with open(latest, "r+b") as f:
        f.truncate(latest.stat().st_size // 2)
    with pytest.warns(RuntimeWarning, match="step-00000006.*truncated"):
        result = _run(tmp_path, resume=True)  # continues from step 3 and redoes 4..6
    assert result.step == 6
    a, b = _params(full / "model"), _params(tmp_path / "model")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_every_checkpoint_corrupt_is_an_error(full_run, tmp_path):
    import shutil

    shutil.copytree(full_run[0] / "checkpoints", tmp_path / "checkpoints")
    for d in ckpt.list_checkpoints(tmp_path / "checkpoints"):
        (d / "trainer.json").write_text("{not json")
    with pytest.warns(RuntimeWarning), pytest.raises(ckpt.CheckpointError, match="no usable checkpoint"):
        _run(tmp_path, resume=True)


def test_vocab_mismatch_on_resume(full_run):
    class Bigger(ToyTokenizer):
        vocab_size = 61

    with pytest.raises(PretrainError, match="vocabulary of 60 word pieces.*61"):
        pretrain(train_config(), tiny_config(vocab_size=61), ToyClips(20), None, Bigger(), full_run[0], resume=True,
                 progress=False, collate_fn=ToyCollate())


def test_tokenizer_model_mismatch(tmp_path):
    with pytest.raises(PretrainError, match="tokenizer has 60 word pieces but the model config expects 70"):
        pretrain(train_config(), tiny_config(vocab_size=70), ToyClips(8), None, ToyTokenizer(), tmp_path,
                 progress=False, collate_fn=ToyCollate())


def test_fresh_run_refuses_existing_checkpoints(full_run):
    with pytest.raises(PretrainError, match="already holds checkpoints: pass --resume"):
        _run(full_run[0])


def test_nan_feature_stops_and_keeps_last_good_checkpoint(tmp_path):
    data = PoisonAfter(ToyClips(20), calls=4 * 4)  # steps 1-4 clean, step 5 reads NaN features
    with pytest.raises(NonFiniteLossError, match=r"step 4 .*step-00000003.*non-finite values in \['action_feats'\]"):
        pretrain(train_config(eval_every=0), tiny_config(), data, None, ToyTokenizer(), tmp_path, progress=False,
                 collate_fn=ToyCollate())
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "checkpoints")] == ["step-00000003"]
    assert not (tmp_path / "model").exists()


def test_empty_corpus(tmp_path):
    with pytest.raises(PretrainError, match="training corpus is empty"):
        pretrain(train_config(), tiny_config(), ToyClips(0), None, ToyTokenizer(), tmp_path, collate_fn=ToyCollate())


def test_fp16_refused_on_cpu(tmp_path):
    with pytest.raises(PretrainError, match="fp16 needs a CUDA GPU"):
        pretrain(train_config(precision="fp16"), tiny_config(), ToyClips(8), None, ToyTokenizer(), tmp_path,
                 collate_fn=ToyCollate())


def test_resumed_optimizer_state_is_not_mapped_from_the_checkpoint_file(full_run, tmp_path):
    """The optimizer keeps the state tensors it loads; were they safetensors' file-backed tensors, pruning that
    checkpoint (keep=1) would free no disk until the process exits (the deleted file stays mapped)."""
    import shutil

    from actbert.training.optim import make_optimizer

    full, _ = full_run
    src = shutil.copytree(full / "checkpoints" / "step-00000006", tmp_path / "step-00000006")
    model = ActBERTForPretraining(tiny_config())
    tc = train_config()
    optimizer = make_optimizer(model, lr=tc.lr, weight_decay=tc.weight_decay, betas=tc.betas, eps=tc.adam_eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    ckpt.load_checkpoint(src, model, optimizer, scheduler, None)
    assert optimizer.state  # the moments were restored
    shutil.rmtree(src)  # what pruning does
    with open("/proc/self/maps") as f:
        still_mapped = [ln for ln in f if str(src) in ln]
    assert not still_mapped, still_mapped


def test_leftover_temporary_checkpoint_folders_are_removed(full_run, tmp_path):
    full, _ = full_run
    import shutil

    root = shutil.copytree(full / "checkpoints", tmp_path / "checkpoints")
    for name in (".tmp-step-00000009-abc123", ".old-step-00000003-xyz"):  # a save killed mid-write
        (root / name).mkdir()
        (root / name / "model.safetensors").write_bytes(b"\0" * 1024)
    (root / "notes").mkdir()  # not ours: left alone
    for name in ("config.json", "train_config.json", "metrics.jsonl"):
        shutil.copy(full / name, tmp_path / name)
    assert _run(tmp_path, resume=True).step == 6
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []
    assert (root / "notes").is_dir()
