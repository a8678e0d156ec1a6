"""Property tests: random conditional spaces checked against ConfigSpace, brute force and Optuna.

The strategy builds spaces of every parameter type whose conditions only read earlier
parameters (so the condition graph is a DAG), with random nested And / Or over every relation
kind and random forbidden clauses. Spaces whose construction raises ``ValueError`` (a forbidden
default, every configuration forbidden, ...) are discarded: those errors have unit tests.
"""

from __future__ import annotations

import io
import itertools
import math
import warnings
from collections.abc import Mapping
from typing import Any
from unittest import mock

import ConfigSpace as CS
import numpy as np
import optuna
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from nas_hpo.space import (
    And,
    Categorical,
    Condition,
    Constant,
    Equals,
    Float,
    Forbidden,
    ForbiddenAnd,
    ForbiddenEquals,
    ForbiddenIn,
    GreaterThan,
    Hyperparameter,
    In,
    Integer,
    LessThan,
    NotEquals,
    Or,
    SearchSpace,
    _count,
)

# Mixed types on purpose: a categorical may hold strings, ints, floats and a bool at once.
POOL: tuple[Any, ...] = ("a", "b", "c", 2, 7, 2.5, True)
FLOAT_BOUNDS = ((-2.0, -1.0), (0.0, 1.0), (0.5, 10.0), (1e-3, 1.0))

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)


# --------------------------------------------------------------------------- the strategy


@st.composite
def _param(draw: st.DrawFn, name: str, finite: bool) -> Hyperparameter:
    kinds = ["cat", "ord", "int", "int_log", "const"] + ([] if finite else ["float", "float_log"])
    kind = draw(st.sampled_from(kinds))
    if kind in ("cat", "ord"):
        choices = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=4, unique=True))
        if True in choices and any(type(c) in (int, float) for c in choices):
            choices.remove(True)  # refused by Categorical (unit-tested), not worth a discard
        default = draw(st.none() | st.sampled_from(choices))
        return Categorical(name, tuple(choices), default=default, ordered=kind == "ord")
    if kind == "int":
        low = draw(st.integers(-3, 3))
        high = low + draw(st.integers(1, 5))
        default = draw(st.none() | st.integers(low, high))
        return Integer(name, low, high, default=default)
    if kind == "int_log":
        low = draw(st.integers(1, 4))
        high = low + draw(st.integers(1, 12 if finite else 200))
        return Integer(name, low, high, log=True)
    if kind == "const":
        return Constant(name, draw(st.sampled_from(POOL)))
    low, high = draw(st.sampled_from(FLOAT_BOUNDS))
    if kind == "float_log":
        low = max(low, 1e-3)
        high = max(high, low * 10)
    return Float(name, low, high, log=kind == "float_log")


def _points(p: Hyperparameter) -> list[Any]:
    """Values a condition or a clause may single out: the whole finite domain, or a few exact
    points of a float range (bounds, midpoint, default)."""
    values = p.values()
    if values is not None:
        return values
    assert isinstance(p, Float)
    return sorted({p.low, p.high, (p.low + p.high) / 2, p.default})


def _orderable(p: Hyperparameter) -> bool:
    return isinstance(p, (Integer, Float)) or (isinstance(p, Categorical) and p.ordered)


