"""The training recipe's knobs, its four low fidelities, augmentation and failure handling."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from nas_hpo import cost, objectives, spaces
from nas_hpo.objectives import Context, TrialFailure
from nas_hpo.objectives.train import (
    AUGMENT,
    _crop,
    _WindowSum,
    avg_pools_as_convs,
    avoid_strided_pointwise_convs,
)


@pytest.fixture(scope="module")
def space():
    return spaces.get("resnet_blocks", base_width=4)


def run(space, ctx=None, **options):
    ctx = ctx or Context(seed=0)
    return objectives.get("train", **options)(space.default(), space=space, ctx=ctx), ctx


def test_fidelity_from_the_context_overrides_the_options(space):
    result, ctx = run(space, Context(seed=0, fidelity={"epochs": 2}), epochs=5)
    assert [s for s, _ in ctx.reports] == [1, 2]
    assert result.user_attrs["fidelity"]["epochs"] == 2
    assert len(result.user_attrs["train_loss_curve"]) == 2
    with pytest.raises(ValueError, match="no fidelity lr"):
        run(space, Context(fidelity={"lr": 0.1}))


def test_data_fraction_resolution_and_width(space):
    full, _ = run(space, epochs=1)
    part, _ = run(space, epochs=1, data_fraction=0.25)
    assert part.user_attrs["fidelity"]["data_fraction"] == 0.25
    # A quarter of the images: about a quarter of the training steps.
    assert part.user_attrs["train_seconds"] < full.user_attrs["train_seconds"]
    small = objectives.get("train", epochs=1, resolution=4)
    assert small.model_input() == ((1, 4, 4), 10)
    res, _ = run(space, epochs=1, resolution=16)
    assert res.user_attrs["fidelity"]["resolution"] == 16
    wide, _ = run(space, epochs=1, width_mult=2.0)
    assert wide.user_attrs["fidelity"]["width_mult"] == 2.0
    wide_net = spaces.widened(space, 2.0).build(
        space.default(), input_shape=(1, 8, 8), num_classes=10
    )
    assert wide.user_attrs["params"] == cost.count_params(wide_net) > full.user_attrs["params"]


def test_width_needs_a_space_with_a_width_option():
    from nas_hpo import Integer, SearchSpace

    bare = SearchSpace([Integer("x", 1, 3)], name="bare")
    with pytest.raises(ValueError, match="space 'bare' has no width_mult build option"):
        spaces.widened(bare, 0.5)


@pytest.mark.parametrize(
    "options",
    [
        {"optimizer": "adamw", "lr": 3e-3, "schedule": "onecycle"},
        {"schedule": "constant", "momentum": 0.0},
        {"precision": "bf16"},
        {"augment": "crop_flip", "label_smoothing": 0.0},
    ],
)
def test_recipe_variants_train(space, options):
    result, _ = run(space, epochs=2, **options)
    curve = result.user_attrs["learning_curve"]
    assert len(curve) == 2 and all(0 <= v <= 1 for v in curve)
    assert result.values[0] > 0.3, curve  # far above chance (0.1) after two epochs
    assert result.user_attrs["precision"] == ("bf16" if "precision" in options else "fp32")


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


def test_divergence_is_a_trial_failure_with_the_reason(space):
    with pytest.raises(TrialFailure, match="training diverged: mean loss .* in epoch 1"):
        run(space, epochs=1, diverge_loss=0.01)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"schedule": "step"}, "schedule: unknown 'step'; known: constant, cosine, onecycle"),
        ({"precision": "fp8"}, "precision: unknown"),
        ({"augment": "mixup"}, "augment: unknown"),
        ({"data_fraction": 0.0}, "data_fraction"),
        ({"resolution": 0}, "resolution"),
        ({"width_mult": -1.0}, "width_mult"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
    ],
)
def test_bad_options_name_the_key(options, message):
    with pytest.raises(ValueError, match=message):
        objectives.get("train", **options)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a CPU-only machine")
def test_cuda_without_a_gpu_is_refused_up_front():
    with pytest.raises(ValueError, match="device: 'cuda' asked for, but CUDA is not available"):
        objectives.get("train", device="cuda")


def test_cifar10_files_train_end_to_end(tmp_path, monkeypatch):
    """The CIFAR-10 reader and the 32×32 augmentation path, on files in CIFAR's format."""
    import os

    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda p, md5=None: os.path.isfile(p))
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    # Class = brightness: learnable in a few steps.
    labels = np.arange(120) % 2
    images = (labels[:, None] * 160 + rng.integers(0, 60, size=(120, 3 * 32 * 32))).astype(
        np.uint8
    )
    for b in range(5):
        with open(folder / f"data_batch_{b + 1}", "wb") as f:
            sl = slice(b * 20, (b + 1) * 20)
            pickle.dump({"data": images[sl], "labels": labels[sl].tolist()}, f)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": images[100:], "labels": labels[100:].tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    space = spaces.get("resnet_blocks", base_width=4)
    objective = objectives.get(
        "train", dataset="cifar10", data_dir=str(tmp_path), download=False, epochs=6,
        batch_size=16, val_fraction=0.2,
    )
    assert objective.model_input() == ((3, 32, 32), 10)
    result = objective(space.default(), space=space, ctx=Context(seed=0))
    assert result.user_attrs["test_accuracy"] == 1.0
    assert result.user_attrs["fidelity"]["dataset"] == "cifar10"


