"""Exact counting of valid configurations, and the "is anything valid at all" check.

Enumerating a NAS space is hopeless (the ResNet block space alone has 9^8 members), so the count
works on equivalence classes. A parameter that no condition and no forbidden clause reads is
*free*: it multiplies the count by its domain size whenever it is active. A parameter that is
read (a *relevant* one) only matters through which class its value falls in: equal to one of the
values that conditions and clauses single out, or on which side of each greater-than / less-than
threshold it lies. The counter walks the relevant parameters' classes depth first, in
topological order, and multiplies class sizes. A float domain makes a class infinite, so the same
walk answers "is there any valid configuration" for every space.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from nas_hpo.space._conditions import Condition, Forbidden, GreaterThan, LessThan
from nas_hpo.space._params import Categorical, Constant, Float, Hyperparameter, _same, position

_ENUMERATE_UP_TO = 4096


def _classes(
    param: Hyperparameter, mentioned: Sequence[tuple[Any, ...]], thresholds: Sequence[Any]
) -> list[tuple[Any, int | float]]:
    """Partition ``param``'s domain into (representative, size) classes that every condition
    and clause reading ``param`` treats alike. ``mentioned`` holds one group of values per
    relation or clause (``In`` and ``ForbiddenIn`` single out several at once)."""
    enumerate_all = isinstance(param, (Categorical, Constant)) or (
        not isinstance(param, Float) and param.cardinality() <= _ENUMERATE_UP_TO
    )
    values = param.values() if enumerate_all else None
    cuts = sorted({position(param, t) for t in thresholds})
    sets = list(dict.fromkeys(tuple(m for m in g if param.contains(m)) for g in mentioned))

    if values is not None:
        # Values in the same groups (and on the same side of every cut) are alike: a clause
        # forbidding 9 of 10 values makes two classes, not ten.
        groups: dict[tuple, list[Any]] = {}
        for v in values:
            pos = position(param, v)
            sig = (
                tuple(any(_same(v, m) for m in g) for g in sets),
                tuple((pos > c) - (pos < c) for c in cuts),
            )
            groups.setdefault(sig, []).append(v)
        return [(vs[0], len(vs)) for vs in groups.values()]

    # A large integer range or a float range: regions between the cuts, the cuts themselves,
    # and the mentioned values each form classes.
    low, high = param.low, param.high  # type: ignore[attr-defined]
    is_int = not isinstance(param, Float)
    out: list[tuple[Any, int | float]] = []
    taken: list[Any] = []
    for m in (m for g in sets for m in g):
        if not any(_same(m, t) for t in taken):
            taken.append(m)
            out.append((m, 1))
    edges = [c for c in cuts if low <= c <= high]
    bounds = [low, *edges, high]
    for i in range(len(bounds) - 1):
        a, b = bounds[i], bounds[i + 1]
        # the open region (a, b), plus the closed ends at the outer bounds
        lo_in = i == 0 and a not in edges
        hi_in = i == len(bounds) - 2 and b not in edges
        if is_int:
            lo = a if lo_in else a + 1
            hi = b if hi_in else b - 1
            if lo > hi:
                continue
            inside = [m for m in taken if lo <= m <= hi]
            size = hi - lo + 1 - len(inside)
            if size <= 0:
                continue
            rep = next(v for v in range(lo, hi + 2) if not any(v == m for m in inside))
            out.append((rep, size))
        elif a < b:
            rep = next(
                v
                for v in (a + (b - a) * f for f in (0.5, 0.25, 0.75, 0.125, 0.875, 0.3))
                if not any(v == m for m in taken)
            )
            out.append((rep, math.inf))
    for c in edges:
        if not any(_same(c, m) for m in taken):
            out.append((c, 1))
    return out


def _reads(
    conditions: Mapping[str, Condition], forbidden: Sequence[Forbidden]
) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, list[Any]]]:
    """Per parameter, the groups of values that conditions and clauses single out, and the
    thresholds of greater-than / less-than conditions on it."""
    mentioned: dict[str, list[tuple[Any, ...]]] = {}
    thresholds: dict[str, list[Any]] = {}
    for cond in conditions.values():
        for leaf in cond.leaves():
            if isinstance(leaf, (GreaterThan, LessThan)):
                thresholds.setdefault(leaf.parent, []).append(leaf.value)
            else:
                mentioned.setdefault(leaf.parent, []).append(tuple(leaf.mentioned()))
    for clause in forbidden:
        for leaf in clause.leaves():
            mentioned.setdefault(leaf.name, []).append(tuple(leaf.mentioned()))
    return mentioned, thresholds


def representatives(
    name: str,
    params: Mapping[str, Hyperparameter],
    conditions: Mapping[str, Condition],
    forbidden: Sequence[Forbidden],
) -> list[Any]:
    """One value of ``name`` from each class the counter tells apart: whether a partial config
    can be completed depends only on the class of each of its values."""
    mentioned, thresholds = _reads(conditions, forbidden)
    return [
        rep for rep, _ in _classes(params[name], mentioned.get(name, []), thresholds.get(name, []))
    ]


def count_valid(
    order: Sequence[str],
    params: Mapping[str, Hyperparameter],
    conditions: Mapping[str, Condition],
    forbidden: Sequence[Forbidden],
    *,
    stop_at_first: bool = False,
    fixed: Mapping[str, Any] | None = None,
) -> int | float:
    """Number of valid configurations (``math.inf`` if a float can be active); with ``fixed``,
    of those that hold these values (a partial config taken in topological order, so that the
    parents of each fixed parameter are fixed too)."""
    fixed = fixed or {}
    mentioned, thresholds = _reads(conditions, forbidden)
    relevant = [n for n in order if n in mentioned or n in thresholds]
    free = [n for n in order if n not in mentioned and n not in thresholds]
    classes = {
        n: [(fixed[n], 1)]
        if n in fixed
        else _classes(params[n], mentioned.get(n, []), thresholds.get(n, []))
        for n in relevant
    }
    # A clause can be checked as soon as the last relevant parameter it names is decided.
    rank = {n: i for i, n in enumerate(relevant)}
    checks: dict[int, list[Forbidden]] = {}
    for clause in forbidden:
        checks.setdefault(max(rank[n] for n in clause.names()), []).append(clause)

    def leaf_weight(assigned: dict[str, Any]) -> int | float:
        # Python ints: counts beyond 2**53 stay exact (only a float range makes them inf).
        w: int | float = 1
        for n in free:
            cond = conditions.get(n)
            if cond is None or cond.holds(assigned, params):
                w *= 1 if n in fixed else params[n].cardinality()
            elif n in fixed:
                return 0  # fixed as active where it cannot be
        return w

    def walk(i: int, assigned: dict[str, Any]) -> int | float:
        if i == len(relevant):
            return leaf_weight(assigned)
        name = relevant[i]
        cond = conditions.get(name)
        if cond is None or cond.holds(assigned, params):
            options = classes[name]
        elif name in fixed:
            return 0
        else:
            options = [(None, 1)]
        total: int | float = 0
        for rep, size in options:
            if rep is not None:
                assigned[name] = rep
            if not any(c.fires(assigned) for c in checks.get(i, ())):
                rest = walk(i + 1, assigned)
                # inf * 0 is nan: an infinite class (a float range) none of whose
                # continuations is valid adds nothing.
                if rest:
                    total += size * rest
            assigned.pop(name, None)
            if stop_at_first and total > 0:
                return total
        return total

    return walk(0, {})
