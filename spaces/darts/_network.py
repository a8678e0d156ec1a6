"""The DARTS space's networks: DARTS' operations, cells and stems, the stand-alone network
``build`` returns, and the one-shot supernet (all 7 operations on all 14 edges)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas_hpo.oneshot import Relaxed, is_zero, mixed, weight_of
from nas_hpo.spaces.darts._genotype import (
    CONCAT,
    IMAGENET_STEM_FROM,
    NODES,
    OPS,
    STEM_MULTIPLIER,
    CellSpec,
    _cell_of,
    edge_index,
    edge_param,
    input_pairs,
    inputs_param,
)

# --------------------------------------------------------------------------- operations


class ReLUConvBN(nn.Sequential):
    """ReLU, 1×1 convolution, BN: the preprocessing of a cell input."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


class FactorizedReduce(nn.Module):
    """ReLU; two 1×1 stride-2 convolutions, the second on the map shifted by one pixel, each to
    half of the output channels; concatenated; BN. Halves the resolution (to ``ceil(H / 2)``:
    odd maps are padded at the bottom / right to even size first)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            # Without this the shifted branch is one pixel shorter than the other on odd maps.
            x = F.pad(x, (0, w % 2, 0, h % 2))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def _sep_conv(c: int, kernel: int, stride: int) -> nn.Module:
    pad = kernel // 2
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(c, c, kernel, stride, pad, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False),
        nn.BatchNorm2d(c),
        nn.ReLU(),
        nn.Conv2d(c, c, kernel, 1, pad, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False),
        nn.BatchNorm2d(c),
    )


def _dil_conv(c: int, kernel: int, stride: int) -> nn.Module:
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(c, c, kernel, stride, kernel - 1, dilation=2, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False),
        nn.BatchNorm2d(c),
    )


# Each op as f(channels, stride); every one maps an H×W map to ceil(H / stride) × ....
OP_MODULES: dict[str, Callable[[int, int], nn.Module]] = {
    "max_pool_3x3": lambda c, stride: nn.MaxPool2d(3, stride, 1),
    "avg_pool_3x3": lambda c, stride: nn.AvgPool2d(3, stride, 1, count_include_pad=False),
    "skip_connect": lambda c, stride: nn.Identity() if stride == 1 else FactorizedReduce(c, c),
    "sep_conv_3x3": lambda c, stride: _sep_conv(c, 3, stride),
    "sep_conv_5x5": lambda c, stride: _sep_conv(c, 5, stride),
    "dil_conv_3x3": lambda c, stride: _dil_conv(c, 3, stride),
    "dil_conv_5x5": lambda c, stride: _dil_conv(c, 5, stride),
}


# --------------------------------------------------------------------------- network


class Cell(nn.Module):
    """One cell of the evaluation network: preprocess both inputs to ``c`` channels, compute
    nodes 2..5, concatenate them (``4 · c`` channels)."""

    def __init__(
        self,
        spec: CellSpec,
        c_prev_prev: int,
        c_prev: int,
        c: int,
        *,
        reduction: bool,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0: nn.Module = (
            FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c)
        )
        self.preprocess1 = ReLUConvBN(c_prev, c)
        self.indices = [source for _, source in spec]
        self.ops = nn.ModuleList(
            OP_MODULES[op](c, 2 if reduction and source < 2 else 1) for op, source in spec
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(len(NODES)):
            a, b = self.indices[2 * i], self.indices[2 * i + 1]
            states.append(self.ops[2 * i](states[a]) + self.ops[2 * i + 1](states[b]))
        return torch.cat(states[2:], dim=1)


class CifarStem(nn.Module):
    """3×3 convolution and BN; both inputs of the first cell are its output."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.bn(self.conv(x))
        return s, s