@st.composite
def _relation(draw: st.DrawFn, parents: list[Hyperparameter]) -> Condition:
    parent = draw(st.sampled_from(parents))
    points = _points(parent)
    kinds = ["eq", "ne", "in"] + (["gt", "lt"] if _orderable(parent) else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "in":
        values = draw(st.lists(st.sampled_from(points), min_size=1, max_size=3, unique=True))
        return In(parent.name, tuple(values))
    cls = {"eq": Equals, "ne": NotEquals, "gt": GreaterThan, "lt": LessThan}[kind]
    return cls(parent.name, draw(st.sampled_from(points)))


@st.composite
def _condition(draw: st.DrawFn, parents: list[Hyperparameter], depth: int = 0) -> Condition:
    if depth >= 2 or draw(st.integers(0, 2)) > 0:
        return draw(_relation(parents))
    parts = draw(st.lists(_condition(parents, depth + 1), min_size=2, max_size=3))
    return draw(st.sampled_from([And, Or]))(*parts)


@st.composite
def _clause_leaf(draw: st.DrawFn, params: list[Hyperparameter]) -> Forbidden:
    p = draw(st.sampled_from(params))
    points = _points(p)
    if draw(st.booleans()):
        return ForbiddenEquals(p.name, draw(st.sampled_from(points)))
    values = draw(st.lists(st.sampled_from(points), min_size=1, max_size=3, unique=True))
    return ForbiddenIn(p.name, tuple(values))


@st.composite
def _clause(draw: st.DrawFn, params: list[Hyperparameter]) -> Forbidden:
    if draw(st.booleans()):
        return draw(_clause_leaf(params))
    return ForbiddenAnd(*draw(st.lists(_clause_leaf(params), min_size=2, max_size=3)))


@st.composite
def spaces(draw: st.DrawFn, *, finite: bool = False, max_params: int = 6) -> SearchSpace:
    n = draw(st.integers(1, max_params))
    params = [draw(_param(f"p{i}", finite)) for i in range(n)]
    conditions: dict[str, Condition] = {}
    for i in range(1, n):
        if draw(st.integers(0, 9)) < 6:
            conditions[params[i].name] = draw(_condition(params[:i]))
    forbidden = draw(st.lists(_clause(params), max_size=2))
    # Declaration order is shuffled so that the space, not the test, must find the
    # topological order.
    order = draw(st.permutations(params))
    try:
        return SearchSpace(order, conditions, forbidden)
    except ValueError:
        assume(False)
        raise  # unreachable: assume(False) raises


# --------------------------------------------------------------------------- helpers


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _cs_valid(cs: CS.ConfigurationSpace, values: Mapping[str, Any]) -> bool:
    """ConfigSpace's own verdict on a dict of values."""
    try:
        CS.Configuration(cs, values=dict(values)).check_valid_configuration()
    except ValueError:
        # ConfigSpace's verdicts (inactive set, active missing, illegal value, forbidden) are
        # all ValueError subclasses; anything else is a crash and should fail the test.
        return False
    return True


def _domain(p: Hyperparameter) -> list[Any]:
    values = p.values()
    assert values is not None
    return values


_ABSENT = object()


def _brute_force(space: SearchSpace) -> int:
    """Count valid configs by trying every assignment of every parameter, absence included,
    and asking validate about each: nothing shared with the class-based counter."""
    names = list(space.params)
    domains = [_domain(space[n]) + [_ABSENT] for n in names]
    total = 0
    for combo in itertools.product(*domains):
        config = {n: v for n, v in zip(names, combo, strict=True) if v is not _ABSENT}
        total += space.is_valid(config)
    return total


class _SamplerTooSlow(Exception):
    pass


def _sample_or_discard(cs: CS.ConfigurationSpace, n: int) -> list:
    """ConfigSpace's rejection sampler draws every parameter and throws away forbidden draws;
    on a generated space that is almost all forbidden it runs for many minutes (a CI run hung
    here). Such an example says nothing about conditions: discard it after 10 s."""
    import signal

    def expire(signum, frame):
        raise _SamplerTooSlow

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, 10.0)
    try:
        return list(cs.sample_configuration(n))
    except _SamplerTooSlow:
        assume(False)
        raise  # unreachable: assume(False) raises
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _product(space: SearchSpace) -> float:
    return math.prod(space[n].cardinality() + 1 for n in space.params)


# --------------------------------------------------------------------------- properties


@SETTINGS
@given(space=spaces())
def test_samples_are_valid_for_us_and_for_configspace(space: SearchSpace) -> None:
    note(space.describe())
    cs = space.to_configspace()
    for seed in range(8):
        config = space.sample(seed=seed)
        space.validate(config)
        # Configuration(values=...) runs ConfigSpace's full check; raise on any disagreement.
        CS.Configuration(cs, values=config).check_valid_configuration()
        assert cs.get_active_hyperparameters(CS.Configuration(cs, values=config)) == set(config)
    default = space.default()
    space.validate(default)
    cs_default = {k: _plain(v) for k, v in dict(cs.get_default_configuration()).items()}
    assert cs_default == default


