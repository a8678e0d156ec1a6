"""Regularized evolution (Real, Aggarwal, Huang & Le, AAAI 2019) as an Optuna sampler.

Optuna has no aging evolution, and its GA samplers treat parameters outside the intersection
search space as independent random draws, which on a conditional space throws away what a
child should inherit. Here a child is the whole config at once: ``space.mutate`` of the
tournament winner, so it is always valid and keeps its parent's values except for the one
mutated parameter (and whatever that change activates or deactivates).

The population is the ``population_size`` most recently finished (complete) trials, so the
oldest member leaves as a new one joins ("aging"); a tournament samples ``sample_size`` of them
at random and the best is the parent. Until the population is full, children are random
samples of the space. The config decided for a trial is stored in its system attributes and
handed out parameter by parameter as the define-by-run objective asks for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from nas_hpo.space import SearchSpace

_CONFIG = "nas_hpo:re:config"
_PARENT = "nas_hpo:re:parent"


class RegularizedEvolutionSampler(BaseSampler):
    """Aging evolution over a ``SearchSpace`` (single objective)."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        population_size: int = 20,
        sample_size: int = 5,
        seed: int | None = None,
    ) -> None:
        if population_size < 2:
            raise ValueError(f"population_size must be >= 2, got {population_size}")
        if not 1 <= sample_size <= population_size:
            raise ValueError(
                f"sample_size must be in [1, population_size={population_size}], "
                f"got {sample_size}"
            )
        self.space = space
        self.population_size = population_size
        self.sample_size = sample_size
        self.seed = 0 if seed is None else seed
        self._fallback = RandomSampler(seed=seed)
        self._configs: dict[int, dict[str, Any]] = {}

    def reseed_rng(self) -> None:
        self._fallback.reseed_rng()

    # Everything is decided in before_trial; Optuna's relative machinery is not used.
    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if len(study.directions) != 1:
            raise ValueError("regularized evolution optimizes one objective")
        if _CONFIG in trial.system_attrs or "fixed_params" in trial.system_attrs:
            return  # a retried trial keeps its config; an enqueued one is not ours to change
        rng = np.random.default_rng([self.seed, trial.number])
        finished = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None
        ]
        finished.sort(key=lambda t: t.datetime_complete or t.datetime_start)
        population = finished[-self.population_size :]
        if len(population) < self.population_size:
            config = self.space.sample(seed=rng)
            parent = None
        else:
            picks = rng.choice(len(population), size=self.sample_size, replace=False)
            contestants = [population[int(i)] for i in picks]
            maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
            best = (max if maximize else min)(contestants, key=lambda t: t.value)
            config = self.space.mutate(best.params, rng)
            parent = best.number
        # Stored on the trial (the record says where each child came from) and kept here, as
        # the trial object Optuna hands to sample_independent was read before this call.
        self._configs[trial._trial_id] = config
        storage = study._storage
        storage.set_trial_system_attr(trial._trial_id, _CONFIG, config)
        storage.set_trial_system_attr(trial._trial_id, _PARENT, parent)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        config = self._configs.get(trial._trial_id)
        if config is None:
            config = study._storage.get_trial(trial._trial_id).system_attrs.get(_CONFIG, {})
        if param_name in config:
            return config[param_name]
        # A parameter the space does not know (the objective asked for more): random.
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._configs.pop(trial._trial_id, None)
        self._fallback.after_trial(study, trial, state, values)


def parent_of(trial: FrozenTrial) -> int | None:
    """The trial number of the parent a child was mutated from (``None``: a random sample)."""
    return trial.system_attrs.get(_PARENT)
