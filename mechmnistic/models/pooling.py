"""Square max-pooling, exactly ``F.max_pool2d(x, k)``, through PyTorch's faster channels-last kernel.

PyTorch's CPU max-pool kernel for the default (NCHW) layout walks one window
at a time; with the few channels of MNIST CNNs it is the slowest part of a
forward and backward pass (measured on one thread: 6.0 ms for a
``[200, 8, 26, 26]`` batch, more than both convolutions together and 46% of a
feature visualisation step). Its channels-last kernel vectorises across
channels: 0.9 ms, 1.4 ms with the layout conversions. The backward pass stays
in NCHW, where PyTorch's kernel is already fast (0.45 ms) and where the
neighbouring ReLU and convolution expect their gradients. The conversions
cost more than they save on small batches (one image: 80 us against 46 us for
a forward and backward pass), so tensors under ``CHANNELS_LAST_FROM`` elements
keep the stock path. So do forward passes without gradients: with the
conversions, over the training set in large batches, they measured no faster.

Only the memory layout changes, not the arithmetic: both kernels compute the
same maximum and record the same window element (the first maximum in
row-major order, or the last NaN) as the same ``h * W + w`` index, so values
and gradients are identical to the bit (tests/test_pooling.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import FunctionCtx, once_differentiable

# Where the channels-last path starts to pay, measured on one thread (16 x 8 x 26 x 26 = 86,528
# elements: 227 us against 485 us; 4 x 8 x 26 x 26 = 21,632: 107 us against 80 us).
CHANNELS_LAST_FROM = 32_768


class _MaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, x: torch.Tensor, k: int) -> torch.Tensor:
        pooled, indices = F.max_pool2d_with_indices(x.contiguous(memory_format=torch.channels_last), k)
        ctx.save_for_backward(x, indices.contiguous())
        ctx.k = k
        return pooled.contiguous()

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_pooled: torch.Tensor) -> tuple[torch.Tensor, None]:
        x, indices = ctx.saved_tensors
        k = ctx.k
        grad_x = torch.ops.aten.max_pool2d_with_indices_backward(
            grad_pooled.contiguous(), x, [k, k], [k, k], [0, 0], [1, 1], False, indices)
        return grad_x, None


def max_pool(x: torch.Tensor, k: int) -> torch.Tensor:
    """``F.max_pool2d(x, k)`` for ``x`` ``[N, C, H, W]``: ``[N, C, H // k, W // k]`` (module docstring)."""
    if torch.is_grad_enabled() and x.requires_grad and x.numel() >= CHANNELS_LAST_FROM:
        return _MaxPool.apply(x, k)
    return F.max_pool2d(x, k)
