"""Translation between nas-hpo spaces and ConfigSpace 1.x (both directions, nothing else).

Our space → ConfigSpace is lossless: every parameter keeps its domain, scale and default; each
condition and conjunction maps to its ConfigSpace class; forbidden clauses likewise. The way back
reads any ConfigSpace space; ConfigSpace's priors (normal / beta distributions, categorical
weights) have no counterpart here, so they are dropped with a warning naming the parameter while
the domain itself is kept.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
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
from nas_hpo.space._params import Categorical, Constant, Float, Hyperparameter, Integer, _plain

if TYPE_CHECKING:
    import ConfigSpace as CS

    from nas_hpo.space._space import SearchSpace


def _cs() -> Any:
    try:
        import ConfigSpace
    except ImportError as e:  # pragma: no cover - ConfigSpace is a hard dependency
        raise ImportError("the ConfigSpace export needs ConfigSpace: pip install ConfigSpace") from e
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


def _cond_to_cs(cond: Condition, child: Any, hps: dict[str, Any]) -> Any:
    CS = _cs()
    if isinstance(cond, And):
        return CS.AndConjunction(*(_cond_to_cs(c, child, hps) for c in cond.parts))
    if isinstance(cond, Or):
        return CS.OrConjunction(*(_cond_to_cs(c, child, hps) for c in cond.parts))
    if isinstance(cond, In):
        return CS.InCondition(child, hps[cond.parent], list(cond.value))
    return getattr(CS, _REL_TO_CS[type(cond)])(child, hps[cond.parent], cond.value)


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
    conds = [_cond_to_cs(c, hps[child], hps) for child, c in space.conditions.items()]
    if conds:
        cs.add(*conds)
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
        return Categorical(name, tuple(_plain(v) for v in hp.sequence),
                           default=_plain(hp.default_value), ordered=True)
    if isinstance(hp, CS.CategoricalHyperparameter):
        weights = getattr(hp, "weights", None)
        if weights is not None and len(set(float(w) for w in weights)) > 1:
            warnings.warn(
                f"ConfigSpace parameter {name!r}: categorical weights are not kept "
                "(nas-hpo samples choices uniformly)",
                UserWarning, stacklevel=3,
            )
        return Categorical(name, tuple(_plain(v) for v in hp.choices),
                           default=_plain(hp.default_value))
    if isinstance(hp, (CS.UniformIntegerHyperparameter, CS.NormalIntegerHyperparameter,
                       CS.BetaIntegerHyperparameter)):
        if not isinstance(hp, CS.UniformIntegerHyperparameter):
            _warn_prior(name, hp)
        return Integer(name, int(hp.lower), int(hp.upper), log=bool(hp.log),
                       default=int(_plain(hp.default_value)))
    if isinstance(hp, (CS.UniformFloatHyperparameter, CS.NormalFloatHyperparameter,
                       CS.BetaFloatHyperparameter)):
        if not isinstance(hp, CS.UniformFloatHyperparameter):
            _warn_prior(name, hp)
        return Float(name, float(hp.lower), float(hp.upper), log=bool(hp.log),
                     default=float(_plain(hp.default_value)))
    raise ValueError(f"ConfigSpace parameter {name!r} has an unsupported type {type(hp).__name__}")


def _warn_prior(name: str, hp: Any) -> None:
    warnings.warn(
        f"ConfigSpace parameter {name!r}: the {type(hp).__name__} prior is not kept "
        f"(nas-hpo samples [{hp.lower}, {hp.upper}] uniformly)",
        UserWarning, stacklevel=4,
    )


def _cond_from_cs(cond: Any) -> Condition:
    CS = _cs()
    if isinstance(cond, CS.AndConjunction):
        return And(*(_cond_from_cs(c) for c in cond.components))
    if isinstance(cond, CS.OrConjunction):
        return Or(*(_cond_from_cs(c) for c in cond.components))
    parent = cond.parent.name
    if isinstance(cond, CS.InCondition):
        return In(parent, tuple(_plain(v) for v in cond.values))
    for ours, theirs in _REL_TO_CS.items():
        if isinstance(cond, getattr(CS, theirs)):
            return ours(parent, _plain(cond.value))
    raise ValueError(f"ConfigSpace condition {cond} ({type(cond).__name__}) is not supported")


def _forbidden_from_cs(clause: Any) -> Forbidden:
    CS = _cs()
    if isinstance(clause, CS.ForbiddenAndConjunction):
        return ForbiddenAnd(*(_forbidden_from_cs(c) for c in clause.components))
    if isinstance(clause, CS.ForbiddenInClause):
        return ForbiddenIn(clause.hyperparameter.name, tuple(_plain(v) for v in clause.values))
    if isinstance(clause, CS.ForbiddenEqualsClause):
        return ForbiddenEquals(clause.hyperparameter.name, _plain(clause.value))
    raise ValueError(
        f"ConfigSpace forbidden clause {clause} ({type(clause).__name__}) is not supported: "
        "nas-hpo reads equals, in and and-conjunctions of them"
    )


def _child_of(cond: Any) -> str:
    CS = _cs()
    if isinstance(cond, (CS.AndConjunction, CS.OrConjunction)):
        return _child_of(cond.components[0])
    return cond.child.name


def from_configspace(cs: CS.ConfigurationSpace) -> SearchSpace:
    from nas_hpo.space._space import SearchSpace

    params = [_param_from_cs(hp) for hp in cs.values()]
    by_child: dict[str, list[Condition]] = {}
    for cond in cs.conditions:
        by_child.setdefault(_child_of(cond), []).append(_cond_from_cs(cond))
    # ConfigSpace ANDs several conditions given separately for one child.
    conditions = {
        child: parts[0] if len(parts) == 1 else And(*parts) for child, parts in by_child.items()
    }
    forbidden = [_forbidden_from_cs(f) for f in cs.forbidden_clauses]
    name = cs.name if isinstance(cs.name, str) else None
    return SearchSpace(params, conditions, forbidden, name=name)


def configspace_values(values: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """A ConfigSpace ``Configuration``'s items as a plain config dict."""
    return {k: _plain(v) for k, v in values}
