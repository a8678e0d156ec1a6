"""The ``vit`` space: its size in closed form, the attention and MLP sizes a config builds, the
attention computed as written in the paper, and inputs of any size."""

from __future__ import annotations

import math

import pytest
import torch

from nas_hpo import SearchSpace, spaces
from nas_hpo.space import Constant, GreaterThan
from nas_hpo.spaces.vit import Attention


def closed_form(max_depth: int) -> int:
    """3 patch sizes × 3 embedding dimensions × sum over depths d of (3 heads × 3 head
    dimensions × 3 MLP ratios)^d."""
    return 3 * 3 * sum(27**d for d in range(1, max_depth + 1))


@pytest.mark.parametrize("max_depth", [1, 2, 5, 8])
def test_size_is_the_closed_form(max_depth):
    assert spaces.get("vit", max_depth=max_depth).size() == closed_form(max_depth)


def test_default_size():
    assert spaces.get("vit").size() == 2_639_629_898_640


def test_parameters_and_conditions():
    space = spaces.get("vit")
    assert len(space) == 3 + 3 * 8
    for name in (
        "patch_size",
        "embed_dim",
        "depth",
        "layer3_heads",
        "layer3_head_dim",
        "layer3_mlp_ratio",
    ):
        assert space[name].ordered
    assert space["depth"].choices == tuple(range(1, 9))
    cond = space.conditions
    assert "layer1_heads" not in cond
    assert cond["layer5_head_dim"] == GreaterThan("depth", 4)
    one = spaces.get("vit", max_depth=1)
    assert one["depth"] == Constant("depth", 1) and not one.conditions
    assert SearchSpace.from_configspace(one.to_configspace()) == one


CONFIG = {
    "patch_size": 4,
    "embed_dim": 128,
    "depth": 3,
    "layer1_heads": 1,
    "layer1_head_dim": 16,
    "layer1_mlp_ratio": 2,
    "layer2_heads": 2,
    "layer2_head_dim": 32,
    "layer2_mlp_ratio": 3,
    "layer3_heads": 4,
    "layer3_head_dim": 64,
    "layer3_mlp_ratio": 4,
}


def test_structure_of_a_chosen_config():
    space = spaces.get("vit")
    space.validate(CONFIG)
    assert space.arch_key(CONFIG) == "p4-d128|h1x16r2|h2x32r3|h4x64r4"
    model = space.build(CONFIG, input_shape=(3, 32, 32), num_classes=10)
    assert model.patch_embed.kernel_size == model.patch_embed.stride == (4, 4)
    assert model.patch_embed.out_channels == 128
    assert model.pos_embed.shape == (1, 8 * 8 + 1, 128) and model.cls_token.shape == (1, 1, 128)
    assert len(model.blocks) == 3
    for block, (heads, head_dim, ratio) in zip(
        model.blocks, [(1, 16, 2), (2, 32, 3), (4, 64, 4)], strict=True
    ):
        attn = block.attn
        for proj in (attn.q, attn.k, attn.v):
            assert (proj.in_features, proj.out_features) == (128, heads * head_dim)
        assert (attn.proj.in_features, attn.proj.out_features) == (heads * head_dim, 128)
        assert (attn.heads, attn.head_dim) == (heads, head_dim)
        assert block.mlp[0].out_features == 128 * ratio and block.mlp[2].in_features == 128 * ratio
        assert block.norm1.normalized_shape == (128,)
    assert model.head.in_features == 128 and model.head.out_features == 10


def test_attention_is_scaled_dot_product_per_head():
    """softmax(q kᵀ / √d) v, per head, written out by hand."""
    torch.manual_seed(0)
    attn = Attention(dim=24, heads=3, head_dim=5)
    x = torch.randn(2, 7, 24)
    q, k, v = (p(x).view(2, 7, 3, 5).transpose(1, 2) for p in (attn.q, attn.k, attn.v))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(5), dim=-1)
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(2, 7, 15))
    torch.testing.assert_close(attn(x), expected)


def _forward_backward(model: torch.nn.Module, shape: tuple[int, ...]) -> None:
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name  # every weight, class token included, learns


@pytest.mark.parametrize(("shape", "grid"), [((1, 8, 8), (2, 2)), ((3, 32, 32), (8, 8))])
def test_forward_backward(shape, grid):
    torch.manual_seed(0)
    model = spaces.get("vit").build(CONFIG, input_shape=shape, num_classes=10)
    assert model.grid == grid
    _forward_backward(model, shape)


@pytest.mark.parametrize(
    ("patch", "shape", "grid"),
    [
        (8, (1, 8, 8), (1, 1)),  # the whole digit is one patch
        (8, (3, 30, 17), (4, 3)),  # padded to 32×24
        (2, (1, 5, 3), (3, 2)),
        (8, (3, 224, 224), (7, 7)),  # ImageNet: 32-pixel patches
        (2, (3, 224, 160), (28, 20)),  # ImageNet: 8-pixel patches
    ],
)
def test_any_input_size(patch, shape, grid):
    config = {**CONFIG, "patch_size": patch, "embed_dim": 64, "depth": 1}
    config = {k: v for k, v in config.items() if not k.startswith(("layer2", "layer3"))}
    model = spaces.get("vit").build(config, input_shape=shape, num_classes=10).eval()
    assert model.grid == grid and model.pos_embed.shape == (1, grid[0] * grid[1] + 1, 64)
    with torch.no_grad():
        out = model(torch.randn(1, *shape))
    assert out.shape == (1, 10) and torch.isfinite(out).all()


def test_input_of_another_size_is_refused():
    model = spaces.get("vit").build(CONFIG, input_shape=(3, 32, 32), num_classes=10)
    with pytest.raises(ValueError, match="8×8"):
        model(torch.randn(1, 3, 16, 16))


def test_width_mult():
    half = spaces.get("vit", width_mult=0.5)
    assert half == spaces.get("vit")
    model = half.build(CONFIG, input_shape=(3, 32, 32), num_classes=10)
    assert model.patch_embed.out_channels == 64
    assert model.blocks[2].attn.q.out_features == 4 * 32
    assert model.blocks[2].mlp[0].out_features == 64 * 4


def test_factory_options_and_validation():
    for bad in (0, 2.0, False):
        with pytest.raises(ValueError, match="max_depth"):
            spaces.get("vit", max_depth=bad)
    with pytest.raises(ValueError, match="width_mult"):
        spaces.get("vit", width_mult=0)
    space = spaces.get("vit")
    with pytest.raises(ValueError, match="layer2_heads"):
        space.validate({**CONFIG, "layer2_heads": 3})
    with pytest.raises(ValueError, match="layer4_mlp_ratio"):
        space.validate({**CONFIG, "layer4_mlp_ratio": 2})
    with pytest.raises(ValueError, match="patch_size"):
        space.validate({**CONFIG, "patch_size": 16})
