"""Translation between nas-hpo spaces and ConfigSpace 1.x (both directions, nothing else).

Our space → ConfigSpace is lossless: every parameter keeps its domain, scale and default; each
condition and conjunction maps to its ConfigSpace class; forbidden clauses likewise. Two
encodings route around ConfigSpace 1.2 behaviour that would otherwise make the exported space
mean something else (both are described in ``nas_hpo.space._conditions``):

- ``NotEquals(p, v)`` on a parent ``p`` that can be inactive is written as
  ``(child | p != v && <p is set>)``, the guard being ``p in {every value of p}`` or, for a
  numeric ``p``, ``(p > low || p < high)``. The way back reads that exact pair as ``NotEquals``.
- A conjunction that ConfigSpace would confuse with another child's (it compares conjunctions
  without looking at And versus Or) repeats its first part until it no longer looks alike.
  Repeating a part changes no meaning; the way back drops repeated parts.

The way back reads any ConfigSpace space; ConfigSpace's priors (normal / beta distributions,
categorical weights) have no counterpart here, so they are dropped with a warning naming the
parameter while the domain itself is kept. Forbidden or-conjunctions and order clauses
(``x > v`` on a finite domain) are rewritten exactly into equals / in / and clauses; forbidden
relations between two parameters and order clauses on float ranges have no exact counterpart
and raise ``ValueError`` naming the clause.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nas_hpo.space._conditions import (
    And,
    Condition,
    Equals,
    Forbidden,
    ForbiddenAnd,
    ForbiddenEquals,
    ForbiddenIn,
    GreaterThan,
    In,
    LessThan,
    NotEquals,
    Or,
)
from nas_hpo.space._params import (
    Categorical,
    Constant,
    Float,
    Hyperparameter,
    Integer,
    _plain,
    _same,
    position,
)

if TYPE_CHECKING:
    import ConfigSpace as CS

    from nas_hpo.space._space import SearchSpace


def _cs() -> Any:
    try:
        import ConfigSpace
    except ImportError as e:  # pragma: no cover - ConfigSpace is a hard dependency
        raise ImportError(
            "the ConfigSpace export needs ConfigSpace: pip install ConfigSpace"
        ) from e
    return ConfigSpace


# ----------------------------------------------------------------------------- ours -> CS


def _param_to_cs(p: Hyperparameter) -> Any:
    CS = _cs()
    if isinstance(p, Categorical):
        if p.ordered:
            return CS.OrdinalHyperparameter(p.name, list(p.choices), default_value=p.default)
        return CS.CategoricalHyperparameter(p.name, list(p.choices), default_value=p.default)
    if isinstance(p, Integer):
        return CS.UniformIntegerHyperparameter(
            p.name, p.low, p.high, default_value=p.default, log=p.log
        )
    if isinstance(p, Float):
        return CS.UniformFloatHyperparameter(
            p.name, p.low, p.high, default_value=p.default, log=p.log
        )
    if isinstance(p, Constant):
        return CS.Constant(p.name, p.value)
    raise TypeError(f"no ConfigSpace counterpart for {p!r}")


_REL_TO_CS = {
    Equals: "EqualsCondition",
    NotEquals: "NotEqualsCondition",
    GreaterThan: "GreaterThanCondition",
    LessThan: "LessThanCondition",
}


def _cond_to_cs(cond: Condition, child: Any, hps: dict[str, Any], space: SearchSpace) -> Any:
    CS = _cs()
    if isinstance(cond, And):
        return CS.AndConjunction(*(_cond_to_cs(c, child, hps, space) for c in cond.parts))
    if isinstance(cond, Or):
        return CS.OrConjunction(*(_cond_to_cs(c, child, hps, space) for c in cond.parts))
    parent = hps[cond.parent]
    if isinstance(cond, In):
        return CS.InCondition(child, parent, list(cond.value))
    out = getattr(CS, _REL_TO_CS[type(cond)])(child, parent, cond.value)
    if isinstance(cond, NotEquals) and cond.parent in space.conditions:
        # ConfigSpace's check and sampler compare NaN != v for an inactive parent and so find
        # the condition true; the guard holds only for a parent that is set.
        return CS.AndConjunction(out, _guard(child, parent, space[cond.parent]))
    return out


def _guard(child: Any, parent: Any, param: Hyperparameter) -> Any:
    """A ConfigSpace condition that holds iff ``parent`` is active (whatever its value)."""
    CS = _cs()
    if isinstance(param, (Integer, Float)):
        return CS.OrConjunction(
            CS.GreaterThanCondition(child, parent, param.low),
            CS.LessThanCondition(child, parent, param.high),
        )
    return CS.InCondition(child, parent, list(param.values()))


def _is_guard(cond: Any, param: Hyperparameter) -> bool:
    """Whether ``cond`` is exactly what ``_guard`` writes for ``param``."""
    CS = _cs()
    if isinstance(param, (Integer, Float)):
        if not isinstance(cond, CS.OrConjunction) or len(cond.components) != 2:
            return False
        kinds = {type(c): c for c in cond.components}
        gt, lt = kinds.get(CS.GreaterThanCondition), kinds.get(CS.LessThanCondition)
        return (
            gt is not None
            and lt is not None
            and gt.parent.name == lt.parent.name == param.name
            and _plain(gt.value) == param.low
            and _plain(lt.value) == param.high
        )
    if not isinstance(cond, CS.InCondition) or cond.parent.name != param.name:
        return False
    values = [_plain(v) for v in cond.values]
    return (
        len(values) == len(param.values())
        and all(param.contains(v) for v in values)
        and all(any(_same(v, w) for w in values) for v in param.values())
    )


def _keep_apart(cs_conds: dict[str, Any], ours: Mapping[str, Condition]) -> None:
    """Pad conjunctions that ConfigSpace would take for another child's condition.

    ConfigSpace 1.2 groups children whose conditions it deems equivalent
    (``Conjunction.equivalent_condition_on_parent``: same number of parts, each part of one
    matching some part of the other, And and Or not told apart) and then checks and samples the
    whole group with the first child's condition only. Repeating the first part lengthens a
    conjunction without changing what it means, so it stops matching.
    """
    CS = _cs()

    def alike(a: Any, b: Any) -> bool:
        return bool(a.equivalent_condition_on_parent(b) or b.equivalent_condition_on_parent(a))

    done: list[str] = []
    for child, cond in cs_conds.items():
        # Plain conditions are grouped only when of one class, one parent and one value,
        # which means they are the same condition; only conjunctions can be confused.
        while isinstance(cond, (CS.AndConjunction, CS.OrConjunction)) and any(
            ours[child] != ours[o] and alike(cs_conds[o], cond) for o in done
        ):
            cond = type(cond)(*cond.components, cond.components[0])
        cs_conds[child] = cond
        done.append(child)


def _forbidden_to_cs(clause: Forbidden, hps: dict[str, Any]) -> Any:
    CS = _cs()
    if isinstance(clause, ForbiddenAnd):
        return CS.ForbiddenAndConjunction(*(_forbidden_to_cs(c, hps) for c in clause.parts))
    if isinstance(clause, ForbiddenIn):
        return CS.ForbiddenInClause(hps[clause.name], list(clause.values))
    if isinstance(clause, ForbiddenEquals):
        return CS.ForbiddenEqualsClause(hps[clause.name], clause.value)
    raise TypeError(f"no ConfigSpace counterpart for {clause!r}")


def to_configspace(space: SearchSpace) -> CS.ConfigurationSpace:
    CS = _cs()
    cs = CS.ConfigurationSpace(name=space.name)
    hps = {n: _param_to_cs(space[n]) for n in space.order}
    cs.add(*hps.values())
    ours = space.conditions
    conds = {
        child: _cond_to_cs(ours[child], hps[child], hps, space)
        for child in space.order
        if child in ours
    }
    _keep_apart(conds, ours)
    if conds:
        cs.add(*conds.values())
    clauses = [_forbidden_to_cs(f, hps) for f in space.forbidden]
    if clauses:
        cs.add(*clauses)
    return cs


# ----------------------------------------------------------------------------- CS -> ours


def _param_from_cs(hp: Any) -> Hyperparameter:
    CS = _cs()
    name = hp.name
    if isinstance(hp, CS.Constant):
        return Constant(name, _plain(hp.value))
    if isinstance(hp, CS.OrdinalHyperparameter):
        return Categorical(
            name,
            tuple(_plain(v) for v in hp.sequence),
            default=_plain(hp.default_value),
            ordered=True,
        )
    if isinstance(hp, CS.CategoricalHyperparameter):
        weights = getattr(hp, "weights", None)
        if weights is not None and len(set(float(w) for w in weights)) > 1:
            warnings.warn(
                f"ConfigSpace parameter {name!r}: categorical weights are not kept "
                "(nas-hpo samples choices uniformly)",
                UserWarning,
                stacklevel=3,
            )
        return Categorical(
            name, tuple(_plain(v) for v in hp.choices), default=_plain(hp.default_value)
        )
    if isinstance(
        hp,
        (
            CS.UniformIntegerHyperparameter,
            CS.NormalIntegerHyperparameter,
            CS.BetaIntegerHyperparameter,
        ),
    ):
        if not isinstance(hp, CS.UniformIntegerHyperparameter):
            _warn_prior(name, hp)
        return Integer(
            name,
            int(hp.lower),
            int(hp.upper),
            log=bool(hp.log),
            default=int(_plain(hp.default_value)),
        )
    if isinstance(
        hp,
        (CS.UniformFloatHyperparameter, CS.NormalFloatHyperparameter, CS.BetaFloatHyperparameter),
    ):
        if not isinstance(hp, CS.UniformFloatHyperparameter):
            _warn_prior(name, hp)
        return Float(
            name,
            float(hp.lower),
            float(hp.upper),
            log=bool(hp.log),
            default=float(_plain(hp.default_value)),
        )
    raise ValueError(f"ConfigSpace parameter {name!r} has an unsupported type {type(hp).__name__}")


def _warn_prior(name: str, hp: Any) -> None:
    warnings.warn(
        f"ConfigSpace parameter {name!r}: the {type(hp).__name__} prior is not kept "
        f"(nas-hpo samples [{hp.lower}, {hp.upper}] uniformly)",
        UserWarning,
        stacklevel=4,
    )


def _cond_from_cs(cond: Any, params: Mapping[str, Hyperparameter], cs: Any) -> Condition:
    CS = _cs()
    if isinstance(cond, (CS.AndConjunction, CS.OrConjunction)):
        # Repeated parts (see _keep_apart) mean nothing.
        comps: list[Any] = []
        for c in cond.components:
            if not any(c is u or (type(c) is type(u) and c == u) for u in comps):
                comps.append(c)
        if isinstance(cond, CS.AndConjunction) and len(comps) == 2:
            # The pair ``_cond_to_cs`` writes for NotEquals on a conditional parent. The export
            # wraps every such NotEquals, so a pair that a user wrote comes back as written:
            # its NotEquals is itself wrapped, and on an unconditional parent none is.
            for ne, guard in (comps, comps[::-1]):
                if (
                    isinstance(ne, CS.NotEqualsCondition)
                    and cs.parent_conditions_of[ne.parent.name]
                    and _is_guard(guard, params[ne.parent.name])
                ):
                    return NotEquals(ne.parent.name, _plain(ne.value))
        parts = list(dict.fromkeys(_cond_from_cs(c, params, cs) for c in comps))
        parts = parts if len(parts) > 1 else parts * 2  # a conjunction keeps two parts
        return (And if isinstance(cond, CS.AndConjunction) else Or)(*parts)
    parent = cond.parent.name
    if isinstance(cond, CS.InCondition):
        return In(parent, tuple(_plain(v) for v in cond.values))
    if isinstance(cond, CS.NotEqualsCondition) and cs.parent_conditions_of[parent]:
        warnings.warn(
            f"ConfigSpace condition {cond}: ConfigSpace's check and sampler take it as true "
            f"while {parent!r} is inactive; nas-hpo reads it as {parent!r} active and != "
            f"{cond.value!r}, the same rule as every other relation",
            UserWarning,
            stacklevel=4,
        )
    for ours, theirs in _REL_TO_CS.items():
        if isinstance(cond, getattr(CS, theirs)):
            return ours(parent, _plain(cond.value))
    raise ValueError(f"ConfigSpace condition {cond} ({type(cond).__name__}) is not supported")


# ConfigSpace's order clauses, by exact class name (the >= classes do not subclass the > ones,
# but looking them up by name keeps that from mattering).
_ORDER_CLAUSES: dict[str, Callable[[Any, Any], bool]] = {
    "ForbiddenGreaterThanClause": operator.gt,
    "ForbiddenGreaterThanEqualsClause": operator.ge,
    "ForbiddenLessThanClause": operator.lt,
    "ForbiddenLessThanEqualsClause": operator.le,
}
_MAX_EXPANDED = 10_000


def _forbidden_from_cs(clause: Any, params: Mapping[str, Hyperparameter]) -> list[Forbidden]:
    """One ConfigSpace clause as ours: a config is forbidden iff one of the returned fires.

    Equals, in and and-conjunctions map one to one. ConfigSpace also has or-conjunctions and
    order clauses (``x > v``), which our model expresses exactly without a type of its own:
    an or-conjunction becomes one clause per alternative (an and over an or distributes), an
    order clause on a finite domain becomes the in-clause of the values it forbids.
    """
    return [
        parts[0] if len(parts) == 1 else ForbiddenAnd(*parts)
        for parts in _alternatives(clause, params)
    ]


def _alternatives(clause: Any, params: Mapping[str, Hyperparameter]) -> list[list[Forbidden]]:
    CS = _cs()
    if isinstance(clause, CS.ForbiddenAndConjunction):
        out: list[list[Forbidden]] = [[]]
        for part in clause.components:
            out = [a + b for a in out for b in _alternatives(part, params)]
        return out
    if isinstance(clause, CS.ForbiddenOrConjunction):
        return [alt for part in clause.components for alt in _alternatives(part, params)]
    if isinstance(clause, CS.ForbiddenInClause):
        return [[ForbiddenIn(clause.hyperparameter.name, tuple(_plain(v) for v in clause.values))]]
    if isinstance(clause, CS.ForbiddenEqualsClause):
        return [[ForbiddenEquals(clause.hyperparameter.name, _plain(clause.value))]]
    op = _ORDER_CLAUSES.get(type(clause).__name__)
    if op is not None:
        name = clause.hyperparameter.name
        param = params[name]
        values = param.values()
        if values is None or len(values) > _MAX_EXPANDED:
            raise ValueError(
                f"ConfigSpace forbidden clause {clause}: nas-hpo expresses an order clause as "
                f"the values it forbids, which needs a finite domain of at most "
                f"{_MAX_EXPANDED} values, but {name!r} is {param.domain_text()}"
            )
        bound = position(param, _plain(clause.value))
        hit = tuple(v for v in values if op(position(param, v), bound))
        return [[ForbiddenIn(name, hit)]] if hit else []
    raise ValueError(
        f"ConfigSpace forbidden clause {clause} ({type(clause).__name__}) is not supported: "
        "nas-hpo reads equals, in and order clauses and and / or conjunctions of them"
    )


def _child_of(cond: Any) -> str:
    CS = _cs()
    if isinstance(cond, (CS.AndConjunction, CS.OrConjunction)):
        return _child_of(cond.components[0])
    return cond.child.name


def from_configspace(cs: CS.ConfigurationSpace, space_type: type[SearchSpace]) -> SearchSpace:
    """``cs`` as a ``space_type`` (``SearchSpace``: this module only translates, it does not
    import the space model it translates into)."""
    params = [_param_from_cs(hp) for hp in cs.values()]
    by_name = {p.name: p for p in params}
    by_child: dict[str, list[Condition]] = {}
    for cond in cs.conditions:
        by_child.setdefault(_child_of(cond), []).append(_cond_from_cs(cond, by_name, cs))
    # ConfigSpace ANDs several conditions given separately for one child.
    conditions = {
        child: parts[0] if len(parts) == 1 else And(*parts) for child, parts in by_child.items()
    }
    forbidden = [c for f in cs.forbidden_clauses for c in _forbidden_from_cs(f, by_name)]
    name = cs.name if isinstance(cs.name, str) else None
    return space_type(params, conditions, forbidden, name=name)


def configspace_values(values: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """A ConfigSpace ``Configuration``'s items as a plain config dict."""
    return {k: _plain(v) for k, v in values}
