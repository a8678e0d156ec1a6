"""The conditional search space: parameters, the condition that activates each, forbidden clauses.

A space is data. A *config* is a plain dict of the active parameters only (inactive ones are
absent, never ``None``). Everything that walks a space does so in one topological order of the
condition graph, so a parent is always decided before its children.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_hpo.space import _moves
from nas_hpo.space._conditions import (
    Condition,
    Forbidden,
)
from nas_hpo.space._count import _ENUMERATE_UP_TO, count_valid, representatives
from nas_hpo.space._definition import check_conditions, check_forbidden, topological_order
from nas_hpo.space._encoding import Encoding
from nas_hpo.space._keys import ArchKeys
from nas_hpo.space._params import (
    Hyperparameter,
    _plain,
)

if TYPE_CHECKING:
    import ConfigSpace
    import optuna
    import torch

Config = dict[str, Any]
Builder = Callable[..., "torch.nn.Module"]

_REJECTION_DRAWS = 1_000
_FALLBACK_DRAWS = 100


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


class SearchSpace:
    """A conditional hyperparameter space.

    ``conditions`` maps a parameter's name to the one condition that makes it active (combine
    several with ``And`` / ``Or``); a parameter without an entry is always active. ``forbidden``
    lists clauses no valid config may trigger. Construction checks the whole definition: unknown
    names, cycles, condition values outside the parent's domain, a forbidden default, and clauses
    that leave no valid configuration at all.

    Equality is structural (order of parameters, of conjunction parts and of clauses does not
    matter); ``name`` and the model builder are labels and do not take part.
    """

    def __init__(
        self,
        params: Iterable[Hyperparameter],
        conditions: Mapping[str, Condition] | None = None,
        forbidden: Iterable[Forbidden] = (),
        *,
        name: str | None = None,
        builder: Builder | None = None,
        arch_key: Callable[[Mapping[str, Any]], str] | None = None,
        network_key: Callable[[Mapping[str, Any]], str] | None = None,
        supernet: Builder | None = None,
        encoder: Callable[[Mapping[str, Any]], Any] | None = None,
    ) -> None:
        self.name = name
        self._builder = builder
        self._encoder = encoder
        self._supernet = supernet
        self._key_fn = arch_key
        self._network_fn = network_key
        params = list(params)
        self._params: dict[str, Hyperparameter] = {}
        for p in params:
            if not isinstance(p, Hyperparameter):
                raise TypeError(f"not a hyperparameter: {p!r}")
            if p.name in self._params:
                raise ValueError(f"duplicate parameter name {p.name!r}")
            self._params[p.name] = p
        self._conditions: dict[str, Condition] = dict(conditions or {})
        self._forbidden: tuple[Forbidden, ...] = tuple(forbidden)
        check_conditions(self._params, self._conditions)
        self._order = topological_order(self._params, self._conditions)
        check_forbidden(self)
        self._size: float | None = None
        self._keys = ArchKeys(self._params)
        self._encoding: Encoding | None = None

    def __getstate__(self) -> dict[str, Any]:
        # The key writer's caches hold object ids, which mean nothing in another process.
        return {k: v for k, v in self.__dict__.items() if k not in ("_keys", "_encoding")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._keys = ArchKeys(self._params)
        self._encoding = None

    # ------------------------------------------------------------------ accessors

    @property
    def params(self) -> dict[str, Hyperparameter]:
        return dict(self._params)

    @property
    def conditions(self) -> dict[str, Condition]:
        return dict(self._conditions)

    @property
    def forbidden(self) -> tuple[Forbidden, ...]:
        return self._forbidden

    @property
    def order(self) -> list[str]:
        """Parameter names in the topological order every walk uses."""
        return list(self._order)

    def __len__(self) -> int:
        return len(self._params)

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __getitem__(self, name: str) -> Hyperparameter:
        return self._params[name]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return (self._params == other._params and self._conditions == other._conditions
                and frozenset(self._forbidden) == frozenset(other._forbidden))

    def __hash__(self) -> int:
        return hash((frozenset(self._params.items()), frozenset(self._forbidden)))

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return (f"<SearchSpace{label}: {len(self._params)} parameters, "
                f"{len(self._conditions)} conditions, {len(self._forbidden)} forbidden clauses>")

    def describe(self) -> str:
        """A readable listing of parameters, conditions and clauses."""
        lines = [repr(self)]
        for n in self._order:
            cond = self._conditions.get(n)
            lines.append(
                f"  {n}: {self._params[n].domain_text()}" + (f"  if {cond}" if cond else "")
            )
        lines.extend(f"  forbidden: {c}" for c in self._forbidden)
        return "\n".join(lines)

    # ------------------------------------------------------------------ activity

    def is_active(self, name: str, config: Mapping[str, Any]) -> bool:
        """Whether ``name`` is active given the (active) values in ``config``."""
        cond = self._conditions.get(name)
        return cond is None or cond.holds(config, self._params)

    def _fired(self, config: Mapping[str, Any]) -> Forbidden | None:
        return next((c for c in self._forbidden if c.fires(config)), None)

    def is_forbidden(self, config: Mapping[str, Any]) -> bool:
        return self._fired(config) is not None

    def _complete(self, config: Mapping[str, Any], fill: Callable[[Hyperparameter], Any]) -> Config:
        """Walk the order: keep present active values, fill newly active ones, drop inactive."""
        out: Config = {}
        for n in self._order:
            if self.is_active(n, out):
                out[n] = config[n] if n in config else fill(self._params[n])
        return out

    # ------------------------------------------------------------------ operations

    def default(self) -> Config:
        """The configuration of default values (its inactive parameters left out)."""
        return self._complete({}, lambda p: p.default)

    def sample(self, *, seed: int | np.random.Generator | None = None) -> Config:
        """A random valid configuration: each active parameter drawn from its own
        distribution, forbidden combinations rejected and redrawn. Where the forbidden clauses
        leave too little for rejection (a thousand draws in a row forbidden), each parameter is
        drawn among the values that can still be completed to a valid configuration."""
        rng = _rng(seed)
        for _ in range(_REJECTION_DRAWS):
            config = self._complete({}, lambda p: _plain(p.sample(rng)))
            if not self.is_forbidden(config):
                return config
        # Rejection cannot find a valid part that is tiny, or of measure zero (a float that
        # must hit one exact value): build the config parameter by parameter instead, each
        # drawn among the values that still leave a valid completion.
        config: Config = {}
        for n in self._order:
            if self.is_active(n, config):
                config[n] = self._draw_extendable(self._params[n], config, rng)
        return config

    def _extendable(self, partial: Mapping[str, Any]) -> bool:
        n = count_valid(
            self._order,
            self._params,
            self._conditions,
            self._forbidden,
            stop_at_first=True,
            fixed=partial,
        )
        return n > 0

    def _draw_extendable(
        self, param: Hyperparameter, partial: Mapping[str, Any], rng: np.random.Generator
    ) -> Any:
        """A value of ``param`` from its own distribution, among those with which ``partial``
        can still be completed to a valid configuration (there is one: ``partial`` could)."""

        def ok(v: Any) -> bool:
            return self._extendable({**partial, param.name: v})

        for _ in range(_FALLBACK_DRAWS):
            v = _plain(param.sample(rng))
            if ok(v):
                return v
        values = param.values()
        if values is None or len(values) > _ENUMERATE_UP_TO:
            # Whether a value can be completed depends only on its class.
            values = representatives(param.name, self._params, self._conditions, self._forbidden)
        good = [v for v in values if ok(v)]
        return good[int(rng.integers(len(good)))]

    def validate(self, config: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` naming the parameter if ``config`` is not a valid configuration."""
        if not isinstance(config, Mapping):
            raise ValueError(f"a configuration is a dict of parameter values, got {config!r}")
        unknown = [k for k in config if k not in self._params]
        if unknown:
            raise ValueError(
                f"unknown parameter {unknown[0]!r}; the space has: {', '.join(self._order)}"
            )
        seen: Config = {}
        for n in self._order:
            active = self.is_active(n, seen)
            if active and n not in config:
                why = (
                    f" (its condition {self._conditions[n]} holds)" if n in self._conditions else ""
                )
                raise ValueError(f"active parameter {n!r} is missing{why}")
            if not active and n in config:
                raise ValueError(
                    f"parameter {n!r} is inactive (needs {self._conditions[n]}) but is set "
                    f"to {config[n]!r}"
                )
            if active:
                if not self._params[n].contains(config[n]):
                    raise ValueError(
                        f"value {config[n]!r} of parameter {n!r} is outside its domain: "
                        f"{self._params[n].domain_text()}"
                    )
                seen[n] = config[n]
        hit = self._fired(seen)
        if hit is not None:
            raise ValueError(f"forbidden combination: {hit} (in {dict(config)})")

    def is_valid(self, config: Mapping[str, Any]) -> bool:
        try:
            self.validate(config)
        except ValueError:
            return False
        return True

    def size(self) -> float:
        """Exact number of valid configurations, counting conditions and forbidden clauses;
        ``math.inf`` when a float parameter can be active."""
        if self._size is None:
            n = count_valid(self._order, self._params, self._conditions, self._forbidden)
            self._size = n if math.isinf(n) else int(round(n))
        return self._size

    def is_finite(self) -> bool:
        return not math.isinf(self.size())

    def arch_key(self, config: Mapping[str, Any]) -> str:
        """A canonical key: equal for equal configs whatever the dict order. Spaces with an
        established name for their architectures (NAS-Bench-201 strings) supply their own."""
        return (self._key_fn or self._keys)(config)

    def network_key(self, config: Mapping[str, Any]) -> str:
        """Equal for configs that build the same network (``network_key=``: NB201's isomorphic
        cells, ``nb201.canonical``); ``arch_key`` where the space does not say."""
        return (self._network_fn or self.arch_key)(config)

    # ------------------------------------------------------------------ encodings

    @property
    def encoding(self) -> Encoding:
        """The generic fixed-length encoding of this space's configs (one-hot / ordinal
        columns and an active flag per conditional parameter; ``decode`` inverts it)."""
        if self._encoding is None:
            self._encoding = Encoding(self)
        return self._encoding

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """The features a surrogate model sees for ``config``: the space's own encoding where
        it offers one (``nb201``: the paths from input to output), else ``encoding``."""
        if self._encoder is not None:
            return np.asarray(self._encoder(config), dtype=float)
        return self.encoding.encode(config)

    # ------------------------------------------------------------------ neighbourhoods

    def _mutable(self, config: Mapping[str, Any]) -> list[str]:
        return [n for n in self._order if n in config and self._params[n].cardinality() > 1]

    def mutate(
        self, config: Mapping[str, Any], rng: np.random.Generator | int | None = None
    ) -> Config:
        """A child that differs from ``config`` in one active parameter. Parameters the change
        activates are drawn at random; those it deactivates are dropped; every other value is
        inherited. Forbidden children are redrawn; after a few hundred forbidden draws a random
        one of ``neighbors(config)`` is returned, and ``ValueError`` is raised when there is
        none (every one-step change is forbidden, or no parameter has a second value)."""
        return _moves.mutate(self, config, _rng(rng))

    def crossover(
        self,
        a: Mapping[str, Any],
        b: Mapping[str, Any],
        rng: np.random.Generator | int | None = None,
    ) -> Config:
        """A child of two valid configs: uniform crossover that respects the conditions.

        Walking the topological order, each parameter active in the child so far takes the
        value of parent ``a`` or ``b`` at random among the parents that have it, and is drawn
        from its distribution only when neither has it; so conditional genes (layer ``k``'s
        settings) are inherited whenever a parent has them. Forbidden children are redrawn;
        after a few hundred tries the child is a copy of ``a``."""
        return _moves.crossover(self, a, b, _rng(rng))

    def neighbors(self, config: Mapping[str, Any]) -> list[Config]:
        """All valid configs one step away: another choice of one categorical, one up or down
        for an integer, a tenth of the range up or down for a float (in log space for log
        scales). Parameters the step activates take their defaults, so the list is
        deterministic."""
        self.validate(config)
        return _moves.neighbors(self, config)

    def repair(self, config: Mapping[str, Any],
               rng: np.random.Generator | int | None = None) -> Config:
        """The nearest valid config to ``config`` (a draw that hit a forbidden clause, or any
        dict of values of this space's parameters): ``config`` completed where it lacks active
        values, then, if that is forbidden, a random one of its valid one-step neighbours, or
        a random valid config when none is."""
        return _moves.repair(self, config, _rng(rng))

    # ------------------------------------------------------------------ exports and model

    def to_configspace(self) -> ConfigSpace.ConfigurationSpace:
        """The same space as a ConfigSpace ``ConfigurationSpace`` (lossless)."""
        from nas_hpo.space._configspace import to_configspace

        return to_configspace(self)

    @classmethod
    def from_configspace(cls, cs: ConfigSpace.ConfigurationSpace) -> SearchSpace:
        """Read any ConfigSpace space (also one loaded from ConfigSpace's JSON)."""
        from nas_hpo.space._configspace import from_configspace

        return from_configspace(cs, cls)

    def suggest(self, trial: optuna.trial.BaseTrial) -> Config:
        """Optuna define-by-run: ask the trial for the active parameters only, in topological
        order. A forbidden result prunes the trial before anything is evaluated."""
        from nas_hpo.space._optuna import suggest

        return suggest(self, trial)

    @property
    def can_build(self) -> bool:
        """Whether the space builds networks (the catalogue's do; a bare one does not)."""
        return self._builder is not None

    def build(
        self, config: Mapping[str, Any], *, input_shape: tuple[int, ...], num_classes: int
    ) -> torch.nn.Module:
        """The network of ``config`` (spaces of the catalogue; a bare hyperparameter space has
        no network)."""
        if self._builder is None:
            raise TypeError(
                f"space {self.name or '(unnamed)'} has no model builder: only spaces of the "
                "catalogue (nas_hpo.spaces) build networks"
            )
        self.validate(config)
        return self._builder(dict(config), input_shape=tuple(input_shape), num_classes=num_classes)

    @property
    def has_supernet(self) -> bool:
        """Whether the space builds a weight-sharing supernet (``build_supernet``)."""
        return self._supernet is not None

    def build_supernet(self, *, input_shape: tuple[int, ...], num_classes: int,
                       **options: Any) -> torch.nn.Module:
        """The space's weight-sharing supernet: one module holding the weights of every
        architecture, called as ``supernet(x, config)`` to run ``config``'s path (the
        ``supernet`` objective trains it with single-path sampling) or, with a relaxed config,
        a mixture of them (``nas_hpo.oneshot``). ``options`` are those the space's supernet
        declares (``partial_channels`` for PC-DARTS); another is an error naming them."""
        if self._supernet is None:
            raise TypeError(
                f"space {self.name or '(unnamed)'} has no supernet (in the catalogue: every "
                "space but chain)"
            )
        if options:
            import inspect

            declared = [n for n in inspect.signature(self._supernet).parameters
                        if n not in ("input_shape", "num_classes")]
            unknown = sorted(set(options) - set(declared))
            if unknown:
                raise ValueError(f"the supernet of space {self.name or '(unnamed)'} takes no "
                                 f"option {', '.join(unknown)} (it takes: "
                                 f"{', '.join(declared) or 'none'})")
        return self._supernet(input_shape=tuple(input_shape), num_classes=num_classes,
                              **options)

    def with_builder(
        self,
        builder: Builder,
        *,
        name: str | None = None,
        arch_key: Callable[[Mapping[str, Any]], str] | None = None,
    ) -> SearchSpace:
        """A copy of this space that builds networks with ``builder`` (and no supernet: the
        old one would not share weights with the new networks)."""
        return SearchSpace(
            self._params.values(),
            self._conditions,
            self._forbidden,
            name=name or self.name,
            builder=builder,
            arch_key=arch_key or self._key_fn,
            network_key=self._network_fn,
            encoder=self._encoder,
        )
