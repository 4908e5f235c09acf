"""`Linear`: `nn.Linear` whose fp32 CPU matmuls (forward and both backward products) go through oneDNN.

Why our own: PyTorch's CPU wheels route an fp32 `nn.Linear` to MKL's sgemm, which is known to pick
generic code paths on non-Intel CPUs. On this project's AMD CPU, at the model's training shapes (a few
hundred rows: batch 8 x 36 words), MKL reached 58-81 GFLOP/s per core and oneDNN 76-96 on the same
products, interleaved in one process. For the whole training step the gain is small (0-5 % on two
threads, 3-9 % on one, docs/performance.md "Where the time goes"): the rest of the step does not move.
oneDNN ships inside PyTorch and is reached through `torch.ops.mkldnn._linear_pointwise` (the op
TorchInductor uses for CPU linears), which has no autograd formula, so `_OneDNNLinear` supplies one:
dx = dy W and dW = dy^T x are the same op on transposed views. Arithmetic stays fp32 (oneDNN's fp32
matmul, not a bf16/tf32 shortcut): results differ from MKL's only in summation order, ~1e-6 relative.

Everything else (CUDA, autocast, other dtypes, a PyTorch without oneDNN, `ACTBERT_ONEDNN_LINEAR=0`) takes
`torch.nn.functional.linear`. Parameter names and shapes are nn.Linear's, so checkpoints and the
converters are unaffected.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable


def _onednn_enabled() -> bool:
    if os.environ.get("ACTBERT_ONEDNN_LINEAR", "1") == "0":
        return False
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


ONEDNN = _onednn_enabled()


def _register_flop_formula() -> None:
    """Teach `torch.utils.flop_counter` the op (it knows aten's matmuls only), so `actbert bench train-step`
    still counts the model's FLOPs: 2 M K N, as for `aten.mm`."""
    from torch.utils.flop_counter import register_flop_formula

    @register_flop_formula(torch.ops.mkldnn._linear_pointwise)
    def _linear_flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
        rows = 1
        for d in x_shape[:-1]:
            rows *= d
        return 2 * rows * x_shape[-1] * w_shape[0]


if ONEDNN:
    _register_flop_formula()


def _matmul(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """x [M, K] @ weight[N, K]^T (+ bias) in oneDNN; contiguous or transposed-contiguous operands."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _matmul(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy: Tensor):
        x, weight = ctx.saved_tensors
        dy = dy.contiguous()
        need_x, need_w, need_b = ctx.needs_input_grad
        dx = _matmul(dy, weight.t(), None) if need_x else None  # dy @ W
        dw = _matmul(dy.t(), x.t(), None) if need_w else None  # dy^T @ x
        db = dy.sum(0) if ctx.has_bias and need_b else None
        return dx, dw, db


def _fast_path(x: Tensor, weight: Tensor) -> bool:
    return (ONEDNN and x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and x.numel() > 0 and not torch.is_autocast_enabled("cpu"))


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """`F.linear`, through oneDNN for fp32 on the CPU."""
    if not _fast_path(x, weight):
        return F.linear(x, weight, bias)
    # contiguous rows: a strided input (e.g. the poolers' `hidden[:, 0]`) sends oneDNN to a slow reference
    # kernel, 0.2 s for an 8 x 768 x 1024 weight gradient, measured
    out = _OneDNNLinear.apply(x.reshape(-1, x.shape[-1]).contiguous(), weight, bias)
    return out.view(*x.shape[:-1], weight.shape[0])


class Linear(nn.Linear):
    """`nn.Linear` (same parameters, same state-dict names) with `linear`'s fp32 CPU path."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)
