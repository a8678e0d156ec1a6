"""CPU rewrites of a network for oneDNN's fast paths: the same function, the same parameters
and state-dict keys, faster (or, for strided 1×1 convolutions, not crashing) on the CPU."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

__all__ = ["MIN_POOL_PIXELS", "avg_pools_as_convs", "avoid_strided_pointwise_convs",
           "pytorch_avg_pools"]


def _subsample_input(module: nn.Module, args: tuple) -> tuple:
    (x,) = args
    pad, stride = module._subsample
    if pad:
        x = nn.functional.pad(x, (pad[1], pad[1], pad[0], pad[0]))
    return (x[:, :, :: stride[0], :: stride[1]],)


def avoid_strided_pointwise_convs(model: nn.Module) -> int:
    """Rewrite each strided 1×1 convolution of ``model`` (in place) as a subsampling of its
    input followed by the same 1×1 convolution at stride 1: the same function, the same
    parameters and state-dict keys. Returns how many were rewritten.

    Why: oneDNN's weight gradient of a strided 1×1 convolution in channels_last with fewer
    than 8 input channels writes out of bounds on its AVX2 code path (torch 2.14.1; found
    with ``ONEDNN_MAX_CPU_ISA=AVX2`` and glibc's malloc checks: a ResNet shortcut from 4 to 8
    channels at stride 2 aborts the backward pass on a corrupted heap; every other
    convolution shape we scanned, depthwise and dilated included, is clean). A 1×1
    convolution reads one pixel per output, so subsampling first computes exactly the same
    thing, and its stride-1 weight gradient is not affected."""
    n = 0
    for m in model.modules():
        if (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.stride != (1, 1)
                and m.padding_mode == "zeros" and isinstance(m.padding, tuple)):
            m._subsample = (m.padding if any(m.padding) else None, m.stride)
            m.stride, m.padding = (1, 1), (0, 0)
            m.register_forward_pre_hook(_subsample_input)
            n += 1
    return n


#: Smaller maps in channels_last keep PyTorch's pooling: there it is as fast on 8×8 maps, and
#: the two extra Python calls per pooling made ``nb201`` training on digits ~8% slower. (In
#: the default layout PyTorch's pooling is slow at every size: 64×64×8×8 forward+backward
#: 1.7 vs 0.3 ms.)
MIN_POOL_PIXELS = 256


def _graph_constant(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``fn``'s tensors cached by argument (read only: never a parameter or buffer); under
    ``torch.compile`` built in the graph instead (dynamo does not trace through a cache)."""
    cached = functools.lru_cache(maxsize=256)(fn)

    @functools.wraps(fn)
    def call(*args: Any) -> torch.Tensor:
        return fn(*args) if torch.compiler.is_compiling() else cached(*args)

    return call


@_graph_constant
def _ones_kernel(channels: int, size: tuple[int, int], dtype: torch.dtype,
                 device: torch.device) -> torch.Tensor:
    return torch.ones((channels, 1, *size), dtype=dtype, device=device)


@_graph_constant
def _window_counts(hw: tuple[int, int], size: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int], device: torch.device) -> torch.Tensor:
    """How many input pixels (padding excluded) each output pixel's window covers."""
    return nn.functional.conv2d(torch.ones((1, 1, *hw), device=device),
                                torch.ones((1, 1, *size), device=device), stride=stride,
                                padding=padding)


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[-1]))


class _WindowSum(torch.autograd.Function):
    """Σ over each pooling window, per channel: a depthwise convolution with a kernel of
    ones. Its gradient is the transposed convolution (``_WindowSumT``), whose gradient is
    this again, so every order of derivative (GraSP's double backward) stays on these two
    oneDNN kernels. (Left to autograd, the double backward of a grouped convolution runs
    one convolution per channel.)"""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, size: tuple[int, int], stride: tuple[int, int],
                padding: tuple[int, int]) -> torch.Tensor:
        ctx.geometry = (size, stride, padding, tuple(x.shape[-2:]))
        c = x.shape[1]
        kernel = _ones_kernel(c, size, x.dtype, x.device)
        return nn.functional.conv2d(x, kernel, None, stride, padding, 1, c)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return _WindowSumT.apply(grad, *ctx.geometry), None, None, None


class _WindowSumT(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, grad: torch.Tensor, size: tuple[int, int], stride: tuple[int, int],
                padding: tuple[int, int], hw: tuple[int, int]) -> torch.Tensor:
        ctx.geometry = (size, stride, padding)
        # The rows / columns that no window reached when the stride does not divide evenly.
        extra = tuple((n + 2 * p - k) % s for n, k, s, p in zip(hw, size, stride, padding,
                                                               strict=True))
        c = grad.shape[1]
        kernel = _ones_kernel(c, size, grad.dtype, grad.device)
        return nn.functional.conv_transpose2d(grad, kernel, None, stride, padding, extra, c)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return _WindowSum.apply(grad, *ctx.geometry), None, None, None, None


class _AvgPoolByConv(nn.AvgPool2d):
    """``nn.AvgPool2d`` computed as window sums (``_WindowSum``) divided by the window
    sizes: the same function (up to float rounding). What it does not cover
    (``divisor_override``, a ``ceil_mode`` that adds a partial window, inputs other than
    float32) and channels_last maps under ``MIN_POOL_PIXELS`` run the pooling itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.dtype != torch.float32 or self.divisor_override:
            return super().forward(x)
        size = _pair(self.kernel_size)
        stride = _pair(self.stride if self.stride else self.kernel_size)
        padding = _pair(self.padding)
        hw = (int(x.shape[-2]), int(x.shape[-1]))
        partial = self.ceil_mode and any(
            (n + 2 * p - k) % s for n, k, s, p in zip(hw, size, stride, padding, strict=True))
        small = (hw[0] * hw[1] < MIN_POOL_PIXELS
                 and x.is_contiguous(memory_format=torch.channels_last))
        if partial or small:
            return super().forward(x)
        out = _WindowSum.apply(x, size, stride, padding)
        if self.count_include_pad or not any(padding):
            return out / (size[0] * size[1])
        return out / _window_counts(hw, size, stride, padding, x.device)


def avg_pools_as_convs(model: nn.Module) -> int:
    """Make each ``nn.AvgPool2d`` of ``model`` (in place) compute as a depthwise convolution
    of ones (``_AvgPoolByConv``, a subclass): the same module otherwise (its options,
    hooks, no parameters). Returns how many were changed.

    Why: PyTorch's CPU average pooling is slow next to oneDNN's depthwise convolution
    (torch 2.14.1, 2-core AVX-512 EPYC, NAS-Bench-201's 3×3 stride-1 pooling without the
    padding on 64×16×32×32: forward 3.6 vs 0.45 ms, forward+backward 7.9 vs 1.1 ms, a
    double backward 17.6 vs 5.2 ms in the default layout; 1.0 vs 0.2, 1.6 vs 0.6 and 7.1
    vs 3.8 ms in channels_last); in a default-layout NAS-Bench-201 step it was most of the
    time."""
    n = 0
    for m in model.modules():
        if type(m) is nn.AvgPool2d:
            m.__class__ = _AvgPoolByConv
            n += 1
    return n


@contextlib.contextmanager
def pytorch_avg_pools(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` with PyTorch's own pooling in ``avg_pools_as_convs``'s modules for the
    duration (what FLOP counters should see: a pooling, not a convolution)."""
    changed = [m for m in model.modules() if type(m) is _AvgPoolByConv]
    for m in changed:
        m.__class__ = nn.AvgPool2d
    try:
        yield model
    finally:
        for m in changed:
            m.__class__ = _AvgPoolByConv


