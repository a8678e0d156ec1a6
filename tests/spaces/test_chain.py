"""The ``chain`` space: its exact size against an independent count and a brute force, the
conditions and forbidden clauses it declares, and the networks it builds."""

from __future__ import annotations

import itertools

import pytest
import torch

from nas_hpo import SearchSpace, spaces
from nas_hpo.space import And, Constant, GreaterThan, In

TYPES = ("conv", "dwsep", "mlp")
WIDTHS = (16, 32, 64, 128)
KERNELS = (3, 5)
ACTS = ("relu", "gelu", "silu")


def count_chains(max_layers: int) -> int:
    """Valid chains by a dynamic program over the layers: ``conv_end[n]`` / ``mlp_end[n]`` count
    chains of ``n`` layers whose last layer is convolutional / mlp. A conv or dwsep layer has
    2 types × widths × kernels × activations settings and may follow only a convolutional
    layer; an mlp layer has widths × activations and may follow anything."""
    conv_settings = 2 * len(WIDTHS) * len(KERNELS) * len(ACTS)
    mlp_settings = len(WIDTHS) * len(ACTS)
    conv_end, mlp_end = conv_settings, mlp_settings
    total = conv_end + mlp_end
    for _ in range(2, max_layers + 1):
        conv_end, mlp_end = conv_end * conv_settings, (conv_end + mlp_end) * mlp_settings
        total += conv_end + mlp_end
    return total


def _chain_is_valid(types: tuple[str, ...]) -> bool:
    # No convolutional layer once the tensor is flat.
    return all(not (a == "mlp" and b != "mlp") for a, b in itertools.pairwise(types))


def test_dynamic_program_agrees_with_the_closed_form():
    # Sum over depths n of sum over the number j of convolutional layers: 48^j 12^(n-j).
    for m in range(1, 9):
        closed = sum(48**j * 12 ** (n - j) for n in range(1, m + 1) for j in range(n + 1))
        assert count_chains(m) == closed
    assert count_chains(1) == 60 and count_chains(2) == 60 + 48 * 48 + 48 * 12 + 12 * 12


@pytest.mark.parametrize("max_layers", [1, 2, 3, 5, 8])
def test_size_is_exact(max_layers):
    space = spaces.get("chain", max_layers=max_layers)
    assert space.size() == count_chains(max_layers)


def test_default_size():
    assert spaces.get("chain").size() == count_chains(8) == 38_371_629_759_180


def test_brute_force_two_layers_every_parameter_present_or_absent():
    """Every assignment where each parameter is absent or takes any value: exactly the
    independently derived ones validate, and they are as many as ``size()`` says."""
    space = spaces.get("chain", max_layers=2)
    names = space.order
    domains = [[None, *space[n].values()] for n in names]
    domains[names.index("n_layers")] = [1, 2]  # never inactive; absent is tested below
    n_valid = 0
    for values in itertools.product(*domains):
        config = {n: v for n, v in zip(names, values, strict=True) if v is not None}
        expected = _expected_valid(config, 2)
        assert space.is_valid(config) == expected, config
        n_valid += expected
    assert n_valid == space.size() == count_chains(2) == 3084


def _expected_valid(config: dict, max_layers: int) -> bool:
    """Validity written out from the definition, without the space model."""
    n = config["n_layers"]
    types = []
    for k in range(1, max_layers + 1):
        exists = k <= n
        for name in ("type", "width", "activation"):
            if (f"layer{k}_{name}" in config) != exists:
                return False
        if not exists:
            if f"layer{k}_kernel" in config:
                return False
            continue
        kind = config[f"layer{k}_type"]
        if (f"layer{k}_kernel" in config) != (kind != "mlp"):
            return False
        types.append(kind)
    return _chain_is_valid(tuple(types))


def _chains(max_layers: int):
    """Every configuration the conditions allow (forbidden or not), built from the definition."""
    per_layer = []
    for kind in TYPES:
        for width, act in itertools.product(WIDTHS, ACTS):
            for kernel in KERNELS if kind != "mlp" else (None,):
                per_layer.append((kind, width, act, kernel))
    for n in range(1, max_layers + 1):
        for layers in itertools.product(per_layer, repeat=n):
            config = {"n_layers": n}
            for k, (kind, width, act, kernel) in enumerate(layers, start=1):
                config[f"layer{k}_type"] = kind
                config[f"layer{k}_width"] = width
                config[f"layer{k}_activation"] = act
                if kernel is not None:
                    config[f"layer{k}_kernel"] = kernel
            yield config, tuple(layer[0] for layer in layers)


