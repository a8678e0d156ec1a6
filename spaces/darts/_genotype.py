"""The DARTS space's encoding: parameter names, DARTS' genotypes (``Genotype(normal=[...],
...)``) to configs and back, and the published DARTS cells."""

from __future__ import annotations

import ast
import itertools
from collections import namedtuple
from collections.abc import Mapping
from typing import Any

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


