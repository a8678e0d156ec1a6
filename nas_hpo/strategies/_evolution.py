"""Regularized evolution (Real, Aggarwal, Huang & Le, AAAI 2019) as an Optuna sampler.

Optuna has no aging evolution, and its GA samplers treat parameters outside the intersection
search space as independent random draws, which on a conditional space throws away what a
child should inherit. Here a child is the whole config at once: ``space.mutate`` of the
tournament winner, so it is always valid and keeps its parent's values except for the one
mutated parameter (and whatever that change activates or deactivates).

The population is the ``population_size`` most recently finished (complete) trials, so the
oldest member leaves as a new one joins ("aging"); a tournament samples ``sample_size`` of them
at random and the best is the parent. Until the population is full, children are random
samples of the space. With ``zero_cost_filter = k``, ``k`` mutations of the parent are drawn and
the one a zero-cost proxy scores best is the child (Abdelfattah, Mehrotra, Dudziak & Lane,
"Zero-cost proxies for lightweight NAS", ICLR 2021: zero-cost move proposal); the child
records its score and ``k``. With ``unseen`` (the default) a child or random sample whose
architecture the study already has is drawn again (up to 50 times): on NB201-digits one child
in eight repeated an architecture, an evaluation of the budget spent on nothing new (the
paper's evolution, ``unseen = False``, keeps such children). The config decided for a trial
is stored in its system attributes and handed out parameter by parameter as the define-by-run
objective asks for it (``_decided``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nas_hpo.strategies._decided import DecidedSampler
from nas_hpo.strategies._unseen import draw_new, evaluated_keys, key_of

if TYPE_CHECKING:
    from nas_hpo.space import SearchSpace

_PARENT = "nas_hpo:re:parent"
_FILTER = "nas_hpo:re:zero_cost"
_DRAWS = 50


class RegularizedEvolutionSampler(DecidedSampler):
    """Aging evolution over a ``SearchSpace`` (single objective)."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        population_size: int = 20,
        sample_size: int = 5,
        seed: int | None = None,
        zero_cost_filter: int = 0,
        proxy: Callable[[Mapping[str, Any]], float] | None = None,
        unseen: bool = True,
        skip_equivalent: bool = False,
    ) -> None:
        if population_size < 2:
            raise ValueError(f"population_size must be >= 2, got {population_size}")
        if not 1 <= sample_size <= population_size:
            raise ValueError(
                f"sample_size must be in [1, population_size={population_size}], "
                f"got {sample_size}"
            )
        if zero_cost_filter >= 2 and proxy is None:
            raise ValueError("zero_cost_filter needs a proxy to score the mutations")
        super().__init__(space, seed=seed)
        self.population_size = population_size
        self.sample_size = sample_size
        self.zero_cost_filter = zero_cost_filter
        self.proxy = proxy
        self.unseen = unseen
        self.key = key_of(space, skip_equivalent)

    def _new(self, draw: Callable[[], dict[str, Any]], seen: set[str] | None
             ) -> dict[str, Any]:
        """``draw()`` again while it repeats an architecture in ``seen`` (``_DRAWS`` at most)."""
        return draw() if seen is None else draw_new(draw, seen, self.key, _DRAWS)[0]

    def propose(self, study: optuna.Study, trial: FrozenTrial
                ) -> tuple[dict[str, Any], dict[str, Any]]:
        if len(study.directions) != 1:
            raise ValueError("regularized evolution optimizes one objective")
        rng = np.random.default_rng([self.seed, trial.number])
        finished = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None
        ]
        finished.sort(key=lambda t: t.datetime_complete or t.datetime_start)
        population = finished[-self.population_size :]
        seen = evaluated_keys(study, self.space, self.key) if self.unseen else None
        if len(population) < self.population_size:
            return self._new(lambda: self.space.sample(seed=rng), seen), {_PARENT: None}
        picks = rng.choice(len(population), size=self.sample_size, replace=False)
        contestants = [population[int(i)] for i in picks]
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        best = (max if maximize else min)(contestants, key=lambda t: t.value)

        def child() -> dict[str, Any]:
            return self._new(lambda: self.space.mutate(best.params, rng), seen)

        # The parent is recorded on the child: the record says where each child came from.
        if self.zero_cost_filter < 2 or self.proxy is None:
            return child(), {_PARENT: best.number}
        children = [child() for _ in range(self.zero_cost_filter)]
        scores = [self.proxy(c) for c in children]
        k = int(np.argmax(scores))
        return children[k], {_PARENT: best.number, _FILTER: [scores[k], len(children)]}


def parent_of(trial: FrozenTrial) -> int | None:
    """The trial number of the parent a child was mutated from (``None``: a random sample)."""
    return trial.system_attrs.get(_PARENT)
