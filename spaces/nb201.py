"""``nb201``: the NAS-Bench-201 cell space, 6 edges of 5 operations, 15,625 architectures.

The space of NAS-Bench-201 (Dong and Yang, "NAS-Bench-201: Extending the Scope of Reproducible
Neural Architecture Search", ICLR 2020), which NATS-Bench (Dong et al., TPAMI 2021) keeps as its
topology search space. A cell is a DAG on 4 nodes: node 0 is the cell's input, and node ``i``
(1, 2, 3) is the sum over every ``j < i`` of an operation applied to node ``j``; the cell's
output is node 3. Each of the 6 edges chooses one of ``OPS``:

- ``none``: zeros (the edge is absent);
- ``skip_connect``: the identity;
- ``nor_conv_1x1`` / ``nor_conv_3x3``: ReLU, convolution without bias (stride 1, "same"
  padding), batch norm;
- ``avg_pool_3x3``: 3×3 average pooling, stride 1, padding 1, not counting the padding.

Parameters: ``edge_{i}_{j}``, the operation on the edge from node ``j`` into node ``i``, an
unordered categorical over ``OPS`` whose default is ``nor_conv_3x3``; no conditions, so the space
has ``5**6 = 15,625`` configurations. Architectures are named by the benchmark's own string
(``arch_str`` / ``from_arch_str``), e.g.
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``:
the ``i``-th ``+``-separated group lists the edges into node ``i`` as ``op~j``. Results therefore
join NAS-Bench-201 / NATS-Bench tables by that string.

Network (``build``): the benchmark's macro skeleton (``TinyNetwork`` of its reference code): a
3×3 convolution stem to ``C`` channels and batch norm; three stages of ``N`` copies of the cell
with ``C``, ``2C`` and ``4C`` channels; between stages the benchmark's residual reduction block
(ReLU-conv3×3(stride 2)-BN, ReLU-conv3×3-BN, plus a shortcut of 2×2 average pooling and a 1×1
convolution, no activation after the sum); then batch norm, ReLU, global average pooling and a
linear classifier. With ``C=16, N=5``, a 3×32×32 input and 10 classes every architecture has
exactly the parameter count the benchmark publishes for it (batch-norm weights and biases
included, as the benchmark counts them).

What differs from the benchmark, and why (none of it changes a parameter count):

- The network returns the logits only (the reference returns the pooled features too).
- The shortcut's 2×2 average pooling rounds up (``ceil_mode``, averaging only the pixels a
  window covers), so that odd maps (a 28×28 input reaches 7×7) and maps smaller than 2×2 (8×8
  digits reach 2×2, then 1×1) give the strided convolution's ``ceil(size / 2)`` too, where the
  benchmark's pooling would give a different shape or none. On the benchmark's even maps it is
  exactly its own op.
- Inputs of at least ``IMAGENET_STEM_FROM`` pixels per side get a downsampling stem: the same
  3×3 convolution with stride 2, then a parameter-free 3×3 / stride-2 max-pool (ResNet's
  ImageNet stem), so a 224×224 image reaches the cells at 56×56 rather than 224×224, which would
  cost 16 times the compute of the benchmark's own skeleton.
- ``none`` edges are skipped rather than computed as ``x * 0``; a node with no other input is a
  tensor of zeros, which is what the benchmark computes for any finite input.

Architectures whose cell has no path of non-``none`` edges from node 0 to node 3 compute an
output that does not depend on the input (``is_input_independent``). They are valid members of
the benchmark and build and run; the built network says so in its ``input_independent``
attribute, so an objective can skip training them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from nas_hpo._options import AtLeast1, Positive
from nas_hpo.oneshot import is_relaxed, mixed
from nas_hpo.space import Categorical, SearchSpace
from nas_hpo.spaces import register

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
N_NODES = 4
# (i, j): the edge from node j into node i, in the order of the benchmark's string.
EDGES = tuple((i, j) for i in range(1, N_NODES) for j in range(i))
DEFAULT_OP = "nor_conv_3x3"
# Inputs with at least this many pixels per side get the downsampling stem.
IMAGENET_STEM_FROM = 128


def edge_name(i: int, j: int) -> str:
    """The parameter of the edge from node ``j`` into node ``i``."""
    return f"edge_{i}_{j}"


EDGE_NAMES = tuple(edge_name(i, j) for i, j in EDGES)


# ---------------------------------------------------------------------- architecture strings


def _op(config: Mapping[str, Any], name: str) -> str:
    if name not in config:
        raise ValueError(f"parameter {name!r} is missing; an nb201 config has {list(EDGE_NAMES)}")
    op = config[name]
    if op not in OPS:
        raise ValueError(f"value {op!r} of parameter {name!r} is not one of {list(OPS)}")
    return str(op)


def arch_str(config: Mapping[str, Any]) -> str:
    """The NAS-Bench-201 string of ``config``: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, group
    ``i`` listing the edges into node ``i``."""
    groups = []
    for i in range(1, N_NODES):
        tokens = [f"{_op(config, edge_name(i, j))}~{j}" for j in range(i)]
        groups.append("|" + "|".join(tokens) + "|")
    return "+".join(groups)


def from_arch_str(s: str) -> dict[str, str]:
    """The configuration named by a NAS-Bench-201 string; ``ValueError`` says what is wrong
    with a malformed one."""
    if not isinstance(s, str):
        raise ValueError(f"a NAS-Bench-201 architecture string is a str, got {s!r}")
    groups = s.split("+")
    if len(groups) != N_NODES - 1:
        raise ValueError(
            f"malformed NAS-Bench-201 string {s!r}: expected {N_NODES - 1} '+'-separated node "
            f"groups, got {len(groups)}"
        )
    config: dict[str, str] = {}
    for i, group in enumerate(groups, start=1):
        if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
            raise ValueError(
                f"malformed NAS-Bench-201 string {s!r}: node {i}'s group {group!r} must start "
                "and end with '|'"
            )
        tokens = group[1:-1].split("|")
        if len(tokens) != i:
            raise ValueError(
                f"malformed NAS-Bench-201 string {s!r}: node {i} needs {i} edges (from nodes "
                f"0..{i - 1}), got {len(tokens)} in {group!r}"
            )
        for j, token in enumerate(tokens):
            op, sep, source = token.partition("~")
            if not sep:
                raise ValueError(
                    f"malformed NAS-Bench-201 string {s!r}: edge {token!r} of node {i} is not "
                    "of the form 'op~j'"
                )
            if op not in OPS:
                raise ValueError(
                    f"malformed NAS-Bench-201 string {s!r}: unknown operation {op!r} on an "
                    f"edge into node {i}; operations: {list(OPS)}"
                )
            if source != str(j):
                raise ValueError(
                    f"malformed NAS-Bench-201 string {s!r}: edge {j + 1} of node {i} must come "
                    f"from node {j} ('{op}~{j}'), got {token!r}"
                )
            config[edge_name(i, j)] = op
    return config


def is_input_independent(config: Mapping[str, Any]) -> bool:
    """Whether the cell's output ignores its input: no path of non-``none`` edges leads from
    node 0 to node 3 (the network's output is then the same for every input)."""
    reached = {0}
    for i in range(1, N_NODES):
        if any(j in reached and _op(config, edge_name(i, j)) != "none" for j in range(i)):
            reached.add(i)
    return N_NODES - 1 not in reached


def canonical(config: Mapping[str, Any]) -> str:
    """The function the cell computes, as a string equal for isomorphic cells: each node is
    the sorted sum of its incoming terms, a ``none`` edge (or an edge from a node that is
    always zero) adds nothing, ``skip_connect`` adds its source unchanged, any other operation
    ``op(source)``; ``"0"`` for a cell whose output ignores its input. Two cells with the same
    string compute the same function up to the order of their weights: the 15,625 cells fall
    into 5,273 classes. (NAS-Bench-201's own unique string keeps a zero term in a sum, "x + 0"
    apart from "x", and counts 6,466; an operation on an always-zero node is taken as zero by
    both, though its batch norm's shift could learn a constant.)"""
    exprs: dict[int, str | None] = {0: "x"}
    for i in range(1, N_NODES):
        terms = []
        for j in range(i):
            op, source = _op(config, edge_name(i, j)), exprs[j]
            if op == "none" or source is None:
                continue
            terms.append(source if op == "skip_connect" else f"{op}({source})")
        exprs[i] = "+".join(sorted(terms)) if terms else None
    out = exprs[N_NODES - 1]
    return "0" if out is None else out


#: The operations a path can run through (a ``none`` edge cuts every path over it).
PATH_OPS = tuple(op for op in OPS if op != "none")
#: Every node sequence from the cell's input (node 0) to its output (node 3) along its edges.
ROUTES = ((0, 3), (0, 1, 3), (0, 2, 3), (0, 1, 2, 3))
#: Where the paths of each length start in ``path_encoding``'s vector.
_PATH_OFFSET = {n: sum(len(PATH_OPS) ** k for k in range(1, n)) for n in range(1, N_NODES + 1)}
PATH_FEATURES = _PATH_OFFSET[N_NODES]


def path_encoding(config: Mapping[str, Any]) -> list[float]:
    """BANANAS' path encoding (White, Neiswanger & Savani, AAAI 2021): how often each sequence
    of operations occurs on a path from the cell's input to its output. Paths over a ``none``
    edge carry nothing and are left out, so the vector has 4 + 4² + 4³ = 84 entries (sequences
    of 1, 2 and 3 operations; the two 2-edge routes share theirs). Isomorphic cells get the
    same vector; it tells a predictor which operations the data flows through."""
    out = [0.0] * PATH_FEATURES
    for route in ROUTES:
        index = 0
        for j, i in zip(route, route[1:], strict=False):
            op = _op(config, edge_name(i, j))
            if op == "none":
                break
            index = index * len(PATH_OPS) + PATH_OPS.index(op)
        else:
            out[_PATH_OFFSET[len(route) - 1] + index] += 1.0
    return out


# ---------------------------------------------------------------------- network


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


@register("nb201", size=5**6, supernet=True, test_options={"C": 4, "N": 1})
def nb201(*, C: AtLeast1 = 16, N: AtLeast1 = 5, width_mult: Positive = 1.0) -> SearchSpace:
    """The space; its networks start at ``C`` channels (scaled by ``width_mult``, the width
    fidelity of low-cost training) and have ``N`` cells per stage. The benchmark's networks are
    those of the defaults."""
    width = max(1, int(round(C * width_mult)))
    params = [Categorical(name, OPS, default=DEFAULT_OP) for name in EDGE_NAMES]

    def builder(
        config: Mapping[str, Any], *, input_shape: tuple[int, ...], num_classes: int
    ) -> nn.Module:
        return build(config, input_shape=input_shape, num_classes=num_classes, C=width, N=N)

    def supernet(*, input_shape: tuple[int, ...], num_classes: int,
                 partial_channels: int = 1) -> NB201Supernet:
        return NB201Supernet(input_shape, num_classes, C=width, N=N,
                             partial_channels=partial_channels)

    key: Callable[[Mapping[str, Any]], str] = arch_str
    return SearchSpace(params, builder=builder, arch_key=key, supernet=supernet,
                       encoder=path_encoding)
