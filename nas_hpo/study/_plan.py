"""From a checked study description to its components: the plan of a study.

Names are resolved through the registries (spaces, objectives, strategies) or imported as
``module:function``; errors name the section. The plan is what the lifecycle and every backend
work from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas_hpo import objectives, spaces, strategies
from nas_hpo._objective import CallableObjective, Objective
from nas_hpo._registry import UnknownNameError
from nas_hpo.space import SearchSpace
from nas_hpo.study._checks import SpecError, import_callable
from nas_hpo.study._evaluate import Evaluator, ProxyScorer, evaluator_for
from nas_hpo.study._spec import StudySpec

__all__ = ["Plan", "check_directions", "evaluation_parts", "prepare", "resolve_objective",
           "resolve_space"]


@dataclass(frozen=True)
class Plan:
    """Everything a backend needs: the resolved components of one study."""

    spec: StudySpec
    space: SearchSpace
    objective: Objective
    strategy: strategies.Strategy
    directions: tuple[str, ...]
    #: Print a progress line (trials done, best so far, ETA) to stderr as trials finish.
    progress: bool = False

    @property
    def metric_names(self) -> tuple[str, ...] | None:
        """The names of the study's values (the study file's, else the objective's; None:
        unnamed)."""
        names = self.spec.metric_names or self.objective.metric_names
        return None if names is None else tuple(names)

    def evaluator(self) -> Evaluator:
        """The evaluator of this study's trials in this process."""
        return evaluator_for(self.spec, self.space, self.objective, len(self.directions))

    def strategy_with_seed(self, seed: int) -> strategies.Strategy:
        """The same strategy, seeded with ``seed`` (see ``FirstTrialSeeded``)."""
        return _strategy(self.spec, self.space, self.objective, self.directions, seed)


def resolve_space(spec: StudySpec) -> SearchSpace:
    """The study's space: a ``SearchSpace`` given from Python, a registered name with its
    options, or a ``module:function`` factory called with them."""
    item = spec.space
    if item.obj is not None:
        if not isinstance(item.obj, SearchSpace):
            raise SpecError(f"space= must be a registered name or a SearchSpace, got "
                            f"{type(item.obj).__name__}")
        return item.obj
    try:
        if ":" in item.name:
            fn = import_callable(item.name, spec.where("space", "name"))
            space = fn(**item.options)
            if not isinstance(space, SearchSpace):
                raise SpecError(f"{spec.where('space', 'name')}: {item.name} returned "
                                f"{type(space).__name__}, not a SearchSpace")
            if space.name is None:
                space.name = item.name
            return space
        return spaces.get(item.name, **item.options)
    except SpecError:
        raise
    except (ValueError, TypeError) as e:
        raise SpecError(f"{spec.where('space')}: {e}") from None


def resolve_objective(spec: StudySpec) -> Objective:
    """The study's objective: an ``Objective`` or a callable given from Python, a registered
    name with its options, or a ``module:function`` callable."""
    item = spec.objective
    if item.obj is not None:
        if isinstance(item.obj, Objective):
            return item.obj
        if not callable(item.obj):
            raise SpecError(f"objective= must be a name or a callable, got {item.obj!r}")
        return CallableObjective(item.obj, spec.directions)
    if ":" in item.name:
        fn = import_callable(item.name, spec.where("objective", "name"))
        return CallableObjective(fn, spec.directions)
    try:
        return objectives.get(item.name, **item.options)
    except (ValueError, TypeError) as e:
        raise SpecError(f"{spec.where('objective')}: {e}") from None


def _strategy(spec: StudySpec, space: SearchSpace, objective: Objective,
              directions: tuple[str, ...], seed: int) -> strategies.Strategy:
    def proxies(config: Mapping[str, Any], names: tuple[str, ...]) -> Mapping[str, float]:
        return ProxyScorer(space, objective, names, seed)(config)

    setting = strategies.Setting(space=space, seed=seed, directions=directions,
                                 fidelities=tuple(objective.fidelities),
                                 proxies=proxies if space.can_build else None,
                                 data_source=objective.data_source())
    try:
        return strategies.get(spec.strategy.name, setting, **spec.strategy.options)
    except UnknownNameError as e:
        raise SpecError(f"{spec.where('strategy', 'name')}: {e}") from None
    except (ValueError, TypeError) as e:
        raise SpecError(f"{spec.where('strategy')}: {e}") from None


def prepare(spec: StudySpec, *, progress: bool = False) -> Plan:
    """Resolve the names of a checked spec into objects (errors name the section). The
    strategy is seeded with the study seed; a process whose first trial is not the study's
    first reseeds it (``FirstTrialSeeded``)."""
    space = resolve_space(spec)
    objective = resolve_objective(spec)
    try:
        objective.check_space(space)
    except ValueError as e:
        raise SpecError(f"{spec.where('objective')}: {e}") from None
    directions = check_directions(spec, objective)
    strategy = _strategy(spec, space, objective, directions, spec.seed)
    return Plan(spec, space, objective, strategy, directions, progress)


def check_directions(spec: StudySpec, objective: Objective) -> tuple[str, ...]:
    """The study's directions: the study file's, which must match the objective's number of
    values, or the objective's."""
    directions = spec.directions or objective.directions
    if len(directions) != len(objective.directions):
        raise SpecError(
            f"{spec.where('study', 'directions')}: the objective {spec.objective.name!r} gives "
            f"{len(objective.directions)} value(s) ({', '.join(objective.directions)}), but "
            f"{len(directions)} direction(s) are set"
        )
    if spec.metric_names is not None and len(spec.metric_names) != len(directions):
        raise SpecError(f"{spec.where('study', 'metric_names')}: {len(spec.metric_names)} "
                        f"name(s) for {len(directions)} value(s)")
    return tuple(directions)


def evaluation_parts(spec: StudySpec) -> tuple[SearchSpace, Objective, tuple[str, ...]]:
    """What evaluating a trial needs (space, objective, directions), without the strategy:
    a Ray worker's share of ``prepare``."""
    space = resolve_space(spec)
    objective = resolve_objective(spec)
    return space, objective, check_directions(spec, objective)

