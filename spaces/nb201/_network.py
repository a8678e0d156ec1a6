"""The NAS-Bench-201 networks: the benchmark's operations, cell and skeleton, the stand-alone
network ``build`` returns, and the weight-sharing supernet (mixed edges for differentiable
search)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from nas_hpo.oneshot import is_relaxed, mixed
from nas_hpo.spaces.nb201._names import (
    EDGES,
    IMAGENET_STEM_FROM,
    N_NODES,
    OPS,
    _op,
    arch_str,
    edge_name,
    is_input_independent,
)


class ReLUConvBN(nn.Sequential):
    """ReLU → convolution without bias → batch norm (the benchmark's ``nor_conv`` op)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The ``none`` operation; the cell skips it, this module only shows the edge."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def make_op(op: str, channels: int) -> nn.Module:
    """The module of operation ``op`` on ``channels`` channels (stride 1, as in every cell)."""
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NAS-Bench-201 operation {op!r}; operations: {list(OPS)}")


class Cell(nn.Module):
    """The searched cell: node ``i`` sums its non-``none`` input edges, the output is node 3."""

    def __init__(self, config: Mapping[str, Any], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict(
            {edge_name(i, j): make_op(_op(config, edge_name(i, j)), channels) for i, j in EDGES}
        )
        # For each node 1..3, the (edge, source node) pairs that contribute; a node without
        # any is zeros.
        self._inputs: list[list[tuple[str, int]]] = [
            [(edge_name(i, j), j) for j in range(i) if config[edge_name(i, j)] != "none"]
            for i in range(1, N_NODES)
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for inputs in self._inputs:
            node: torch.Tensor | None = None
            for name, j in inputs:
                y = self.edges[name](nodes[j])
                node = y if node is None else node + y
            nodes.append(torch.zeros_like(x) if node is None else node)
        return nodes[-1]


class ResidualReduction(nn.Module):
    """The benchmark's reduction block between stages: ReLU-conv3×3(stride 2)-BN,
    ReLU-conv3×3-BN, plus a shortcut of 2×2 average pooling and a 1×1 convolution."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        # ceil_mode: odd maps and a 1×1 map give the strided convolution's ceil(size / 2) here
        # too; on even maps it is the benchmark's plain 2×2 pooling.
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, 2, ceil_mode=True), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """Stem, three stages of cells with a residual reduction between them, BN-ReLU-pool-linear
    head. ``input_independent`` is true when the output ignores the input."""

    def __init__(
        self,
        stem: nn.Module,
        cells: list[nn.Module],
        c_last: int,
        num_classes: int,
        *,
        arch: str,
        input_independent: bool,
    ) -> None:
        super().__init__()
        self.stem = stem
        self.cells = nn.Sequential(*cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_last), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_last, num_classes)
        self.arch = arch
        self.input_independent = input_independent

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


def _skeleton(input_shape: tuple[int, ...], C: int, N: int,
              cell: Callable[[int], nn.Module]) -> tuple[nn.Module, list[nn.Module], int]:
    """The stem, the stages (``cell(channels)`` N times each, reductions between) and the
    last stage's channels."""
    c_in, h, w = input_shape
    if min(h, w) >= IMAGENET_STEM_FROM:
        stem: nn.Module = nn.Sequential(
            nn.Conv2d(c_in, C, 3, 2, 1, bias=False),
            nn.BatchNorm2d(C),
            nn.MaxPool2d(3, 2, 1),
        )
    else:
        stem = nn.Sequential(nn.Conv2d(c_in, C, 3, 1, 1, bias=False), nn.BatchNorm2d(C))
    cells: list[nn.Module] = []
    c_prev = C
    for stage in range(3):
        c = C * 2**stage
        if stage > 0:
            cells.append(ResidualReduction(c_prev, c))
        cells.extend(cell(c) for _ in range(N))
        c_prev = c
    return stem, cells, c_prev


def build(
    config: Mapping[str, Any],
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    C: int = 16,
    N: int = 5,
) -> NB201Network:
    """The network of ``config`` for inputs of shape ``(channels, H, W)``."""
    stem, cells, c_last = _skeleton(input_shape, C, N, lambda c: Cell(config, c))
    return NB201Network(
        stem,
        cells,
        c_last,
        num_classes,
        arch=arch_str(config),
        input_independent=is_input_independent(config),
    )


# ---------------------------------------------------------------------- supernet


class SuperCell(nn.Module):
    """Every operation of every edge (``edges[edge][op]``; ``none`` has no module): the cell
    of one architecture is the path ``forward(x, config)`` takes through it; a relaxed config
    mixes each edge's operations (``nas_hpo.oneshot.mixed``; ``partial``: PC-DARTS' channel
    fraction, the ops then being built for ``channels // partial``)."""

    def __init__(self, channels: int, partial: int = 1) -> None:
        super().__init__()
        self.edges = nn.ModuleDict({
            edge_name(i, j): nn.ModuleDict({op: make_op(op, channels // partial) for op in OPS
                                            if op != "none"})
            for i, j in EDGES
        })

    def forward(self, x: torch.Tensor, config: Mapping[str, Any]) -> torch.Tensor:
        if is_relaxed(config):
            return self._mixed(x, config)
        nodes = [x]
        for i in range(1, N_NODES):
            node: torch.Tensor | None = None
            for j in range(i):
                op = config[edge_name(i, j)]
                if op == "none":
                    continue
                y = self.edges[edge_name(i, j)][op](nodes[j])
                node = y if node is None else node + y
            nodes.append(torch.zeros_like(x) if node is None else node)
        return nodes[-1]

    def _mixed(self, x: torch.Tensor, config: Mapping[str, Any]) -> torch.Tensor:
        nodes = [x]
        for i in range(1, N_NODES):
            parts = [mixed(config, edge_name(i, j), {"none": None, **self.edges[edge_name(i, j)]},
                           nodes[j]) for j in range(i)]
            nodes.append(sum(parts[1:], parts[0]))  # type: ignore[arg-type]
        return nodes[-1]


class NB201Supernet(nn.Module):
    """The weight-sharing supernet of the space (as in the single-path one-shot methods run on
    NAS-Bench-201: SPOS, FairNAS): the benchmark's skeleton with ``SuperCell``s, so that
    ``supernet(x, config)`` computes exactly what ``build(config)`` computes with the path's
    weights (``subnet`` makes that network)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, C: int, N: int,
                 partial_channels: int = 1) -> None:
        super().__init__()
        self.input_shape, self.num_classes, self.C, self.N = input_shape, num_classes, C, N
        self.partial_channels = partial_channels
        stem, cells, c_last = _skeleton(input_shape, C, N,
                                        lambda c: SuperCell(c, partial_channels))
        self.stem = stem
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_last), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_last, num_classes)

    def forward(self, x: torch.Tensor, config: Mapping[str, Any]) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, config) if isinstance(cell, SuperCell) else cell(x)
        x = self.lastact(x)
        return self.classifier(torch.flatten(self.pool(x), 1))

    def subnet(self, config: Mapping[str, Any]) -> NB201Network:
        """``build(config)`` with the supernet's weights and BN statistics of that path (to
        fine-tune the architecture a search found from its inherited weights)."""
        if self.partial_channels > 1:
            raise ValueError("a supernet of partial channels holds no whole network's weights")
        net = build(config, input_shape=self.input_shape, num_classes=self.num_classes,
                    C=self.C, N=self.N)
        state = {}
        for key, value in self.state_dict().items():
            parts = key.split(".")
            if parts[0] == "cells" and parts[2] == "edges":
                # cells.K.edges.EDGE.OP.rest -> cells.K.edges.EDGE.rest, for the chosen op
                if config[parts[3]] != parts[4]:
                    continue
                key = ".".join(parts[:4] + parts[5:])
            state[key] = value
        net.load_state_dict(state)
        return net
