"""The NAS-Bench-201 cell's names: its operations and edges, the benchmark's architecture
strings, isomorphism classes and BANANAS' path encoding (no torch here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
