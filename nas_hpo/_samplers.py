"""``WrappedSampler``: an Optuna sampler that answers every call as the sampler it wraps.

The engine (``study._seeds.FirstTrialSeeded``: reseeding a resumed run) and strategies
(``strategies._unseen.UnseenSampler``: keeping proposals off evaluated architectures) wrap a
strategy's sampler to change one step of it; they subclass this and override that step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

__all__ = ["WrappedSampler"]


class WrappedSampler(optuna.samplers.BaseSampler):
    """Every ``BaseSampler`` call delegated to ``inner`` (which a subclass may replace)."""

    def __init__(self, sampler: optuna.samplers.BaseSampler) -> None:
        self.inner = sampler

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