@SETTINGS
@given(space=spaces(), seed=st.integers(0, 2**16))
def test_active_means_the_same_in_both_directions(space: SearchSpace, seed: int) -> None:
    note(space.describe())
    cs = space.to_configspace()
    cs.seed(seed)
    # ConfigSpace's sampler can emit configurations its own check rejects (see the docstring
    # of nas_hpo.space._conditions), so what must agree is the verdict, config by config.
    for cfg in _sample_or_discard(cs, 10):
        # Raw values on purpose: ConfigSpace hands back numpy scalars, which validate takes.
        values = dict(cfg)
        valid = _cs_valid(cs, values)
        assert space.is_valid(values) == valid, values
        if valid:
            assert cs.get_active_hyperparameters(cfg) == set(values)
    for k in range(4):
        config = space.sample(seed=seed + k)
        for name, p in space.params.items():
            changed = dict(config)
            if name in config:
                del changed[name]
            else:
                changed[name] = p.default
            assert not space.is_valid(changed), (name, changed)
            assert not _cs_valid(cs, changed), (name, changed)


@SETTINGS
@given(space=spaces())
def test_configspace_round_trips(space: SearchSpace) -> None:
    note(space.describe())
    cs = space.to_configspace()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # our own exports carry no priors to warn about
        back = SearchSpace.from_configspace(cs)
    assert back == space
    buf = io.StringIO()
    cs.to_json(buf)
    buf.seek(0)
    from_json = SearchSpace.from_configspace(CS.ConfigurationSpace.from_json(buf))
    assert from_json == space
    assert from_json.size() == space.size()


@SETTINGS
@given(space=spaces(finite=True, max_params=5))
def test_size_equals_brute_force(space: SearchSpace) -> None:
    note(space.describe())
    assume(_product(space) <= 20_000)
    expected = _brute_force(space)
    assert space.size() == expected
    # The counter has a second way to build classes (ranges split at thresholds, used for
    # large integer domains); force it on these small domains too.
    with mock.patch.object(_count, "_ENUMERATE_UP_TO", 1):
        fresh = SearchSpace(space.params.values(), space.conditions, space.forbidden)
        assert fresh.size() == expected


@SETTINGS
@given(space=spaces(), seed=st.integers(0, 2**16))
def test_suggest_under_optuna_yields_only_valid_configs(space: SearchSpace, seed: int) -> None:
    note(space.describe())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for _ in range(6):
        trial = study.ask()
        try:
            config = space.suggest(trial)
        except optuna.TrialPruned:
            # Pruned only for a forbidden combination: everything else about it is valid.
            params = dict(trial.params)
            assert space.is_forbidden(params)
            with pytest.raises(ValueError, match="forbidden combination"):
                space.validate(params)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        space.validate(config)
        assert trial.params == config
        study.tell(trial, 0.0)


@SETTINGS
@given(space=spaces(), seed=st.integers(0, 2**16))
def test_mutate_and_neighbors_give_valid_configs(space: SearchSpace, seed: int) -> None:
    note(space.describe())
    rng = np.random.default_rng(seed)
    config = space.sample(seed=rng)
    mutable = [n for n in config if space[n].cardinality() > 1]
    if not mutable:
        with pytest.raises(ValueError):
            space.mutate(config, rng)
        assert space.neighbors(config) == []
        return
    neighbors = space.neighbors(config)
    for _ in range(5):
        try:
            child = space.mutate(config, rng)
        except ValueError:
            # Allowed only when no one-step change is valid at all.
            assert neighbors == []
            break
        space.validate(child)
        _assert_one_step(config, child)
    for child in neighbors:
        space.validate(child)
        _assert_one_step(config, child)


def _assert_one_step(parent: Mapping[str, Any], child: Mapping[str, Any]) -> None:
    """Exactly one parameter active in both changed; every other shared one is inherited."""
    changed = [n for n in parent if n in child and child[n] != parent[n]]
    assert len(changed) == 1, (parent, child)
    assert child != parent
