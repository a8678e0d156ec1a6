"""``darts``: the DARTS / NASNet cell space, a normal and a reduction cell of 4 nodes each.

The space is that of DARTS (Liu, Simonyan and Yang, "DARTS: Differentiable Architecture
Search", ICLR 2019), which keeps the cell structure of NASNet (Zoph, Vasudevan, Shlens and Le,
"Learning Transferable Architectures for Scalable Image Recognition", CVPR 2018): a network is
a stack of copies of two cells, the *normal* cell (keeps the resolution) and the *reduction*
cell (halves it). A cell is a DAG on 6 nodes in DARTS' numbering: 0 and 1 are its inputs, the
outputs of the two cells before it (c_{k-2} and c_{k-1}); each intermediate node 2..5 sums two
operations, each applied to an earlier node, and the cell's output concatenates nodes 2..5.
An operation is one of ``OPS`` (DARTS' primitives without ``none``, in DARTS' order).

Encoding (that of the NAS-Bench-301 ConfigSpace, Siems et al. 2020, with shorter names, so
results join with NB301 by renaming ``{cell}_edge_{e}`` ↔ ``NetworkSelectorDatasetInfo:darts:
edge_{cell}_{e}`` and ``{cell}_inputs_node_{k}`` ↔ ``...:inputs_node_{cell}_{k}``), for each
``cell`` in ``normal``, ``reduce``:

- ``{cell}_inputs_node_{k}`` for ``k = 3, 4, 5``: the node's two inputs, an *unordered* pair
  of distinct predecessors written ``"a_b"`` with ``a < b`` (``"0_1"``, ``"0_2"``, ``"1_2"``,
  ... the ``C(k, 2)`` pairs of ``0..k-1``). Node 2 has one possible pair, {0, 1}, so no
  parameter. The pair is a set because a node sums its two inputs: (op1 on a, op2 on b) and
  (op2 on b, op1 on a) are one network, and DARTS' derivation keeps the top-2 *distinct*
  predecessors of a node, so a node never reads one input twice.
- ``{cell}_edge_{e}`` for ``e = 0..13``: the operation on edge ``e`` in DARTS' edge order
  (node 2's edges from 0, 1; node 3's from 0, 1, 2; node 4's from 0..3; node 5's from 0..4).
  The edges of node 2 are always active; an edge of node ``k >= 3`` from ``j`` is active iff
  ``{cell}_inputs_node_{k}`` is one of the pairs containing ``j`` (an ``In`` condition).

Each cell has ``1 · 3 · 6 · 10`` input choices and 8 active edges of 7 operations, so the space
has ``(1 · 3 · 6 · 10 · 7**8)**2`` (about 1.1e18) architectures. Its default configuration is
DARTS (2nd order), ``DARTS_V2`` of DARTS' ``genotypes.py``.

Architectures are named by DARTS' own genotype string (``genotype_str`` / ``from_genotype_str``)::

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5],
             reduce=[...], reduce_concat=[2, 3, 4, 5])

The printed string is canonical: the two (op, input) pairs of a node are ordered by input.
Published genotypes that list a node's inputs in another order (DARTS_V2 does) parse all the
same, into the same configuration.

Network (``build``): DARTS' evaluation network (``NetworkCIFAR`` of its ``model.py`` and the ops
of its ``operations.py``): a 3×3 convolution stem to ``3 · init_channels`` channels and BN;
``layers`` cells, the reduction cells at ``layers // 3`` and ``2 · layers // 3``, each doubling
the cell width (``init_channels`` at first); the inputs of a cell are preprocessed by ReLU-1×1
conv-BN, or by a factorized reduction where the cell before was a reduction cell (its c_{k-2}
then has twice the resolution of c_{k-1}); global average pooling and a linear classifier.
DARTS' evaluation setting is ``init_channels=36, layers=20`` on CIFAR-10, where DARTS_V2 has
3,349,342 parameters, the number DARTS logs (the paper's 3.3M, auxiliary head not counted);
the defaults here, 16 and 8, are its search network's size. The ops are those of the evaluation
network: ``sep_conv`` is (ReLU, depthwise k×k, pointwise 1×1, BN) twice, the first with the
edge's stride; ``dil_conv`` is ReLU, depthwise k×k with dilation 2, pointwise 1×1, BN; the pools
are 3×3 with padding 1 (average pools not counting the padding) and, unlike in DARTS' search
network, no BN after them; ``skip_connect`` is the identity, or a factorized reduction on a
strided edge. In a reduction cell the edges from the cell inputs (0 and 1) have stride 2.

What differs from DARTS, and why:

- No auxiliary head and no drop path (regularizers of DARTS' training, not parts of the
  architecture); the network returns the logits only.
- A factorized reduction (ReLU; two 1×1 convolutions of stride 2, the second on the map shifted
  by one pixel; concatenated; BN) needs an even map in DARTS. An odd map is first padded with
  one zero row / column at the bottom / right, so that every strided edge of a cell yields
  ``ceil(H / 2)`` as the convolutions and pools do; even maps are unchanged, and so inputs of
  any size from 8×8 digits to 224×224 images build. An odd channel count is split ``c // 2``
  and ``c - c // 2`` between the two convolutions.
- Inputs of at least ``IMAGENET_STEM_FROM`` pixels get the strided stem of DARTS'
  ``NetworkImageNet`` (three 3×3 convolutions of stride 2, to ``init_channels`` channels; the
  first cell then treats the stem's two outputs like a reduction cell's); the pooling is
  adaptive rather than its fixed 7×7.
"""

