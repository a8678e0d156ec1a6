"""``chain``: a chain-structured network of up to ``max_layers`` layers, its depth searched too.

This is the textbook conditional NAS space of Elsken, Metzen and Hutter, "Neural Architecture
Search: A Survey" (JMLR 2019, Section 2, the chain-structured space): a sequence of layers whose number is
itself a hyperparameter, each layer choosing its operation and that operation's settings, so the
parameters of layer ``k`` exist only when the chain has at least ``k`` layers.

Parameters:

- ``n_layers``: the number of layers, ``1 .. max_layers``.
- ``layer{k}_type``: ``conv`` (k×k convolution, batch norm, activation), ``dwsep`` (depthwise
  k×k convolution then pointwise 1×1 convolution, batch norm, activation) or ``mlp`` (a linear
  layer and activation on the flattened input). Active when ``n_layers >= k``.
- ``layer{k}_width``: output channels of a conv / dwsep layer, output units of an mlp layer.
- ``layer{k}_kernel``: the kernel size; active only for conv and dwsep layers.
- ``layer{k}_activation``: ``relu``, ``gelu`` or ``silu``.

Once a layer is ``mlp`` the tensor is flat, so a conv or dwsep layer may not follow it: a
forbidden clause per pair of neighbouring layers says so (a clause fires only when both of its
layers exist). A valid chain is therefore some convolutional layers followed by some mlp layers.

Convolutions keep the resolution (stride 1, "same" padding); after each conv / dwsep layer a
2×2 max-pool halves the feature map while it is at least 16×16, so a 32×32 input is pooled twice
and an 8×8 digit not at all. Where an mlp layer flattens a feature map, an adaptive average pool
first shrinks the map until at most ``MAX_FLAT_FEATURES`` values remain (a 32×32×3 image
passes whole; a 224×224 one would otherwise need a first linear layer of a hundred million
weights). The head is global average pooling (when the tensor is still a map) and a linear layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from nas_hpo._options import AtLeast1, Positive
from nas_hpo.space import (
    And,
    Categorical,
    Condition,
    Constant,
    ForbiddenAnd,
    ForbiddenEquals,
    ForbiddenIn,
    GreaterThan,
    Hyperparameter,
    In,
    SearchSpace,
)
from nas_hpo.spaces import register

TYPES = ("conv", "dwsep", "mlp")
CONV_TYPES = ("conv", "dwsep")
WIDTHS = (16, 32, 64, 128)
KERNELS = (3, 5)
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}
# The feature map is pooled after a convolutional layer only while it is at least this large.
POOL_WHILE_AT_LEAST = 16
MAX_FLAT_FEATURES = 4096


def _scaled(width: int, width_mult: float) -> int:
    return max(1, int(round(width * width_mult)))


def _conv(c_in: int, c_out: int, kernel: int, act: nn.Module) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2, bias=False), nn.BatchNorm2d(c_out), act
    )


def _dwsep(c_in: int, c_out: int, kernel: int, act: nn.Module) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, kernel, 1, kernel // 2, groups=c_in, bias=False),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
        act,
    )


_CONV_LAYERS: dict[str, Callable[[int, int, int, nn.Module], nn.Sequential]] = {
    "conv": _conv,
    "dwsep": _dwsep,
}


def _flatten(c: int, h: int, w: int) -> tuple[nn.Module, int]:
    """A module that flattens a ``c×h×w`` map to at most ``MAX_FLAT_FEATURES`` values, and the
    number of values it yields."""
    side = max(1, math.isqrt(MAX_FLAT_FEATURES // c))
    if h <= side and w <= side:
        return nn.Flatten(1), c * h * w
    h, w = min(h, side), min(w, side)
    return nn.Sequential(nn.AdaptiveAvgPool2d((h, w)), nn.Flatten(1)), c * h * w


class ChainNet(nn.Module):
    """The layers in order, then the head (global average pooling where still a map)."""

    def __init__(self, layers: list[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(x))


def build(
    config: Mapping[str, Any],
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    width_mult: float = 1.0,
) -> nn.Module:
    """The network of ``config`` for inputs of shape ``(C, H, W)``."""
    c, h, w = input_shape
    flat: int | None = None  # number of features once the tensor is flat
    layers: list[nn.Module] = []
    for k in range(1, int(config["n_layers"]) + 1):
        kind = str(config[f"layer{k}_type"])
        width = _scaled(int(config[f"layer{k}_width"]), width_mult)
        act = ACTIVATIONS[str(config[f"layer{k}_activation"])]()
        if kind in _CONV_LAYERS:
            if flat is not None:  # the forbidden clauses keep a valid config from this
                raise ValueError(f"layer{k}_type: a {kind} layer cannot follow an mlp layer")
            layer = _CONV_LAYERS[kind](c, width, int(config[f"layer{k}_kernel"]), act)
            c = width
            if min(h, w) >= POOL_WHILE_AT_LEAST:
                layer.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            layers.append(layer)
        else:
            parts: list[nn.Module] = []
            if flat is None:
                flatten, flat = _flatten(c, h, w)
                parts.append(flatten)
            parts += [nn.Linear(flat, width), act]
            flat = width
            layers.append(nn.Sequential(*parts))
    if flat is None:
        head: nn.Module = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(c, num_classes)
        )
    else:
        head = nn.Linear(flat, num_classes)
    return ChainNet(layers, head)


def arch_str(config: Mapping[str, Any]) -> str:
    """A short readable name, one segment per layer: ``conv3-32-relu|dwsep5-64-gelu|mlp-128-silu``."""
    segments = []
    for k in range(1, int(config["n_layers"]) + 1):
        kind = config[f"layer{k}_type"]
        kernel = config[f"layer{k}_kernel"] if kind in CONV_TYPES else ""
        width, act = config[f"layer{k}_width"], config[f"layer{k}_activation"]
        segments.append(f"{kind}{kernel}-{int(width)}-{act}")
    return "|".join(segments)


@register("chain", size=sum(48**j * 12 ** (n - j) for n in range(1, 9) for j in range(n + 1)),
          test_options={"max_layers": 3, "width_mult": 0.5})
def chain(*, max_layers: AtLeast1 = 8, width_mult: Positive = 1.0) -> SearchSpace:
    """The space of chains of 1 to ``max_layers`` layers; ``width_mult`` scales every layer's
    width when the network is built (the width fidelity of low-cost training), not the
    parameter values."""
    depths = tuple(range(1, max_layers + 1))
    params: list[Hyperparameter] = [
        Categorical("n_layers", depths, default=min(3, max_layers), ordered=True)
        if max_layers > 1
        else Constant("n_layers", 1)
    ]
    conditions: dict[str, Condition] = {}
    forbidden = []
    for k in depths:
        exists = GreaterThan("n_layers", k - 1) if k > 1 else None
        params += [
            Categorical(f"layer{k}_type", TYPES),
            Categorical(f"layer{k}_width", WIDTHS, ordered=True),
            Categorical(f"layer{k}_kernel", KERNELS, ordered=True),
            Categorical(f"layer{k}_activation", tuple(ACTIVATIONS)),
        ]
        is_conv = In(f"layer{k}_type", CONV_TYPES)
        conditions[f"layer{k}_kernel"] = is_conv if exists is None else And(exists, is_conv)
        if exists is not None:
            for name in ("type", "width", "activation"):
                conditions[f"layer{k}_{name}"] = exists
            forbidden.append(
                ForbiddenAnd(
                    ForbiddenEquals(f"layer{k - 1}_type", "mlp"),
                    ForbiddenIn(f"layer{k}_type", CONV_TYPES),
                )
            )

    def builder(
        config: Mapping[str, Any], *, input_shape: tuple[int, ...], num_classes: int
    ) -> nn.Module:
        return build(
            config, input_shape=input_shape, num_classes=num_classes, width_mult=width_mult
        )

    return SearchSpace(params, conditions, forbidden, builder=builder, arch_key=arch_str)
