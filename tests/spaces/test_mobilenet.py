"""The ``mobilenet`` space: its size in closed form, the blocks a config builds, strides that
adapt to the input, and that its default is MobileNetV2 itself."""

from __future__ import annotations

import pytest
import torch

from nas_hpo import SearchSpace, spaces
from nas_hpo.space import Constant, GreaterThan
from nas_hpo.spaces.mobilenet import InvertedResidual, make_divisible


def closed_form(max_depth: int) -> int:
    """Five stages of 1..max_depth blocks and one single-block stage, 3 kernels × 2 expansion
    ratios per block: prod_s sum_d 6^d."""
    per_stage = sum(6**d for d in range(1, max_depth + 1))
    return per_stage**5 * 6


@pytest.mark.parametrize("max_depth", [1, 2, 3, 4])
def test_size_is_the_closed_form(max_depth):
    space = spaces.get("mobilenet", max_depth=max_depth)
    assert space.size() == closed_form(max_depth)


def test_default_size():
    assert spaces.get("mobilenet").size() == 1554**5 * 6 == 54_375_883_032_510_144


def test_parameters_and_conditions():
    space = spaces.get("mobilenet")
    assert len(space) == 5 * (1 + 2 * 4) + 3
    assert space["stage6_depth"] == Constant("stage6_depth", 1)
    assert space["stage3_depth"].choices == (1, 2, 3, 4) and space["stage3_depth"].ordered
    assert space["stage2_block1_kernel"].choices == (3, 5, 7)
    assert space["stage2_block1_expand"].choices == (3, 6)
    cond = space.conditions
    assert "stage2_block1_kernel" not in cond
    assert cond["stage2_block3_kernel"] == GreaterThan("stage2_depth", 2)
    assert cond["stage5_block4_expand"] == GreaterThan("stage5_depth", 3)
    assert SearchSpace.from_configspace(space.to_configspace()) == space


def test_default_is_mobilenet_v2():
    space = spaces.get("mobilenet")
    config = space.default()
    assert [config[f"stage{s}_depth"] for s in range(1, 7)] == [2, 3, 4, 3, 3, 1]
    assert space.arch_key(config) == "|".join("-".join(["k3e6"] * d) for d in (2, 3, 4, 3, 3, 1))
    model = space.build(config, input_shape=(3, 224, 224), num_classes=1000)
    # MobileNetV2 (width 1.0, 1000 classes) has 3,504,872 parameters (Sandler et al. report
    # 3.4M; the count is the one torchvision publishes for its mobilenet_v2).
    assert sum(p.numel() for p in model.parameters()) == 3_504_872


def _config(depths, kernel, expand):
    config = {}
    for s, d in enumerate(depths, start=1):
        config[f"stage{s}_depth"] = d
        for b in range(1, d + 1):
            config[f"stage{s}_block{b}_kernel"] = kernel(s, b)
            config[f"stage{s}_block{b}_expand"] = expand(s, b)
    return config


def test_structure_of_a_chosen_config():
    space = spaces.get("mobilenet")
    depths = (1, 4, 2, 3, 1, 1)
    config = _config(depths, lambda s, b: (3, 5, 7)[(s + b) % 3], lambda s, b: (3, 6)[b % 2])
    space.validate(config)
    model = space.build(config, input_shape=(3, 32, 32), num_classes=10)
    assert [len(stage) for stage in model.stages] == list(depths)
    channels = (24, 32, 64, 96, 160, 320)
    c_in = 16
    for s, stage in enumerate(model.stages, start=1):
        for b, block in enumerate(stage, start=1):
            assert isinstance(block, InvertedResidual)
            expand_conv, depthwise, project = (
                m for m in block.conv if isinstance(m, torch.nn.Conv2d)
            )
            kernel = config[f"stage{s}_block{b}_kernel"]
            hidden = c_in * config[f"stage{s}_block{b}_expand"]
            assert expand_conv.kernel_size == (1, 1) and expand_conv.out_channels == hidden
            assert depthwise.kernel_size == (kernel, kernel) and depthwise.groups == hidden
            assert project.out_channels == channels[s - 1]
            assert not isinstance(block.conv[-1], torch.nn.ReLU6)  # linear bottleneck
            assert block.use_residual == (block.stride == 1 and c_in == channels[s - 1])
            c_in = channels[s - 1]
    # the residual is used inside stages, never across a stride or a change of channels
    assert [b.use_residual for b in model.stages[1]] == [False, True, True, True]
    assert space.arch_key(config).split("|")[1] == "k3e6-k5e3-k7e6-k3e3"