from __future__ import annotations

import ast
import itertools
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas_hpo.space import Categorical, Condition, Hyperparameter, In, SearchSpace
from nas_hpo.spaces import register

__all__ = [
    "DARTS_V1",
    "DARTS_V2",
    "OPS",
    "Genotype",
    "build",
    "darts",
    "edge_index",
    "edge_param",
    "from_genotype_str",
    "genotype",
    "genotype_str",
    "input_pairs",
    "inputs_param",
]

# DARTS' PRIMITIVES without 'none' (a derived DARTS cell never contains it), in DARTS' order,
# which is also the order of the NB301 ConfigSpace's choices.
OPS = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
CELLS = ("normal", "reduce")
NODES = (2, 3, 4, 5)  # the intermediate nodes; 0 and 1 are the cell inputs
CONCAT = [2, 3, 4, 5]
N_EDGES = 14
STEM_MULTIPLIER = 3
IMAGENET_STEM_FROM = 128

# The field names of DARTS' namedtuple, so that repr() prints DARTS' own format.
Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")

# The published DARTS cells (Liu et al. 2019; quark0/darts cnn/genotypes.py): first order (V1)
# and second order (V2, the paper's "DARTS (second order)", 2.76% error on CIFAR-10).
DARTS_V1 = (
    "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
)
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)

# A cell as 8 (op, input) pairs, two per node in node order: DARTS' genotype list.
CellSpec = list[tuple[str, int]]


# --------------------------------------------------------------------------- encoding


def inputs_param(cell: str, node: int) -> str:
    """The name of the parameter choosing the two inputs of ``node`` (3, 4 or 5)."""
    return f"{cell}_inputs_node_{node}"


def edge_param(cell: str, edge: int) -> str:
    """The name of the parameter choosing the operation on ``edge`` (0..13)."""
    return f"{cell}_edge_{edge}"


def edge_index(node: int, source: int) -> int:
    """DARTS' index of the edge from ``source`` into ``node``: node ``k``'s edges follow the
    ``2 + 3 + ... + (k - 1)`` edges of the nodes before it."""
    return node * (node - 1) // 2 - 1 + source


def input_pairs(node: int) -> tuple[str, ...]:
    """The choices of ``{cell}_inputs_node_{node}``: unordered pairs of predecessors."""
    return tuple(f"{a}_{b}" for a, b in itertools.combinations(range(node), 2))


def _pair(text: str, node: int, name: str) -> tuple[int, int]:
    if text not in input_pairs(node):
        raise ValueError(
            f"value {text!r} of parameter {name!r} is not a pair of inputs of node {node}; "
            f"one of {list(input_pairs(node))!r}"
        )
    a, b = text.split("_")
    return int(a), int(b)


def _cell_of(config: Mapping[str, Any], cell: str) -> CellSpec:
    """The cell's 8 (op, input) pairs, each node's two ordered by input."""

    def get(name: str) -> Any:
        if name not in config:
            raise ValueError(f"active parameter {name!r} is missing from the configuration")
        return config[name]

    out: CellSpec = []
    for node in NODES:
        if node == 2:
            sources: tuple[int, int] = (0, 1)
        else:
            name = inputs_param(cell, node)
            sources = _pair(get(name), node, name)
        for source in sources:
            name = edge_param(cell, edge_index(node, source))
            op = get(name)
            if op not in OPS:
                raise ValueError(
                    f"value {op!r} of parameter {name!r} is not an operation of the space; "
                    f"one of {list(OPS)!r}"
                )
            out.append((op, source))
    return out


def genotype(config: Mapping[str, Any]) -> Genotype:
    """The DARTS ``Genotype`` of ``config`` (each node's two pairs ordered by input)."""
    return Genotype(
        normal=_cell_of(config, "normal"),
        normal_concat=list(CONCAT),
        reduce=_cell_of(config, "reduce"),
        reduce_concat=list(CONCAT),
    )


