"""Conditions (when a parameter is active) and forbidden clauses (which combinations are invalid).

The one definition of "active" used everywhere in nas-hpo: a parameter is active iff it has no
condition, or its condition holds; a condition on a parent holds only if that parent is itself
active (present in the config) and its value satisfies the relation. ``And`` holds iff all of its
parts hold, ``Or`` iff any does.

A forbidden clause is triggered only when every parameter it mentions is active and matches; a
clause on an absent parameter never fires.

How ConfigSpace 1.2 differs, and what the export does about it (the property tests check that
our verdict and ConfigSpace's check agree on every configuration of random nested spaces):

1. ``NotEqualsCondition`` on an inactive parent. ConfigSpace stores an inactive value as NaN and
   its check, its sampler and ``get_active_hyperparameters`` compare vectors, where
   ``NaN != v`` is true: the child counts as active although its parent is not. Its default
   configuration, computed from values, reads the same condition as false, so ConfigSpace even
   refuses a space whose default leaves that parent inactive. Every other relation is false on
   NaN, as here. The export therefore writes ``NotEquals(p, v)`` on a conditional ``p`` as
   ``p != v && <p is set>``, which means the same in both readings (see ``_configspace``);
   reading a hand-written bare ``NotEqualsCondition`` on a conditional parent warns and uses
   our rule.
2. Conjunctions that look alike. ConfigSpace groups children whose conditions it deems
   equivalent and checks and samples the group with the first child's condition; its test
   (``Conjunction.equivalent_condition_on_parent``) does not tell ``And`` from ``Or``. The export
   lengthens such a conjunction (repeats a part) so that no two different ones look alike.
3. Sampling order (not fixable by the export, and not a difference in meaning). ConfigSpace's
   ``sample_configuration`` decides children in order of their shallowest parent, so a child
   reading both a top-level parameter and a deeper conditional one can be decided before that
   deeper parent is switched off; such samples fail ConfigSpace's own check, and ours.
   ``SearchSpace.sample`` and ``suggest`` walk a topological order and never produce them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas_hpo.space._params import Categorical, Hyperparameter, Value, _plain, _same, position


class Condition:
    """Base class: ``holds(config, params)`` and the parents it reads."""

    def holds(self, config: Mapping[str, Any], params: Mapping[str, Hyperparameter]) -> bool:
        raise NotImplementedError

    def parents(self) -> tuple[str, ...]:
        raise NotImplementedError

    def leaves(self) -> tuple[_Relation, ...]:
        raise NotImplementedError


@dataclass(frozen=True)
class _Relation(Condition):
    parent: str
    value: Any

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _plain(self.value))

    def parents(self) -> tuple[str, ...]:
        return (self.parent,)

    def leaves(self) -> tuple[_Relation, ...]:
        return (self,)

    def holds(self, config: Mapping[str, Any], params: Mapping[str, Hyperparameter]) -> bool:
        if self.parent not in config:
            return False
        return self.test(config[self.parent], params[self.parent])

    def test(self, value: Any, param: Hyperparameter) -> bool:
        raise NotImplementedError

    def mentioned(self) -> tuple[Any, ...]:
        """Values of the parent this relation singles out (for the exact counter)."""
        return (self.value,)


@dataclass(frozen=True)
class Equals(_Relation):
    """Active iff ``parent == value``."""

    def test(self, value: Any, param: Hyperparameter) -> bool:
        return _same(value, self.value)

    def __str__(self) -> str:
        return f"{self.parent} == {self.value!r}"


@dataclass(frozen=True)
class NotEquals(_Relation):
    """Active iff the parent is active and ``parent != value``."""

    def test(self, value: Any, param: Hyperparameter) -> bool:
        return not _same(value, self.value)

    def __str__(self) -> str:
        return f"{self.parent} != {self.value!r}"


@dataclass(frozen=True)
class In(_Relation):
    """Active iff ``parent`` is one of ``value`` (a tuple of values)."""

    def __post_init__(self) -> None:
        values = tuple(_plain(v) for v in self.value)
        if not values:
            raise ValueError(f"In condition on {self.parent!r} needs at least one value")
        object.__setattr__(self, "value", values)

    def test(self, value: Any, param: Hyperparameter) -> bool:
        return any(_same(value, v) for v in self.value)

    def mentioned(self) -> tuple[Any, ...]:
        return self.value

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, In)
            and self.parent == other.parent
            and _value_set(self.value) == _value_set(other.value)
        )

    def __hash__(self) -> int:
        return hash(("In", self.parent, _value_set(self.value)))

    def __str__(self) -> str:
        return f"{self.parent} in {list(self.value)!r}"


@dataclass(frozen=True)
class GreaterThan(_Relation):
    """Active iff ``parent > value``: numbers, or ordered categoricals by position."""

    def test(self, value: Any, param: Hyperparameter) -> bool:
        return position(param, value) > position(param, self.value)

    def mentioned(self) -> tuple[Any, ...]:
        return ()

    def __str__(self) -> str:
        return f"{self.parent} > {self.value!r}"


@dataclass(frozen=True)
class LessThan(_Relation):
    """Active iff ``parent < value``: numbers, or ordered categoricals by position."""

    def test(self, value: Any, param: Hyperparameter) -> bool:
        return position(param, value) < position(param, self.value)

    def mentioned(self) -> tuple[Any, ...]:
        return ()

    def __str__(self) -> str:
        return f"{self.parent} < {self.value!r}"


class _Conjunction(Condition):
    def __init__(self, *parts: Condition) -> None:
        if len(parts) < 2:
            raise ValueError(f"{type(self).__name__} needs at least two conditions")
        for p in parts:
            if not isinstance(p, Condition):
                raise TypeError(f"{type(self).__name__} takes conditions, got {p!r}")
        self.parts = tuple(parts)

    def parents(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for p in self.parts:
            for name in p.parents():
                seen[name] = None
        return tuple(seen)

    def leaves(self) -> tuple[_Relation, ...]:
        return tuple(leaf for p in self.parts for leaf in p.leaves())

    def __eq__(self, other: object) -> bool:
        # Order of the parts does not change the meaning, so it does not change equality.
        return type(self) is type(other) and frozenset(self.parts) == frozenset(other.parts)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, frozenset(self.parts)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(p) for p in self.parts)})"


class And(_Conjunction):
    """Holds iff every part holds."""

    def holds(self, config: Mapping[str, Any], params: Mapping[str, Hyperparameter]) -> bool:
        return all(p.holds(config, params) for p in self.parts)

    def __str__(self) -> str:
        return "(" + " and ".join(str(p) for p in self.parts) + ")"


class Or(_Conjunction):
    """Holds iff at least one part holds."""

    def holds(self, config: Mapping[str, Any], params: Mapping[str, Hyperparameter]) -> bool:
        return any(p.holds(config, params) for p in self.parts)

    def __str__(self) -> str:
        return "(" + " or ".join(str(p) for p in self.parts) + ")"


def _value_set(values: tuple[Any, ...]) -> frozenset[tuple[type, Any]]:
    return frozenset((type(v), v) for v in values)


# --------------------------------------------------------------------------- forbidden clauses


class Forbidden:
    """Base class of forbidden clauses: ``fires(config)`` says the combination is invalid."""

    def fires(self, config: Mapping[str, Any]) -> bool:
        raise NotImplementedError

    def names(self) -> tuple[str, ...]:
        raise NotImplementedError

    def leaves(self) -> tuple[ForbiddenEquals | ForbiddenIn, ...]:
        raise NotImplementedError


@dataclass(frozen=True)
class ForbiddenEquals(Forbidden):
    """Forbids ``name == value``."""

    name: str
    value: Value

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _plain(self.value))

    def fires(self, config: Mapping[str, Any]) -> bool:
        return self.name in config and _same(config[self.name], self.value)

    def names(self) -> tuple[str, ...]:
        return (self.name,)

    def leaves(self) -> tuple[ForbiddenEquals | ForbiddenIn, ...]:
        return (self,)

    def mentioned(self) -> tuple[Any, ...]:
        return (self.value,)

    def __str__(self) -> str:
        return f"{self.name} == {self.value!r}"


@dataclass(frozen=True)
class ForbiddenIn(Forbidden):
    """Forbids ``name in values``."""

    name: str
    values: tuple[Value, ...]

    def __post_init__(self) -> None:
        values = tuple(_plain(v) for v in self.values)
        if not values:
            raise ValueError(f"ForbiddenIn on {self.name!r} needs at least one value")
        object.__setattr__(self, "values", values)

    def fires(self, config: Mapping[str, Any]) -> bool:
        return self.name in config and any(_same(config[self.name], v) for v in self.values)

    def names(self) -> tuple[str, ...]:
        return (self.name,)

    def leaves(self) -> tuple[ForbiddenEquals | ForbiddenIn, ...]:
        return (self,)

    def mentioned(self) -> tuple[Any, ...]:
        return self.values

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ForbiddenIn)
            and self.name == other.name
            and _value_set(self.values) == _value_set(other.values)
        )

    def __hash__(self) -> int:
        return hash(("ForbiddenIn", self.name, _value_set(self.values)))

    def __str__(self) -> str:
        return f"{self.name} in {list(self.values)!r}"


class ForbiddenAnd(Forbidden):
    """Forbids the combination: fires iff every part fires."""

    def __init__(self, *parts: Forbidden) -> None:
        if len(parts) < 2:
            raise ValueError("ForbiddenAnd needs at least two clauses")
        for p in parts:
            if not isinstance(p, Forbidden):
                raise TypeError(f"ForbiddenAnd takes forbidden clauses, got {p!r}")
        self.parts = tuple(parts)

    def fires(self, config: Mapping[str, Any]) -> bool:
        return all(p.fires(config) for p in self.parts)

    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for p in self.parts for n in p.names()))

    def leaves(self) -> tuple[ForbiddenEquals | ForbiddenIn, ...]:
        return tuple(leaf for p in self.parts for leaf in p.leaves())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ForbiddenAnd) and frozenset(self.parts) == frozenset(other.parts)

    def __hash__(self) -> int:
        return hash(("ForbiddenAnd", frozenset(self.parts)))

    def __repr__(self) -> str:
        return f"ForbiddenAnd({', '.join(repr(p) for p in self.parts)})"

    def __str__(self) -> str:
        return "(" + " and ".join(str(p) for p in self.parts) + ")"


def check_relation_value(rel: _Relation, param: Hyperparameter, child: str) -> None:
    """A condition's value must lie in its parent's domain, and order relations need an order."""
    values = rel.value if isinstance(rel, In) else (rel.value,)
    for v in values:
        if not param.contains(v):
            raise ValueError(
                f"condition of {child!r}: {v!r} is not a value of {rel.parent!r} "
                f"({param.domain_text()})"
            )
    if isinstance(rel, (GreaterThan, LessThan)) and isinstance(param, Categorical):
        if not param.ordered:
            raise ValueError(
                f"condition of {child!r}: {type(rel).__name__} needs an ordered parent, but "
                f"{rel.parent!r} is an unordered categorical (use ordered=True)"
            )
