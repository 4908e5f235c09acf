"""The optimizer factory and the optimizer-in-backward mode: same updates as the standard AdamW step,
gradients freed during backward, exact checkpoint round trip, and refusal of what it cannot do."""
from __future__ import annotations

import pytest
import torch

from actbert.model import ActBERTForPretraining
from actbert.training import checkpointing as ckpt
from actbert.training.config import TrainConfig, lr_factor
from actbert.training.optim import AdamWInBackward, make_optimizer, param_groups
from actbert.training.pretrain import NonFiniteLossError, PretrainError, pretrain

from .helpers import PoisonAfter, ToyClips, ToyCollate, ToyTokenizer, tiny_config, train_config


def _batches(n: int):
    collate = ToyCollate(fixed=True)
    clips = ToyClips(4 * n)
    return [collate([clips[i] for i in range(4 * k, 4 * k + 4)]) for k in range(n)]


def _train(in_backward: bool, batches, state=None, start=0):
    torch.manual_seed(0)
    model = ActBERTForPretraining(tiny_config()).train()
    if state is not None:
        model.load_state_dict(state[0])
    opt = make_optimizer(model, lr=1e-3, weight_decay=0.01, in_backward=in_backward)
    tc = TrainConfig(steps=10, warmup=2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, config=tc))
    if state is not None:
        opt.load_state_dict(state[1])
        sched.load_state_dict(state[2])
    for k, batch in enumerate(batches):
        torch.manual_seed(100 + start + k)  # same dropout in both modes
        model(batch).loss.backward()
        if in_backward:
            assert all(p.grad is None for p in model.parameters()), "in-backward must free every gradient"
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
    return model, opt, sched


def test_in_backward_matches_standard_adamw():
    batches = _batches(3)
    standard, _, _ = _train(False, batches)
    fused, opt, _ = _train(True, batches)
    assert isinstance(opt, AdamWInBackward)
    for (name, a), b in zip(standard.state_dict().items(), fused.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    # the tied word embedding / MLM decoder weight is one parameter, updated once per step
    word = fused.actbert.text_embeddings.word.weight
    assert fused.mlm_head.word_embeddings.weight is word and opt.state[word]["step"].item() == 3


def test_in_backward_state_dict_resumes_exactly():
    batches = _batches(4)
    whole, _, _ = _train(True, batches)
    first, opt, sched = _train(True, batches[:2])
    state = ({k: v.clone() for k, v in first.state_dict().items()}, opt.state_dict(), sched.state_dict())
    resumed, _, _ = _train(True, batches[2:], state=state, start=2)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_weight_decay_groups():
    model = ActBERTForPretraining(tiny_config())
    decay, no_decay = param_groups(model, 0.01)
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    opt = make_optimizer(model, lr=1e-3, weight_decay=0.01, in_backward=True)
    assert {g["weight_decay"] for g in opt.param_groups} == {0.01, 0.0}
    assert len(opt.param_groups) == len(decay["params"]) + len(no_decay["params"])


@pytest.mark.parametrize("clash", [{"clip_grad": 1.0}, {"grad_accum": 2}, {"precision": "fp16"}])
def test_config_refuses_what_in_backward_cannot_do(clash):
    with pytest.raises(ValueError, match="optimizer_in_backward .* cannot be combined with " + next(iter(clash))):
        TrainConfig(optimizer_in_backward=True, **{"clip_grad": 0.0, **clash})


def test_pretrain_in_backward_stops_and_resumes_exactly(tmp_path):
    tc = train_config(eval_every=0, eval_batches=1, clip_grad=0.0, optimizer_in_backward=True)

    def run(out, **kw):
        return pretrain(tc, tiny_config(), ToyClips(20), ToyClips(6, seed=1), ToyTokenizer(), out, progress=False,
                        collate_fn=ToyCollate(), **kw)

    full = run(tmp_path / "full")
    assert full.step == 6 and full.final_losses["loss"] < 10
    run(tmp_path / "cut", stop_after=3)
    assert run(tmp_path / "cut", resume=True).step == 6
    a = ActBERTForPretraining.from_pretrained(tmp_path / "full" / "model").state_dict()
    b = ActBERTForPretraining.from_pretrained(tmp_path / "cut" / "model").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(PretrainError, match="on_step needs the gradients"):
        run(tmp_path / "hook", on_step=lambda step, model: None)
    standard = train_config(eval_every=0, eval_batches=1)
    with pytest.raises(PretrainError, match="optimizer_in_backward=True; resume it with the same setting"):
        pretrain(standard, tiny_config(), ToyClips(20), None, ToyTokenizer(), tmp_path / "cut", progress=False,
                 collate_fn=ToyCollate(), resume=True)


def test_pretrain_in_backward_nan_stops_before_the_update(tmp_path):
    tc = train_config(eval_every=0, clip_grad=0.0, optimizer_in_backward=True)
    data = PoisonAfter(ToyClips(20), calls=4 * 4)  # step 5 reads NaN features
    with pytest.raises(NonFiniteLossError, match=r"step 4 .*step-00000003.*non-finite values in \['action_feats'\]"):
        pretrain(tc, tiny_config(), data, None, ToyTokenizer(), tmp_path, progress=False, collate_fn=ToyCollate())
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "checkpoints")] == ["step-00000003"]