def test_channels_last_is_the_cpu_default_and_trains_like_the_default_layout(space):
    cl, _ = run(space, epochs=2)
    assert cl.user_attrs["channels_last"] is True
    plain, _ = run(space, epochs=2, channels_last=False)
    assert plain.user_attrs["channels_last"] is False
    # The same network from the same seed on the same batches: only float32 rounding differs
    # (the forward and gradients agree to ~2e-6, see below), which training amplifies to
    # ~0.5 % of the loss within two epochs on this small net.
    np.testing.assert_allclose(cl.user_attrs["train_loss_curve"],
                               plain.user_attrs["train_loss_curve"], rtol=0.05)


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


POOLS = [  # (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    (3, 1, 1, False, False, None),  # NAS-Bench-201's and DARTS's pooling
    (3, 1, 1, False, True, None),
    (3, 2, 1, False, False, None),  # DARTS's reduction pooling
    ((2, 3), (2, 1), (1, 0), False, True, None),
    (2, 2, 0, True, True, None),  # NAS-Bench-201's shortcut: ceil_mode on even sizes
    (3, 2, 1, True, False, None),  # a partial window on some sizes: runs the pooling
    (3, 1, 1, False, True, 4),  # divisor_override: runs the pooling
]


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


MALLOC_DEBUG = "/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"


def test_channels_last_training_on_onednn_avx2_path_keeps_the_heap_intact(tmp_path):
    # oneDNN's AVX2 weight gradient of a strided 1x1 convolution with < 8 input channels
    # in channels_last corrupts the heap (torch 2.14.1); this net has one (the 4 -> 8
    # shortcut) and aborted within an epoch before avoid_strided_pointwise_convs. oneDNN
    # picks its code path at start-up, hence a fresh process; glibc's malloc checks make
    # an out-of-bounds write fail at the next free.
    script = tmp_path / "train_avx2.py"
    script.write_text(
        "import torch\n"
        "from nas_hpo import objectives, spaces\n"
        "from nas_hpo.objectives import Context\n"
        "torch.set_num_threads(1)\n"
        "space = spaces.get('resnet_blocks', base_width=4)\n"
        "for seed in range(2):\n"
        "    r = objectives.get('train', epochs=2, channels_last=True)(\n"
        "        space.default(), space=space, ctx=Context(seed=seed))\n"
        "    assert r.user_attrs['channels_last'] is True\n"
        "print('trained')\n"
    )
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2")
    if os.path.exists(MALLOC_DEBUG):
        env.update(LD_PRELOAD=MALLOC_DEBUG, GLIBC_TUNABLES="glibc.malloc.check=3")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("trained")


def test_pooling_as_convolution_on_onednn_avx2_path_keeps_the_heap_intact(tmp_path):
    # avg_pools_as_convs runs depthwise and transposed depthwise convolutions through oneDNN:
    # its AVX2 path (another oneDNN bug hid there, see above) with glibc's malloc checks, few
    # and many channels, both layouts, to the second derivative.
    script = tmp_path / "pool_avx2.py"
    script.write_text(
        "import torch\n"
        "from torch import nn\n"
        "from nas_hpo.objectives.train import avg_pools_as_convs\n"
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
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2")
    if os.path.exists(MALLOC_DEBUG):
        env.update(LD_PRELOAD=MALLOC_DEBUG, GLIBC_TUNABLES="glibc.malloc.check=3")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("pooled")


def test_compiled_training_with_pooling_as_convolution_matches_pytorchs_pooling(monkeypatch):
    # torch.compile traces the window-sum autograd.Function (its cached constants are built
    # in the graph instead): same losses as with PyTorch's pooling. In the default layout,
    # where even digits' 8×8 maps pool by convolution.
    space = spaces.get("nb201", C=4, N=1)
    config = {"edge_1_0": "avg_pool_3x3", "edge_2_0": "nor_conv_3x3", "edge_2_1": "avg_pool_3x3",
              "edge_3_0": "skip_connect", "edge_3_1": "nor_conv_1x1",
              "edge_3_2": "avg_pool_3x3"}
    train = objectives.get("train", epochs=1, compile=True, channels_last=False)
    rewritten = []
    monkeypatch.setattr("nas_hpo.objectives.train.avg_pools_as_convs",
                        lambda model: rewritten.append(avg_pools_as_convs(model)))
    torch._dynamo.reset()
    fast = train(config, space=space, ctx=Context(seed=0))
    assert rewritten == [11]  # 3 cells × 3 pooling edges, 2 reduction shortcuts
    monkeypatch.setattr("nas_hpo.objectives.train.avg_pools_as_convs", lambda model: 0)
    torch._dynamo.reset()
    plain = train(config, space=space, ctx=Context(seed=0))
    np.testing.assert_allclose(fast.user_attrs["train_loss_curve"],
                               plain.user_attrs["train_loss_curve"], rtol=1e-4)
    assert fast.values == pytest.approx(plain.values, abs=0.02)
