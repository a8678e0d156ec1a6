"""Moves in a space: mutation, crossover, one-step neighbourhoods and the repair of a forbidden
draw — what evolution, NSGA-II's breeding, local search and the engine's forbidden-draw repair
use. Each returns a valid config (conditions honoured, no forbidden clause)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_hpo.space._params import Categorical, Float, Hyperparameter, Integer, _plain

if TYPE_CHECKING:
    from nas_hpo.space._space import Config, SearchSpace

_MUTATION_DRAWS = 200


def _other_value(param: Hyperparameter, value: Any, rng: np.random.Generator) -> Any:
    if isinstance(param, Categorical):
        others = [c for i, c in enumerate(param.choices) if i != param.index(value)]
        return others[int(rng.integers(len(others)))]
    if isinstance(param, Integer):
        for _ in range(100):
            v = param.sample(rng)
            if v != value:
                return v
        v = int(rng.integers(param.low, param.high))
        return v + 1 if v >= value else v
    return _plain(param.sample(rng))


def mutate(space: SearchSpace, config: Mapping[str, Any], rng: np.random.Generator) -> Config:
    """See ``SearchSpace.mutate``."""
    space.validate(config)
    params = space.params
    names = space._mutable(config)
    if not names:
        raise ValueError("the configuration has no parameter with more than one value")
    for _ in range(_MUTATION_DRAWS):
        name = names[int(rng.integers(len(names)))]
        child = dict(config)
        child[name] = _other_value(params[name], config[name], rng)
        child = space._complete(child, lambda p: _plain(p.sample(rng)))
        if not space.is_forbidden(child):
            return child
    # Rejection alone cannot tell "unlucky" from "impossible"; the neighbour list can,
    # and it keeps a config whose every move is forbidden from costing unbounded time.
    options = neighbors(space, config)
    if not options:
        raise ValueError(
            f"no valid configuration is one step away from {dict(config)}: every change "
            "of one parameter hits a forbidden clause"
        )
    return options[int(rng.integers(len(options)))]


def crossover(space: SearchSpace, a: Mapping[str, Any], b: Mapping[str, Any],
              rng: np.random.Generator) -> Config:
    """See ``SearchSpace.crossover``."""
    space.validate(a)
    space.validate(b)
    params = space.params
    for _ in range(_MUTATION_DRAWS):
        child: Config = {}
        for n in space.order:
            if not space.is_active(n, child):
                continue
            donors = [p for p in (a, b) if n in p]
            if donors:
                child[n] = _plain(donors[int(rng.integers(len(donors)))][n])
            else:
                child[n] = _plain(params[n].sample(rng))
        if not space.is_forbidden(child):
            return child
    return dict(a)


def neighbors(space: SearchSpace, config: Mapping[str, Any]) -> list[Config]:
    """See ``SearchSpace.neighbors`` (``config`` is completed, not validated, here)."""
    params = space.params
    out: list[Config] = []
    seen = {space.arch_key(config)} if not space.is_forbidden(config) else set()
    for name in space._mutable(config):
        param, value = params[name], config[name]
        for v in _steps(param, value):
            child = dict(config)
            child[name] = v
            child = space._complete(child, lambda p: p.default)
            key = space.arch_key(child)
            if key not in seen and not space.is_forbidden(child):
                seen.add(key)
                out.append(child)
    return out


def repair(space: SearchSpace, config: Mapping[str, Any], rng: np.random.Generator) -> Config:
    """See ``SearchSpace.repair``."""
    params = space.params
    known = {k: v for k, v in config.items() if k in params and params[k].contains(v)}
    child = space._complete(known, lambda p: p.default)
    if not space.is_forbidden(child):
        return child
    options = neighbors(space, child)
    if options:
        return options[int(rng.integers(len(options)))]
    return space.sample(seed=rng)


def _steps(param: Hyperparameter, value: Any) -> list[Any]:
    if isinstance(param, Categorical):
        i = param.index(value)
        return [c for j, c in enumerate(param.choices) if j != i]
    if isinstance(param, Integer):
        return [v for v in (value - 1, value + 1) if param.low <= v <= param.high]
    if isinstance(param, Float):
        if param.log:
            lo, hi, x = math.log(param.low), math.log(param.high), math.log(value)
            step = (hi - lo) / 10
            cand = [math.exp(min(max(x + d, lo), hi)) for d in (-step, step)]
        else:
            step = (param.high - param.low) / 10
            cand = [min(max(value + d, param.low), param.high) for d in (-step, step)]
        return [min(max(v, param.low), param.high) for v in cand if v != value]
    return []  # a Constant has no other value