def test_brute_force_three_layers():
    """All 219,660 condition-consistent configs of up to 3 layers: the forbidden clauses keep
    exactly the chains with no convolution after an mlp; a sample of each kind validates (or
    not) accordingly."""
    space = spaces.get("chain", max_layers=3)
    n_valid = n_all = 0
    for i, (config, types) in enumerate(_chains(3)):
        ok = _chain_is_valid(types)
        assert space.is_forbidden(config) != ok, config
        n_valid += ok
        n_all += 1
        if i % 97 == 0:  # validate is slower; a spread-out sample suffices
            assert space.is_valid(config) == ok, config
    assert n_all == 60 + 60**2 + 60**3
    assert n_valid == space.size() == count_chains(3) == 149_964


def test_conditions_and_clauses_are_the_declared_ones():
    space = spaces.get("chain", max_layers=3)
    cond = space.conditions
    assert "layer1_type" not in cond and "n_layers" not in cond
    assert cond["layer1_kernel"] == In("layer1_type", ("conv", "dwsep"))
    assert cond["layer3_width"] == GreaterThan("n_layers", 2)
    assert cond["layer2_kernel"] == And(
        GreaterThan("n_layers", 1), In("layer2_type", ("conv", "dwsep"))
    )
    assert len(space.forbidden) == 2
    for name in ("n_layers", "layer1_width", "layer2_kernel"):
        assert space[name].ordered  # numeric choices compare by order


def test_validate_names_the_offending_parameter():
    space = spaces.get("chain", max_layers=3)
    good = {
        "n_layers": 2,
        "layer1_type": "conv",
        "layer1_width": 32,
        "layer1_kernel": 3,
        "layer1_activation": "relu",
        "layer2_type": "mlp",
        "layer2_width": 16,
        "layer2_activation": "gelu",
    }
    space.validate(good)
    with pytest.raises(ValueError, match="layer2_kernel"):
        space.validate({**good, "layer2_kernel": 3})
    with pytest.raises(ValueError, match="layer3_type"):
        space.validate({**good, "layer3_type": "mlp"})
    with pytest.raises(ValueError, match="forbidden.*layer1_type"):
        space.validate(_mlp_then_conv(good))
    with pytest.raises(ValueError, match="layer1_width"):
        space.validate({**good, "layer1_width": 48})


def _mlp_then_conv(good: dict) -> dict:
    bad = {k: v for k, v in good.items() if k != "layer1_kernel"}
    bad.update(layer1_type="mlp", layer2_type="conv", layer2_kernel=5)
    return bad


def test_factory_options():
    with pytest.raises(ValueError, match="max_layers"):
        spaces.get("chain", max_layers=0)
    with pytest.raises(ValueError, match="max_layers"):
        spaces.get("chain", max_layers=2.5)
    with pytest.raises(ValueError, match="width_mult"):
        spaces.get("chain", width_mult=0)
    one = spaces.get("chain", max_layers=1)
    assert one["n_layers"] == Constant("n_layers", 1) and one.size() == 60
    assert SearchSpace.from_configspace(one.to_configspace()) == one
    assert len(spaces.get("chain", max_layers=3)) == 1 + 4 * 3


MIXED = {
    "n_layers": 4,
    "layer1_type": "conv",
    "layer1_width": 32,
    "layer1_kernel": 3,
    "layer1_activation": "relu",
    "layer2_type": "dwsep",
    "layer2_width": 64,
    "layer2_kernel": 5,
    "layer2_activation": "gelu",
    "layer3_type": "mlp",
    "layer3_width": 128,
    "layer3_activation": "silu",
    "layer4_type": "mlp",
    "layer4_width": 16,
    "layer4_activation": "relu",
}


