"""Checks of a space's definition, made when it is built: conditions on known parameters with
values of their domains and no cycle (which also gives the topological order), and forbidden
clauses that leave the default and at least one configuration valid."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from nas_hpo.space._conditions import Condition, Forbidden, check_relation_value
from nas_hpo.space._count import count_valid
from nas_hpo.space._params import Hyperparameter

if TYPE_CHECKING:
    from nas_hpo.space._space import SearchSpace


def check_conditions(
    params: Mapping[str, Hyperparameter], conditions: Mapping[str, Condition]
) -> None:
    """Each condition names known parameters, not its own, with values in their domains."""
    for child, cond in conditions.items():
        if child not in params:
            raise ValueError(f"condition on unknown parameter {child!r}")
        if not isinstance(cond, Condition):
            raise TypeError(f"condition of {child!r} is not a Condition: {cond!r}")
        for leaf in cond.leaves():
            if leaf.parent not in params:
                raise ValueError(
                    f"condition of {child!r} refers to unknown parameter {leaf.parent!r}"
                )
            if leaf.parent == child:
                raise ValueError(f"condition of {child!r} refers to itself")
            check_relation_value(leaf, params[leaf.parent], child)


def topological_order(
    params: Mapping[str, Hyperparameter], conditions: Mapping[str, Condition]
) -> list[str]:
    """The parameters, each after the parents its condition reads."""
    # Kahn's algorithm, keeping declaration order among ready parameters so that the
    # order (and with it every seeded sample) is stable.
    parents = {n: set(c.parents()) for n, c in conditions.items()}
    order: list[str] = []
    done: set[str] = set()
    pending = list(params)
    while pending:
        ready = [n for n in pending if parents.get(n, set()) <= done]
        if not ready:
            cycle = ", ".join(sorted(pending))
            raise ValueError(f"the conditions form a cycle among: {cycle}")
        for n in ready:
            order.append(n)
            done.add(n)
        pending = [n for n in pending if n not in done]
    return order


def check_forbidden(space: SearchSpace) -> None:
    """Each clause names known parameters and values of their domains; together they leave a
    valid configuration, and the default configuration is one."""
    params, conditions, forbidden = space._params, space._conditions, space._forbidden
    for clause in forbidden:
        if not isinstance(clause, Forbidden):
            raise TypeError(f"not a forbidden clause: {clause!r}")
        for leaf in clause.leaves():
            if leaf.name not in params:
                raise ValueError(f"forbidden clause {clause} names unknown parameter {leaf.name!r}")
            param = params[leaf.name]
            for v in leaf.mentioned():
                if not param.contains(v):
                    raise ValueError(
                        f"forbidden clause {clause}: {v!r} is not a value of {leaf.name!r} "
                        f"({param.domain_text()})"
                    )
    if not forbidden:
        return
    if count_valid(space._order, params, conditions, forbidden, stop_at_first=True) == 0:
        clauses = "; ".join(str(c) for c in forbidden)
        raise ValueError(
            f"the forbidden clauses exclude every configuration of the space: {clauses}"
        )
    default = space._complete({}, lambda p: p.default)
    hit = space._fired(default)
    if hit is not None:
        # ConfigSpace refuses such a space as well; a valid default keeps exports working.
        raise ValueError(f"the default configuration {default} is forbidden by {hit}")
