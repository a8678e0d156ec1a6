"""NSGA-II / NSGA-III whose offspring respect a conditional space.

Optuna's NSGA samplers keep their selection (non-dominated sorting with crowding distance or
reference points, elite populations, constraints) but breed only over the intersection search
space: a parameter that some trials lack — layer 5's settings in a net of variable depth — is
drawn at random in every child, which throws away what it should inherit. Here Optuna's
selection is kept as it is and only the breeding is replaced (through the samplers' own
``child_generation_strategy`` hook): two parents from the elite population, ``space.crossover``
(uniform, in topological order, conditional genes taken from whichever parent has them) and,
with probability ``mutation_prob``, ``space.mutate``. Children are therefore valid configs
whose values all come from a parent, except one mutated parameter and genes neither parent had.
The parents of each child are recorded in its system attribute ``nas_hpo:nsga:parents``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial

from nas_hpo.space._optuna import distribution

if TYPE_CHECKING:
    from nas_hpo.space import SearchSpace

_PARENTS = "nas_hpo:nsga:parents"


class _SpaceAwareBreeding:
    """The part shared by both samplers (a mixin before Optuna's class)."""

    _space: SearchSpace
    _rng_np: np.random.Generator
    _mutation_prob: float
    _last_parents: tuple[int, int] | None

    def _init_breeding(self, space: SearchSpace, seed: int | None, mutation_prob: float) -> None:
        self._space = space
        self._rng_np = np.random.default_rng(seed)
        self._mutation_prob = mutation_prob
        self._last_parents = None

    def _breed(
        self,
        study: optuna.Study,
        search_space: dict[str, BaseDistribution],
        parent_population: list[FrozenTrial],
    ) -> dict[str, Any]:
        rng = self._rng_np
        candidates = [t for t in parent_population if self._valid(t.params)]
        if not candidates:
            return {}
        i, j = rng.choice(len(candidates), size=2, replace=len(candidates) < 2)
        a, b = candidates[int(i)], candidates[int(j)]
        child = self._space.crossover(a.params, b.params, rng)
        if rng.random() < self._mutation_prob:
            try:
                child = self._space.mutate(child, rng)
            except ValueError:
                pass  # no valid one-step change: keep the crossover child
        self._last_parents = (a.number, b.number)
        return child

    def _valid(self, params: dict[str, Any]) -> bool:
        return self._space.is_valid(params)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        # Every parameter of the space, so that a child's conditional genes are handed out
        # as relative params instead of being redrawn at random.
        return {n: distribution(self._space[n]) for n in self._space.order}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._last_parents = None
        params = super().sample_relative(study, trial, search_space)  # type: ignore[misc]
        if self._last_parents is not None:
            study._storage.set_trial_system_attr(
                trial._trial_id, _PARENTS, list(self._last_parents)
            )
        return params


class SpaceNSGAIISampler(_SpaceAwareBreeding, optuna.samplers.NSGAIISampler):
    """Optuna's NSGA-II selection, condition-respecting breeding."""

    def __init__(
        self, space: SearchSpace, *, mutation_prob: float = 0.5, seed: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(seed=seed, child_generation_strategy=self._breed, **options)
        self._init_breeding(space, seed, mutation_prob)


class SpaceNSGAIIISampler(_SpaceAwareBreeding, optuna.samplers.NSGAIIISampler):
    """Optuna's NSGA-III selection (reference points), condition-respecting breeding."""

    def __init__(
        self, space: SearchSpace, *, mutation_prob: float = 0.5, seed: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(seed=seed, child_generation_strategy=self._breed, **options)
        self._init_breeding(space, seed, mutation_prob)


def parents_of(trial: FrozenTrial) -> list[int] | None:
    """The trial numbers of a child's two parents (``None`` for the random first generation)."""
    return trial.system_attrs.get(_PARENTS)