def genotype_str(config: Mapping[str, Any]) -> str:
    """The architecture as DARTS prints its genotype: ``Genotype(normal=[('sep_conv_3x3', 0),
    ...], normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])``. Canonical:
    a node's two (op, input) pairs are ordered by input. The space's ``arch_key``."""
    return repr(genotype(config))


def _parse_error(s: str, why: str) -> ValueError:
    return ValueError(
        f"not a DARTS genotype string ({why}): expected Genotype(normal=[(op, input), ...], "
        f"normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5]), got {s!r}"
    )


def _literal(node: ast.expr, s: str, field: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise _parse_error(s, f"{field} is not a literal list") from None


def _concat(node: ast.expr, s: str, field: str) -> list[int]:
    # DARTS' search prints ``range(2, 6)``; its genotypes.py writes the list.
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        if node.keywords:
            raise _parse_error(s, f"{field}: range() takes no keywords")
        args = [_literal(a, s, field) for a in node.args]
        if not 1 <= len(args) <= 3 or not all(type(a) is int for a in args):
            raise _parse_error(s, f"{field}: range() needs 1 to 3 integers")
        return list(range(*args))
    value = _literal(node, s, field)
    if not isinstance(value, (list, tuple)) or not all(type(v) is int for v in value):
        raise _parse_error(s, f"{field} is not a list of node numbers")
    return list(value)


def _cell_config(cell: str, pairs: Any, s: str) -> dict[str, str]:
    if not isinstance(pairs, (list, tuple)) or not all(
        isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], str) and type(p[1]) is int
        for p in pairs
    ):
        raise _parse_error(s, f"{cell} is not a list of (op, input) pairs")
    if len(pairs) != 2 * len(NODES):
        raise ValueError(
            f"the {cell} cell has {len(pairs)} (op, input) pairs; a cell of this space has "
            f"{2 * len(NODES)}, two for each of the nodes {list(NODES)}"
        )
    config: dict[str, str] = {}
    for i, node in enumerate(NODES):
        (op_a, a), (op_b, b) = pairs[2 * i], pairs[2 * i + 1]
        where = f"{cell} cell, node {node}"
        for op, source in ((op_a, a), (op_b, b)):
            if op not in OPS:
                raise ValueError(
                    f"{where}: operation {op!r} is not in the space; one of {list(OPS)!r}"
                )
            if not 0 <= source < node:
                raise ValueError(
                    f"{where}: input {source} is not a predecessor; node {node} reads nodes "
                    f"0..{node - 1}"
                )
        if a == b:
            raise ValueError(
                f"{where}: input {a} is used twice; a node's two inputs are distinct "
                "predecessors in this space"
            )
        if a > b:
            (op_a, a), (op_b, b) = (op_b, b), (op_a, a)
        if node > 2:
            config[inputs_param(cell, node)] = f"{a}_{b}"
        config[edge_param(cell, edge_index(node, a))] = op_a
        config[edge_param(cell, edge_index(node, b))] = op_b
    return config


def from_genotype_str(s: str) -> dict[str, str]:
    """The configuration of a DARTS genotype string (as ``genotype_str`` prints it, or as
    published: a node's two pairs in any order, the concat as a list or ``range(2, 6)``,
    any line breaks). Raises ``ValueError`` saying what is wrong: not a ``Genotype(...)``
    string, a missing or unknown field, a concat other than ``[2, 3, 4, 5]``, a cell without
    8 pairs, an operation outside ``OPS`` (such as ``'none'``), an input that is not a
    predecessor of its node, or a node reading one input twice. ``genotype_str`` prints the
    result back canonically (a node's pairs ordered by input)."""
    if not isinstance(s, str):
        raise ValueError(f"a genotype string is a str, got {s!r}")
    try:
        tree = ast.parse(s.strip(), mode="eval")
    except SyntaxError as err:
        raise _parse_error(s, f"syntax error: {err.msg}") from None
    call = tree.body
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "Genotype"
    ):
        raise _parse_error(s, "not a call of Genotype")
    fields: dict[str, ast.expr] = {}
    if len(call.args) > len(Genotype._fields):
        raise _parse_error(s, f"{len(call.args)} positional fields")
    for name, node in zip(Genotype._fields, call.args, strict=False):
        fields[name] = node
    for kw in call.keywords:
        if kw.arg not in Genotype._fields:
            raise _parse_error(s, f"unknown field {kw.arg!r}")
        if kw.arg in fields:
            raise _parse_error(s, f"field {kw.arg!r} given twice")
        fields[kw.arg] = kw.value
    missing = [f for f in Genotype._fields if f not in fields]
    if missing:
        raise _parse_error(s, f"missing field {missing[0]!r}")
    config: dict[str, str] = {}
    for cell in CELLS:
        concat = _concat(fields[f"{cell}_concat"], s, f"{cell}_concat")
        if concat != CONCAT:
            raise ValueError(
                f"{cell}_concat is {concat}; cells of this space concatenate nodes {CONCAT}"
            )
        config.update(_cell_config(cell, _literal(fields[cell], s, cell), s))
    return config


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
                 reduction_prev: bool) -> None:
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
                self.edges.append(nn.ModuleDict({op: OP_MODULES[op](c, stride) for op in OPS}))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, spec: CellSpec) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i, node in enumerate(NODES):
            (op_a, a), (op_b, b) = spec[2 * i], spec[2 * i + 1]
            states.append(self.edges[edge_index(node, a)][op_a](states[a])
                          + self.edges[edge_index(node, b)][op_b](states[b]))
        return torch.cat(states[2:], dim=1)


