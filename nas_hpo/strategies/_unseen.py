"""Proposals of an Optuna sampler kept off architectures the study already has.

A NAS space is small next to HPO's, and a model-based sampler that has found a good region
keeps proposing it: on NB201-digits Optuna's TPE proposed an already evaluated cell in 14 of
every 100 trials (the engine answers those from the record, ``study._dedupe``, but each still
counts towards ``n_trials``). SMAC's config selector retries such proposals; Optuna's samplers
do not. ``UnseenSampler`` does, for any sampler whose relative sample is a whole architecture
(TPE with ``multivariate``, once the start-up trials are done): it asks the sampler again, up
to ``retries`` times (its random state moves on, so the candidates differ), then takes a random
one-step mutation of the last proposal that is new, then a random new architecture; only when
none of those is new does the repeat go through. Everything else is the wrapped sampler's.

"The same architecture" is the space's ``arch_key``; with ``skip_equivalent`` it is its
``network_key``, under which configs that build the same network are one (NAS-Bench-201's
15,625 cells are 5,273 such classes: proposing a cell isomorphic to an evaluated one trains the
same network again). Local search, evolution and bananas take the same option.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial

from nas_hpo._samplers import WrappedSampler
from nas_hpo.strategies._decided import pending_configs

if TYPE_CHECKING:
    from nas_hpo.space import SearchSpace

__all__ = ["Key", "UnseenSampler", "draw_new", "evaluated_keys", "key_of", "new_nearby"]

#: The trial system attribute saying how a proposal was made new: ``[retries, "mutation"]``,
#: ``[retries, "random"]``, ``[retries, "repeat"]`` (nothing new found) or ``[k, "sampler"]``
#: (the sampler's k-th retry was new).
UNSEEN_ATTR = "nas_hpo:unseen"

_MUTATIONS = 50
_RANDOM_DRAWS = 200


#: What a strategy takes for "the same architecture": ``space.arch_key``, or with
#: ``skip_equivalent`` ``space.network_key`` (isomorphic NB201 cells are one).
Key = Callable[[Mapping[str, Any]], str]


def key_of(space: SearchSpace, skip_equivalent: bool) -> Key:
    """``space.network_key`` with ``skip_equivalent``, else ``space.arch_key``."""
    return space.network_key if skip_equivalent else space.arch_key


def evaluated_keys(study: optuna.Study, space: SearchSpace, key: Key) -> set[str]:
    """The ``key`` of each valid config of the study's trials (any state: a failed or pruned
    one is not proposed again either) and of the configs other workers are running."""
    configs = [t.params for t in study.get_trials(deepcopy=False)]
    configs += pending_configs(study)
    return {key(c) for c in configs if space.is_valid(c)}


def draw_new(draw: Callable[[], dict[str, Any]], seen: set[str], key: Key,
             tries: int) -> tuple[dict[str, Any], bool]:
    """``draw()`` up to ``tries`` times until its ``key`` is not in ``seen``: that config and
    True, or the last draw and False."""
    config = draw()
    for _ in range(tries - 1):
        if key(config) not in seen:
            return config, True
        config = draw()
    return config, key(config) not in seen


def new_nearby(space: SearchSpace, config: dict[str, Any], seen: set[str], key: Key,
               rng: np.random.Generator) -> tuple[dict[str, Any], str] | None:
    """What a strategy whose own proposal ``config`` repeats takes instead: a new one-step
    mutation of it (``"mutation"``), else a new random architecture (``"random"``), with how it
    was made; None when neither is found (the repeat goes through)."""
    for how, draw, tries in (("mutation", lambda: space.mutate(config, rng), _MUTATIONS),
                             ("random", lambda: space.sample(seed=rng), _RANDOM_DRAWS)):
        try:
            child, new = draw_new(draw, seen, key, tries)
        except ValueError:
            continue  # no valid one-step change
        if new:
            return child, how
    return None


class UnseenSampler(WrappedSampler):
    """``sampler`` whose relative proposals avoid the study's architectures (module doc)."""

    def __init__(self, sampler: BaseSampler, space: SearchSpace, *, seed: int | None = None,
                 retries: int = 10, skip_equivalent: bool = False) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        super().__init__(sampler)
        self.space = space
        self.key = key_of(space, skip_equivalent)
        self.seed = 0 if seed is None else seed
        self.retries = retries

    def _config(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """The architecture ``params`` decide, or None when they leave an active parameter
        open (the objective would ask the sampler for it independently) or are not valid."""
        config: dict[str, Any] = {}
        for name in self.space.order:
            if self.space.is_active(name, config):
                if name not in params:
                    return None
                config[name] = params[name]
        return config if self.space.is_valid(config) else None

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        params = self.inner.sample_relative(study, trial, search_space)
        config = self._config(params)
        if config is None:
            return params
        seen = evaluated_keys(study, self.space, self.key)
        for k in range(self.retries + 1):
            if k:
                params = self.inner.sample_relative(study, trial, search_space)
                config = self._config(params)
                if config is None:
                    return params
            if self.key(config) not in seen:
                if k:
                    self._record(study, trial, [k, "sampler"])
                return params
        rng = np.random.default_rng([self.seed, trial.number])
        found = new_nearby(self.space, config, seen, self.key, rng)
        if found is not None:
            child, how = found
            self._record(study, trial, [self.retries, how])
            return self._within(child, params, search_space)
        self._record(study, trial, [self.retries, "repeat"])
        return params

    @staticmethod
    def _within(child: dict[str, Any], params: dict[str, Any],
                search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        """``child``'s values for the relative search space (parameters it left inactive keep
        the sampler's values: the objective does not ask for them; those it newly activated
        outside that space are asked of the sampler independently)."""
        out = {n: v for n, v in params.items() if n in search_space}
        out.update({n: v for n, v in child.items() if n in search_space})
        return out

    @staticmethod
    def _record(study: optuna.Study, trial: FrozenTrial, how: list[Any]) -> None:
        study._storage.set_trial_system_attr(trial._trial_id, UNSEEN_ATTR, how)