def _forward_backward(model: torch.nn.Module, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.head[-1].weight.grad.abs().sum() > 0
    assert model.stem[0].weight.grad.abs().sum() > 0  # the gradient reaches the input


def _sides(model: torch.nn.Module, shape: tuple[int, ...]) -> list[int]:
    """The side of the feature map after the stem and after each stage (one forward pass)."""
    sides = []
    x = model.stem(torch.randn(1, *shape))
    sides.append(x.shape[-1])
    for stage in model.stages:
        x = stage(x)
        sides.append(x.shape[-1])
    assert model.head(x).shape == (1, 10)
    return sides


@pytest.mark.parametrize(
    ("shape", "sides"),
    [
        ((1, 8, 8), [8, 4, 2, 1, 1, 1, 1]),  # halvings stop at 1×1
        ((3, 32, 32), [32, 16, 8, 4, 4, 2, 2]),  # MobileNetV2's strides, stem at stride 1
        ((3, 19, 19), [19, 10, 5, 3, 3, 2, 2]),
        ((3, 224, 224), [112, 56, 28, 14, 14, 7, 7]),  # ImageNet: the stem has stride 2
    ],
)
def test_strides_adapt_to_the_input(shape, sides):
    space = spaces.get("mobilenet", max_depth=2)
    config = _config((1, 2, 1, 2, 1, 1), lambda s, b: 3, lambda s, b: 3)
    model = space.build(config, input_shape=shape, num_classes=10).eval()
    with torch.no_grad():
        assert _sides(model, shape) == sides


def test_forward_backward():
    space = spaces.get("mobilenet")
    config = _config((2, 1, 1, 1, 1, 1), lambda s, b: 7, lambda s, b: 3)
    for shape in ((1, 8, 8), (3, 32, 32)):
        model = space.build(config, input_shape=shape, num_classes=10)
        _forward_backward(model, shape)


def test_make_divisible_follows_mobilenet_v2():
    assert [make_divisible(v) for v in (16, 12, 20, 11.2, 3, 100)] == [16, 16, 24, 16, 8, 104]
    assert all(make_divisible(v) >= 0.9 * v and make_divisible(v) % 8 == 0 for v in range(1, 500))


def test_width_mult():
    config = _config((1, 1, 1, 1, 1, 1), lambda s, b: 3, lambda s, b: 6)
    half = spaces.get("mobilenet", width_mult=0.5)
    assert half == spaces.get("mobilenet")
    model = half.build(config, input_shape=(3, 32, 32), num_classes=10)
    outs = [stage[0].conv[-2].out_channels for stage in model.stages]
    assert outs == [16, 16, 32, 48, 80, 160]  # 12 rounds up to 16 (never below 8, nor 10% off)
    assert model.stem[0].out_channels == 16 and model.head[0].out_channels == 1280
    wide = spaces.get("mobilenet", width_mult=1.5).build(
        config, input_shape=(3, 32, 32), num_classes=10
    )
    assert wide.stages[0][0].conv[-2].out_channels == 40  # 36 → 40
    assert wide.head[0].out_channels == 1920
    n = [sum(p.numel() for p in m.parameters()) for m in (model, wide)]
    assert n[0] < n[1]


def test_factory_options_and_validation():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_depth"):
            spaces.get("mobilenet", max_depth=bad)
    with pytest.raises(ValueError, match="width_mult"):
        spaces.get("mobilenet", width_mult=-1)
    space = spaces.get("mobilenet")
    config = space.default()
    with pytest.raises(ValueError, match="stage1_block1_kernel"):
        space.validate({**config, "stage1_block1_kernel": 4})
    with pytest.raises(ValueError, match="stage1_block3_kernel"):
        space.validate({**config, "stage1_block3_kernel": 3, "stage1_block3_expand": 6})
    with pytest.raises(ValueError, match="stage6_depth"):
        space.validate({**config, "stage6_depth": 2})