def test_structure_of_a_mixed_chain():
    space = spaces.get("chain")
    assert space.arch_key(MIXED) == "conv3-32-relu|dwsep5-64-gelu|mlp-128-silu|mlp-16-relu"
    model = space.build(MIXED, input_shape=(3, 32, 32), num_classes=10)
    conv, dw, mlp1, mlp2 = model.layers
    assert conv[0].kernel_size == (3, 3) and conv[0].out_channels == 32
    assert isinstance(conv[2], torch.nn.ReLU) and isinstance(conv[-1], torch.nn.MaxPool2d)
    depthwise, pointwise = dw[0], dw[1]
    assert depthwise.kernel_size == (5, 5) and depthwise.groups == 32
    assert pointwise.kernel_size == (1, 1) and pointwise.out_channels == 64
    assert isinstance(dw[3], torch.nn.GELU) and isinstance(dw[-1], torch.nn.MaxPool2d)
    # 32 → 16 → 8 pixels; 8·8·64 = 4096 values flatten without pooling
    linear1 = next(m for m in mlp1 if isinstance(m, torch.nn.Linear))
    assert linear1.in_features == 8 * 8 * 64 and linear1.out_features == 128
    assert not any(isinstance(m, torch.nn.AdaptiveAvgPool2d) for m in mlp1.modules())
    assert isinstance(mlp1[-1], torch.nn.SiLU)
    assert mlp2[0].in_features == 128 and mlp2[0].out_features == 16
    assert model.head.in_features == 16 and model.head.out_features == 10
    _forward_backward(model, (3, 32, 32))


def _forward_backward(model: torch.nn.Module, shape: tuple[int, ...], batch: int = 2) -> None:
    out = model(torch.randn(batch, *shape))
    assert out.shape == (batch, model_classes(model)) and torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(g.abs().sum() > 0 for g in grads if g is not None)


def model_classes(model: torch.nn.Module) -> int:
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1].out_features


def test_convolutions_keep_small_maps_and_pool_large_ones():
    space = spaces.get("chain")
    config = space.default()
    assert [config[f"layer{k}_type"] for k in range(1, 4)] == ["conv"] * 3
    torch.manual_seed(0)
    for shape, side in [((1, 8, 8), 8), ((3, 32, 32), 8), ((3, 20, 37), 10)]:
        model = space.build(config, input_shape=shape, num_classes=3)
        feats = model.layers(torch.randn(2, *shape))
        assert min(feats.shape[-2:]) == side
        _forward_backward(model, shape)
    # 16 is pooled once to 8, then no further
    model = space.build(config, input_shape=(1, 16, 16), num_classes=3)
    assert model.layers(torch.randn(1, 1, 16, 16)).shape[-2:] == (8, 8)


def test_mlp_on_raw_images():
    space = spaces.get("chain")
    config = {"n_layers": 1, "layer1_type": "mlp", "layer1_width": 64, "layer1_activation": "gelu"}
    space.validate(config)
    digits = space.build(config, input_shape=(1, 8, 8), num_classes=10)
    assert digits.layers[0][1].in_features == 64  # the 8×8 digit as 64 pixels
    _forward_backward(digits, (1, 8, 8))
    # 224×224×3 is average-pooled to 36×36 first (36 = isqrt(4096 // 3)), at most 4096 values
    big = space.build(config, input_shape=(3, 224, 224), num_classes=5).eval()
    assert big.layers[0][1].in_features == 3 * 36 * 36
    with torch.no_grad():
        assert big(torch.randn(1, 3, 224, 224)).shape == (1, 5)


def test_width_mult_scales_the_built_widths_not_the_space():
    base = spaces.get("chain")
    half = spaces.get("chain", width_mult=0.5)
    assert half == base
    model = half.build(MIXED, input_shape=(3, 32, 32), num_classes=10)
    assert model.layers[0][0].out_channels == 16 and model.layers[3][0].out_features == 8
    # the width fidelity: the registered space rebuilt at half width
    narrow = spaces.widened(base, 0.5).build(MIXED, input_shape=(1, 8, 8), num_classes=2)
    assert narrow.layers[1][1].out_channels == 32


def test_imagenet_sized_deep_conv_chain():
    space = spaces.get("chain")
    config = space.default()
    model = space.build(config, input_shape=(3, 224, 224), num_classes=5).eval()
    with torch.no_grad():
        # three conv layers, each pooled: 224 → 28
        assert model.layers(torch.randn(1, 3, 224, 224)).shape[-2:] == (28, 28)
