"""The training recipe's knobs, its four low fidelities, augmentation and failure handling."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from nas_hpo import cost, objectives, spaces
from nas_hpo.objectives import Context, TrialFailure
from nas_hpo.training import avg_pools_as_convs
from tests.avx2 import run_on_avx2


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




def test_channels_last_training_on_onednn_avx2_path_keeps_the_heap_intact(tmp_path):
    # oneDNN's AVX2 weight gradient of a strided 1x1 convolution with < 8 input channels
    # in channels_last corrupts the heap (torch 2.14.1); this net has one (the 4 -> 8
    # shortcut) and aborted within an epoch before avoid_strided_pointwise_convs. oneDNN
    # picks its code path at start-up, hence a fresh process; glibc's malloc checks make
    # an out-of-bounds write fail at the next free.
    script = tmp_path / "train_avx2.py"
    out = run_on_avx2(
        script,
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
    assert out.strip().endswith("trained")


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
