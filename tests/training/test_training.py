"""The training library: the standard augmentations and the CPU rewrites of a network (the
same function as PyTorch's modules, faster or safe on oneDNN)."""

from __future__ import annotations

import copy

import pytest
import torch

from nas_hpo.training import AUGMENT, avg_pools_as_convs, avoid_strided_pointwise_convs
from nas_hpo.training._cpu import _WindowSum
from nas_hpo.training._recipe import _crop
from tests.avx2 import run_on_avx2

POOLS = [  # (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    (3, 1, 1, False, False, None),  # NAS-Bench-201's and DARTS's pooling
    (3, 1, 1, False, True, None),
    (3, 2, 1, False, False, None),  # DARTS's reduction pooling
    ((2, 3), (2, 1), (1, 0), False, True, None),
    (2, 2, 0, True, True, None),  # NAS-Bench-201's shortcut: ceil_mode on even sizes
    (3, 2, 1, True, False, None),  # a partial window on some sizes: runs the pooling
    (3, 1, 1, False, True, 4),  # divisor_override: runs the pooling
]

def test_crop_is_a_window_of_the_padded_image_and_flip_mirrors():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    out = _crop(x, 2, gen)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for b in range(2):
        windows = [
            padded[b, :, i : i + 6, j : j + 6] for i in range(5) for j in range(5)
        ]
        assert any(torch.equal(out[b], w) for w in windows)
    flipped = AUGMENT["crop_flip"](x.repeat(16, 1, 1, 1), torch.Generator().manual_seed(1))
    assert flipped.shape == (32, 3, 6, 6)
    a = AUGMENT["crop_flip"](x, torch.Generator().manual_seed(3))
    b = AUGMENT["crop_flip"](x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)  # seeded: reproducible


@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("size", [7, 8])
def test_strided_pointwise_conv_rewrite_computes_the_same_function(padding, size):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 8, 1, stride=2, padding=padding, bias=True)
    rewritten = torch.nn.Sequential(copy.deepcopy(conv))
    assert avoid_strided_pointwise_convs(rewritten) == 1
    assert rewritten[0].stride == (1, 1)
    assert list(rewritten.state_dict()) == ["0." + k for k in conv.state_dict()]
    x = torch.randn(3, 4, size, size, dtype=torch.float64)
    conv, rewritten = conv.double(), rewritten.double()
    for layout in (torch.contiguous_format, torch.channels_last):
        outs, grads = [], []
        for net in (conv, rewritten):
            net.zero_grad()
            xi = x.clone().contiguous(memory_format=layout).requires_grad_()
            out = net.to(memory_format=layout)(xi)
            (out * torch.arange(out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
            outs.append(out)
            grads.append([xi.grad] + [p.grad for p in net.parameters()])
        torch.testing.assert_close(outs[1], outs[0])
        for a, b in zip(grads[1], grads[0], strict=True):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("size", [7, 16, 17])  # 7×8: PyTorch's pooling in channels_last
def test_avg_pool_as_convolution_computes_the_same_function(pool, size, monkeypatch):
    k, s, p, ceil, include, divisor = pool
    calls = []
    apply = _WindowSum.apply
    monkeypatch.setattr(_WindowSum, "apply", lambda *a: calls.append(a) or apply(*a))
    ref = torch.nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=include,
                             divisor_override=divisor)
    net = torch.nn.Sequential(copy.deepcopy(ref))
    assert avg_pools_as_convs(net) == 1
    assert isinstance(net[0], torch.nn.AvgPool2d) and net[0].extra_repr() == ref.extra_repr()
    g = torch.Generator().manual_seed(size)
    x = torch.randn(3, 5, size, size + 1, generator=g)
    for layout in (torch.contiguous_format, torch.channels_last):
        results = []
        for module in (ref, net):
            xi = x.clone().contiguous(memory_format=layout).requires_grad_()
            out = module(xi)
            # A non-linear function of the pooled values, so that the double backward (what
            # GraSP runs) goes through the pooling twice.
            loss = (out.tanh() * torch.linspace(-1, 1, out.numel()).view_as(out)).sum()
            (grad,) = torch.autograd.grad(loss, xi, create_graph=True)
            (grad2,) = torch.autograd.grad((grad * x.cos()).sum(), xi)
            results.append((out, grad, grad2))
        for a, b in zip(*results, strict=True):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
    # The convolution ran (twice a layout: forward and double backward) where it applies.
    partial = ceil and any((n + 2 * p - k) % s for n in (size, size + 1))
    # (small maps: in the default layout only)
    as_conv = divisor is None and not partial
    assert len(calls) == ((4 if size >= 16 else 2) if as_conv else 0)


@pytest.mark.parametrize("geometry", [((3, 3), (1, 1), (1, 1)), ((3, 2), (2, 2), (1, 0))])
def test_window_sum_gradients_of_every_order(geometry):
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64, requires_grad=True)
    fn = lambda t: _WindowSum.apply(t, *geometry)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_pooling_as_convolution_on_onednn_avx2_path_keeps_the_heap_intact(tmp_path):
    # avg_pools_as_convs runs depthwise and transposed depthwise convolutions through oneDNN:
    # its AVX2 path (another oneDNN bug hid there, see above) with glibc's malloc checks, few
    # and many channels, both layouts, to the second derivative.
    script = tmp_path / "pool_avx2.py"
    out = run_on_avx2(
        script,
        "import torch\n"
        "from torch import nn\n"
        "from nas_hpo.training import avg_pools_as_convs\n"
        "torch.set_num_threads(1)\n"
        "for c in (1, 3, 4, 8, 16):\n"
        "    for k, s, p, inc in ((3, 1, 1, False), (3, 2, 1, False), (2, 2, 0, True)):\n"
        "        for layout in (torch.contiguous_format, torch.channels_last):\n"
        "            for size in (16, 17):\n"
        "                net = nn.Sequential(nn.AvgPool2d(k, s, p, count_include_pad=inc))\n"
        "                assert avg_pools_as_convs(net) == 1\n"
        "                x = torch.randn(5, c, size, size).contiguous(memory_format=layout)\n"
        "                x.requires_grad_()\n"
        "                out = net(x)\n"
        "                (g,) = torch.autograd.grad(out.tanh().sum(), x, create_graph=True)\n"
        "                torch.autograd.grad((g * g).sum(), x)\n"
        "print('pooled')\n"
    )
    assert out.strip().endswith("pooled")