class ImageNetStem(nn.Module):
    """DARTS' ImageNet stem: ``stem0`` (two stride-2 3×3 convolutions) gives the first cell's
    c_{k-2}, ``stem1`` (one more) its c_{k-1}, at 1/4 and 1/8 of the input's resolution."""

    def __init__(self, c_in: int, c: int) -> None:
        super().__init__()
        half = max(1, c // 2)
        self.stem0 = nn.Sequential(
            nn.Conv2d(c_in, half, 3, 2, 1, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(),
            nn.Conv2d(half, c, 3, 2, 1, bias=False),
            nn.BatchNorm2d(c),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(), nn.Conv2d(c, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s0 = self.stem0(x)
        return s0, self.stem1(s0)


class DartsNetwork(nn.Module):
    """Stem, cells (each reading the outputs of the two before it), global pooling, linear."""

    def __init__(
        self, stem: nn.Module, cells: Sequence[Cell], c_last: int, num_classes: int
    ) -> None:
        super().__init__()
        self.stem = stem
        self.cells = nn.ModuleList(cells)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0, s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(torch.flatten(self.global_pooling(s1), 1))


def _check_options(init_channels: Any, layers: Any) -> None:
    for name, value in (("init_channels", init_channels), ("layers", layers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def build(
    config: Mapping[str, Any],
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    init_channels: int = 16,
    layers: int = 8,
) -> nn.Module:
    """DARTS' evaluation network of ``config`` for inputs of shape ``(C, H, W)``: ``layers``
    cells starting at ``init_channels`` channels (DARTS evaluates at 36 and 20)."""
    _check_options(init_channels, layers)
    normal, reduce = _cell_of(config, "normal"), _cell_of(config, "reduce")
    stem, plan, c_last = _layout(input_shape, init_channels, layers)
    cells = [Cell(reduce if reduction else normal, c_pp, c_p, c, reduction=reduction,
                  reduction_prev=reduction_prev)
             for c_pp, c_p, c, reduction, reduction_prev in plan]
    return DartsNetwork(stem, cells, c_last, num_classes)


def _layout(input_shape: tuple[int, ...], init_channels: int, layers: int
            ) -> tuple[nn.Module, list[tuple[int, int, int, bool, bool]], int]:
    """The stem; per cell (c_prev_prev, c_prev, c, reduction, reduction_prev); the last
    cell's output channels."""
    c_in, h, w = input_shape
    c = init_channels
    stem: nn.Module
    if min(h, w) >= IMAGENET_STEM_FROM:
        stem = ImageNetStem(c_in, c)
        c_prev_prev = c_prev = c
        reduction_prev = True  # the stem's two outputs differ in resolution by 2
    else:
        stem = CifarStem(c_in, STEM_MULTIPLIER * c)
        c_prev_prev = c_prev = STEM_MULTIPLIER * c
        reduction_prev = False
    reductions = {layers // 3, 2 * layers // 3}
    plan = []
    for i in range(layers):
        reduction = i in reductions
        if reduction:
            c *= 2
        plan.append((c_prev_prev, c_prev, c, reduction, reduction_prev))
        c_prev_prev, c_prev = c_prev, len(CONCAT) * c
        reduction_prev = reduction
    return stem, plan, c_prev


class SuperCell(nn.Module):
    """Every operation on every one of the 14 edges (``edges[e][op]``, at the stride the edge
    has in a reduction cell): one cell of an architecture is the path ``forward(s0, s1,
    spec)`` takes, for the cell's (op, input) pairs."""

    def __init__(self, c_prev_prev: int, c_prev: int, c: int, *, reduction: bool,
                 reduction_prev: bool, partial: int = 1) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0: nn.Module = (
            FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c)
        )
        self.preprocess1 = ReLUConvBN(c_prev, c)
        self.edges = nn.ModuleList()
        for node in NODES:
            for source in range(node):
                stride = 2 if reduction and source < 2 else 1
                self.edges.append(nn.ModuleDict({op: OP_MODULES[op](c // partial, stride)
                                                 for op in OPS}))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, spec: CellSpec | Relaxed
                ) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        if isinstance(spec, Relaxed):
            return self._mixed(states, spec)
        for i, node in enumerate(NODES):
            (op_a, a), (op_b, b) = spec[2 * i], spec[2 * i + 1]
            states.append(self.edges[edge_index(node, a)][op_a](states[a])
                          + self.edges[edge_index(node, b)][op_b](states[b]))
        return torch.cat(states[2:], dim=1)

    def _mixed(self, states: list[torch.Tensor], config: Relaxed) -> torch.Tensor:
        """Every edge's mixed operation, weighted by how much of the node's input-pair
        distribution contains the edge's source (node 2 always reads 0 and 1)."""
        cell = "reduce" if self.reduction else "normal"
        for node in NODES:
            total: Any = 0.0
            for source in range(node):
                share = 1.0 if node == 2 else weight_of(
                    config, inputs_param(cell, node),
                    [p for p in input_pairs(node) if str(source) in p.split("_")])
                if is_zero(share):
                    total = total + share  # GDAS: an input not drawn is not computed
                    continue
                e = edge_index(node, source)
                total = total + share * mixed(config, edge_param(cell, e), self.edges[e],
                                              states[source])
            states.append(total)
        return torch.cat(states[2:], dim=1)


class DartsSupernet(nn.Module):
    """The weight-sharing supernet of the space (DARTS' one-shot model run one path at a time,
    as SPOS / FairNAS train it): the evaluation network's skeleton with ``SuperCell``s, so
    that ``supernet(x, config)`` computes exactly what ``build(config)`` computes with the
    path's weights (``subnet`` makes that network)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, init_channels: int,
                 layers: int, partial_channels: int = 1) -> None:
        super().__init__()
        self.input_shape, self.num_classes = input_shape, num_classes
        self.init_channels, self.layers = init_channels, layers
        self.partial_channels = partial_channels
        stem, plan, c_last = _layout(input_shape, init_channels, layers)
        self.stem = stem
        self.cells = nn.ModuleList(
            SuperCell(c_pp, c_p, c, reduction=reduction, reduction_prev=reduction_prev,
                      partial=partial_channels)
            for c_pp, c_p, c, reduction, reduction_prev in plan
        )
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_last, num_classes)

    def forward(self, x: torch.Tensor, config: Mapping[str, Any]) -> torch.Tensor:
        specs: dict[bool, Any] = (
            {False: config, True: config} if isinstance(config, Relaxed)
            else {False: _cell_of(config, "normal"), True: _cell_of(config, "reduce")})
        s0, s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, specs[cell.reduction])
        return self.classifier(torch.flatten(self.global_pooling(s1), 1))

    def subnet(self, config: Mapping[str, Any]) -> nn.Module:
        """``build(config)`` with the supernet's weights and BN statistics of that path."""
        if self.partial_channels > 1:
            raise ValueError("a supernet of partial channels holds no whole network's weights")
        net = build(config, input_shape=self.input_shape, num_classes=self.num_classes,
                    init_channels=self.init_channels, layers=self.layers)
        specs = {False: _cell_of(config, "normal"), True: _cell_of(config, "reduce")}
        # The built cell's ops[k] is the k-th (op, input) pair: edge (node, input) of the path.
        rename = {}
        for i, cell in enumerate(self.cells):
            for k, (op, source) in enumerate(specs[cell.reduction]):
                edge = edge_index(NODES[k // 2], source)
                rename[f"cells.{i}.edges.{edge}.{op}."] = f"cells.{i}.ops.{k}."
        state = {}
        for key, value in self.state_dict().items():
            if ".edges." in key:
                prefix = ".".join(key.split(".")[:5]) + "."
                if prefix not in rename:
                    continue
                key = rename[prefix] + key[len(prefix):]
            state[key] = value
        net.load_state_dict(state)
        return net


