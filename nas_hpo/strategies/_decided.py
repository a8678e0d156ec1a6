"""The base of our samplers that decide a trial's whole config at once.

Optuna asks a sampler parameter by parameter (define-by-run). Evolution, local search and the
predictor-guided search instead choose a complete config (a mutation, a neighbour, the
acquisition's best candidate) before the trial starts: ``propose`` returns it in
``before_trial``; it is stored in the trial's system attributes (so the record says how each
config came about, and a retried trial keeps it) and handed out as the objective asks for each
parameter. An enqueued trial (``fixed_params``: warm starts, ``enqueue_trial``) is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from nas_hpo.space import SearchSpace

CONFIG_ATTR = "nas_hpo:config"


class DecidedSampler(BaseSampler):
    """A sampler whose ``propose(study, trial)`` returns the next config and the system
    attributes to record with it."""

    def __init__(self, space: SearchSpace, *, seed: int | None = None) -> None:
        self.space = space
        self.seed = 0 if seed is None else seed
        self._fallback = RandomSampler(seed=seed)
        self._configs: dict[int, dict[str, Any]] = {}

    def propose(self, study: optuna.Study, trial: FrozenTrial
                ) -> tuple[dict[str, Any], dict[str, Any]]:
        raise NotImplementedError

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
        if CONFIG_ATTR in trial.system_attrs or "fixed_params" in trial.system_attrs:
            return  # a retried trial keeps its config; an enqueued one is not ours to change
        config, attrs = self.propose(study, trial)
        # Kept here too: the trial object Optuna hands to sample_independent was read before
        # this call.
        self._configs[trial._trial_id] = config
        storage = study._storage
        storage.set_trial_system_attr(trial._trial_id, CONFIG_ATTR, config)
        for key, value in attrs.items():
            storage.set_trial_system_attr(trial._trial_id, key, value)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        config = self._configs.get(trial._trial_id)
        if config is None:
            config = study._storage.get_trial(trial._trial_id).system_attrs.get(CONFIG_ATTR, {})
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


def pending_configs(study: optuna.Study) -> list[dict[str, Any]]:
    """The configs of the trials still running (other workers'), so a proposal avoids them."""
    return [t.system_attrs.get(CONFIG_ATTR) or t.params
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
