"""Best-improvement local search over ``space.neighbors`` (White, Nolen, Savani & Ghiasi, "Local
search is state of the art for NAS benchmarks", 2020), as an Optuna sampler; Optuna has none.

From a random start, every neighbour of the current architecture (one parameter changed, see
``SearchSpace.neighbors``) is evaluated; the search moves to the best neighbour if it beats the
current one, otherwise that is a local optimum and the search restarts from a new random
architecture. Architectures already evaluated in the study are not evaluated again. The walk
is kept in this sampler's memory, so a resumed study starts a fresh walk (its trials are all
kept; the walk just restarts).
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

_ROLE = "nas_hpo:ls:role"


class LocalSearchSampler(BaseSampler):
    """Best-improvement local search over a ``SearchSpace`` (single objective)."""

    def __init__(self, space: SearchSpace, *, seed: int | None = None) -> None:
        self.space = space
        self._rng = np.random.default_rng(seed)
        self._fallback = RandomSampler(seed=seed)
        self._center: tuple[dict[str, Any], float] | None = None
        self._queue: list[dict[str, Any]] = []
        self._best: tuple[dict[str, Any], float] | None = None
        self._configs: dict[int, tuple[str, dict[str, Any]]] = {}

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def _better(self, study: optuna.Study, a: float, b: float) -> bool:
        if study.direction == optuna.study.StudyDirection.MAXIMIZE:
            return a > b
        return a < b

    def _seen(self, study: optuna.Study) -> set[str]:
        return {
            self.space.arch_key(t.params)
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if self.space.is_valid(t.params)
        }

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if len(study.directions) != 1:
            raise ValueError("local search optimizes one objective")
        if "fixed_params" in trial.system_attrs:
            return
        seen = self._seen(study)
        while not self._queue and self._center is not None:
            best = self._best
            if best is not None and self._better(study, best[1], self._center[1]):
                self._center, self._best = best, None
                self._queue = [
                    c for c in self.space.neighbors(best[0]) if self.space.arch_key(c) not in seen
                ]
                self._rng.shuffle(self._queue)  # type: ignore[arg-type]
            else:
                self._center, self._best = None, None  # a local optimum: restart
        if self._center is None:
            role, config = "start", self.space.sample(seed=self._rng)
        else:
            role, config = "neighbor", self._queue.pop()
        self._configs[trial._trial_id] = (role, config)
        study._storage.set_trial_system_attr(trial._trial_id, _ROLE, role)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        entry = self._configs.get(trial._trial_id)
        if entry is not None and param_name in entry[1]:
            return entry[1][param_name]
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        entry = self._configs.pop(trial._trial_id, None)
        if entry is None or state != TrialState.COMPLETE or not values:
            return
        role, config = entry
        value = float(values[0])
        if role == "start":
            seen = self._seen(study) | {self.space.arch_key(config)}
            self._center, self._best = (config, value), None
            self._queue = [
                c for c in self.space.neighbors(config) if self.space.arch_key(c) not in seen
            ]
            self._rng.shuffle(self._queue)  # type: ignore[arg-type]
        elif self._best is None or self._better(study, value, self._best[1]):
            self._best = (config, value)
