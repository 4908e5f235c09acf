"""The pre-training optimizer: AdamW with BERT's weight-decay rule, stepped after backward or inside it.

`make_optimizer` is the one place the optimizer is built, so `actbert pretrain` and `actbert bench
train-step` measure the same thing. Two modes:

* standard: one fused AdamW over all parameters, stepped after backward (global-norm clipping possible);
* in backward (`TrainConfig.optimizer_in_backward`): each parameter is updated by its own fused AdamW as
  soon as its gradient is final, and the gradient is freed at once. The step never holds a full set of
  gradients (4 bytes per parameter, 0.74 GiB for `base`; the measured batch-8 peak is 0.5 GiB lower,
  docs/performance.md). The price: about 7 % more time per `base` step (~200 small optimizer calls), no
  global-norm clipping, no gradient accumulation, no DDP (its all-reduce runs after the per-parameter
  hooks), no fp16 loss scaling.
  This is PyTorch's "optimizer step in backward" recipe (`register_post_accumulate_grad_hook`).
"""
from __future__ import annotations

from typing import Any

import torch


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """BERT's rule: no weight decay on biases, LayerNorm weights and scalars (1-D / 0-D tensors)."""
    decay, no_decay = [], []
    for _name, p in model.named_parameters():  # tied weights appear once
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _fused_ok(model: torch.nn.Module) -> bool:
    # fused AdamW: one pass over parameter, gradient and both moments, no model-sized temporaries
    return all(p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.bfloat16, torch.float16)
               for p in model.parameters())


def make_optimizer(model: torch.nn.Module, *, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999),
                   eps: float = 1e-6, in_backward: bool = False) -> torch.optim.Optimizer:
    groups = param_groups(model, weight_decay)
    kwargs = {"lr": lr, "betas": tuple(betas), "eps": eps, "fused": _fused_ok(model)}
    if in_backward:
        return AdamWInBackward(groups, **kwargs)
    return torch.optim.AdamW(groups, **kwargs)


class AdamWInBackward(torch.optim.Optimizer):
    """AdamW applied per parameter from a post-accumulate-grad hook; `step()` and `zero_grad()` are no-ops.

    It is an `Optimizer` whose `param_groups` and `state` are shared with one small AdamW per parameter,
    so an LR scheduler, `state_dict()` / `load_state_dict()` and the checkpoint code treat it like any
    other optimizer. The hooks stay on the parameters for the optimizer's lifetime: every backward pass
    through the model updates it, so use `torch.no_grad()` (or a copy of the model) for anything else.
    """

    def __init__(self, groups: list[dict[str, Any]], **kwargs: Any) -> None:
        self._inner = [torch.optim.AdamW([{**g, "params": [p]}], **kwargs) for g in groups for p in g["params"]]
        super().__init__([inner.param_groups[0] for inner in self._inner], self._inner[0].defaults)
        for inner in self._inner:
            inner.param_groups[0]["params"][0].register_post_accumulate_grad_hook(self._make_hook(inner))
        self._link()

    def _link(self) -> None:
        # one group dict and one state dict, seen by the scheduler, the checkpoints and the inner steps
        for inner, group in zip(self._inner, self.param_groups):
            inner.param_groups = [group]
            inner.state = self.state

    @staticmethod
    def _make_hook(inner: torch.optim.AdamW):
        def hook(p: torch.Tensor) -> None:
            inner.step()
            p.grad = None

        return hook

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)  # replaces self.state and the group dicts
        self._link()

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # the updates already happened during backward
        return None

    def zero_grad(self, set_to_none: bool = True) -> None:  # gradients are freed right after their update
        return None
