"""The oneDNN Linear computes nn.Linear's outputs and gradients, and steps aside where it does not apply."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import actbert.model.linear as L

needs_onednn = pytest.mark.skipif(not L.ONEDNN, reason="this PyTorch has no oneDNN linear op (CPU build without mkldnn)")


def _graph_names(fn, depth: int = 4) -> set[str]:
    names = {fn.name()}
    if depth:
        for nxt, _ in fn.next_functions:
            if nxt is not None:
                names |= _graph_names(nxt, depth - 1)
    return names


def _grads(fn, x, w, b):
    x, w = x.detach().requires_grad_(), w.detach().requires_grad_()
    b = None if b is None else b.detach().requires_grad_()
    y = fn(x, w, b)
    y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
    return y, x.grad, w.grad, None if b is None else b.grad


@needs_onednn
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("strided", [False, True])
def test_outputs_and_gradients_match_nn_linear(bias, strided):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 7, 24, generator=g)
    if strided:  # a pooler's input: the first position of every sequence, a strided view
        x = torch.randn(4, 7, 24, generator=g)[:, 0]
    w, b = torch.randn(16, 24, generator=g), (torch.randn(16, generator=g) if bias else None)
    ours = _grads(L.linear, x, w, b)
    ref = _grads(F.linear, x, w, b)
    assert "_OneDNNLinearBackward" in _graph_names(ours[0].grad_fn)
    for a, r in zip(ours, ref):
        if r is not None:
            torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_frozen_weight_gets_no_gradient_and_module_keeps_nn_linear_names():
    layer = L.Linear(8, 3)
    assert isinstance(layer, torch.nn.Linear) and set(layer.state_dict()) == {"weight", "bias"}
    layer.weight.requires_grad_(False)
    x = torch.randn(5, 8, requires_grad=True)
    layer(x).sum().backward()
    assert layer.weight.grad is None and layer.bias.grad is not None and x.grad is not None


def test_other_dtypes_autocast_and_switch_fall_back_to_f_linear(monkeypatch):
    layer = L.Linear(8, 3)
    x = torch.randn(2, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(x).dtype == torch.bfloat16  # autocast's own bf16 matmul
    assert layer.double()(x.double()).dtype == torch.float64
    assert L.linear(torch.zeros(0, 8), torch.randn(3, 8)).shape == (0, 3)
    monkeypatch.setattr(L, "ONEDNN", False)
    y = L.Linear(8, 3)(x.requires_grad_())
    assert not any("OneDNN" in n for n in _graph_names(y.grad_fn))