class DartsSupernet(nn.Module):
    """The weight-sharing supernet of the space (DARTS' one-shot model run one path at a time,
    as SPOS / FairNAS train it): the evaluation network's skeleton with ``SuperCell``s, so
    that ``supernet(x, config)`` computes exactly what ``build(config)`` computes with the
    path's weights (``subnet`` makes that network)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, init_channels: int,
                 layers: int) -> None:
        super().__init__()
        self.input_shape, self.num_classes = input_shape, num_classes
        self.init_channels, self.layers = init_channels, layers
        stem, plan, c_last = _layout(input_shape, init_channels, layers)
        self.stem = stem
        self.cells = nn.ModuleList(
            SuperCell(c_pp, c_p, c, reduction=reduction, reduction_prev=reduction_prev)
            for c_pp, c_p, c, reduction, reduction_prev in plan
        )
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_last, num_classes)

    def forward(self, x: torch.Tensor, config: Mapping[str, Any]) -> torch.Tensor:
        specs = {False: _cell_of(config, "normal"), True: _cell_of(config, "reduce")}
        s0, s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, specs[cell.reduction])
        return self.classifier(torch.flatten(self.global_pooling(s1), 1))

    def subnet(self, config: Mapping[str, Any]) -> nn.Module:
        """``build(config)`` with the supernet's weights and BN statistics of that path."""
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


# --------------------------------------------------------------------------- the space


def _params_and_conditions() -> tuple[list[Hyperparameter], dict[str, Condition]]:
    default = from_genotype_str(DARTS_V2)
    params: list[Hyperparameter] = []
    conditions: dict[str, Condition] = {}
    for cell in CELLS:
        for node in NODES:
            pairs = input_pairs(node)
            if node > 2:
                name = inputs_param(cell, node)
                params.append(Categorical(name, pairs, default=default[name]))
            for source in range(node):
                edge = edge_param(cell, edge_index(node, source))
                params.append(Categorical(edge, OPS, default=default.get(edge, "sep_conv_3x3")))
                if node > 2:
                    holding = tuple(p for p in pairs if str(source) in p.split("_"))
                    conditions[edge] = In(inputs_param(cell, node), holding)
    return params, conditions


@register("darts", size=(1 * 3 * 6 * 10 * 7**8) ** 2, supernet=True,
          test_options={"init_channels": 4, "layers": 5})
def darts(*, init_channels: int = 16, layers: int = 8, width_mult: float = 1.0) -> SearchSpace:
    """The space; its networks have ``layers`` cells and start at ``init_channels`` channels
    scaled by ``width_mult`` (the width fidelity of low-cost training). DARTS evaluates its
    cells with 36 channels and 20 layers, and searches with 16 and 8."""
    _check_options(init_channels, layers)
    if not width_mult > 0:
        raise ValueError(f"width_mult must be > 0, got {width_mult}")
    channels = max(1, int(round(init_channels * width_mult)))
    params, conditions = _params_and_conditions()

    def builder(
        config: Mapping[str, Any], *, input_shape: tuple[int, ...], num_classes: int
    ) -> nn.Module:
        return build(
            config,
            input_shape=input_shape,
            num_classes=num_classes,
            init_channels=channels,
            layers=layers,
        )

    def supernet(*, input_shape: tuple[int, ...], num_classes: int) -> DartsSupernet:
        return DartsSupernet(input_shape, num_classes, channels, layers)

    return SearchSpace(params, conditions, builder=builder, arch_key=genotype_str,
                       supernet=supernet)
