"""Local search over ``space.neighbors`` (White, Nolen, Savani & Ghiasi, "Local search is state
of the art for neural architecture search benchmarks", 2020/2021), as an Optuna sampler; Optuna
has none.

The walk has a *center*, a finished trial. Its unseen neighbours (one parameter changed, see
``SearchSpace.neighbors``) are evaluated in random order; with ``improvement = "first"`` the
walk moves to a neighbour as soon as one beats the center, with ``"best"`` (the paper's main
variant) only once every neighbour is evaluated, to the best of them. A center none of whose
neighbours is better is a local optimum: the walk restarts, from a new random architecture
(``restart = "random"``, the paper's) or from the best finished trial that still has unseen
neighbours (``"best"``). The first ``n_initial`` trials are random and the walk starts from
the best of them (the paper's and NASLib's ``num_init``), which keeps one unlucky start from
spending the budget on a poor region: it is what reduces the spread over seeds.

Architectures already evaluated (or running) are never proposed again; with
``skip_equivalent`` neither are those that build the same network as one of them
(``space.network_key``: isomorphic NB201 cells), and the walk knows such a neighbour's value.
The walk is not kept in memory: each trial records its center (``nas_hpo:ls:center``) and
role, and every proposal is derived from the study's trials with a generator seeded by
``(seed, trial number)``: a seed repeats a study exactly, and a resumed study continues its
walk from the last center (with the resumed run's own seed for its random choices, as for
every strategy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nas_hpo.strategies._decided import DecidedSampler
from nas_hpo.strategies._unseen import evaluated_keys, key_of

if TYPE_CHECKING:
    from nas_hpo.space import SearchSpace

_ROLE = "nas_hpo:ls:role"
_CENTER = "nas_hpo:ls:center"


class LocalSearchSampler(DecidedSampler):
    """Local search over a ``SearchSpace`` (single objective); see the module doc."""

    def __init__(self, space: SearchSpace, *, n_initial: int = 10, improvement: str = "first",
                 restart: str = "random", skip_equivalent: bool = False,
                 seed: int | None = None) -> None:
        if improvement not in ("best", "first"):
            raise ValueError(f"improvement must be 'best' or 'first', got {improvement!r}")
        if restart not in ("best", "random"):
            raise ValueError(f"restart must be 'best' or 'random', got {restart!r}")
        super().__init__(space, seed=seed)
        self.n_initial = max(1, n_initial)
        self.improvement = improvement
        self.restart = restart
        self.key = key_of(space, skip_equivalent)

    def propose(self, study: optuna.Study, trial: FrozenTrial
                ) -> tuple[dict[str, Any], dict[str, Any]]:
        if len(study.directions) != 1:
            raise ValueError("local search optimizes one objective")
        rng = np.random.default_rng([self.seed, trial.number])
        sign = 1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
        trials = study.get_trials(deepcopy=False)
        # The best finished trial of each architecture, by (signed) value.
        finished: dict[str, FrozenTrial] = {}
        key = self.key
        seen = evaluated_keys(study, self.space, key)
        for t in trials:
            if (t.state == TrialState.COMPLETE and t.value is not None
                    and self.space.is_valid(t.params)):
                k = key(t.params)
                old = finished.get(k)
                if old is None or sign * t.value > sign * old.value:
                    finished[k] = t
        by_number = {t.number: t for t in finished.values()}
        centers = [t.system_attrs[_CENTER] for t in trials
                   if t.number != trial.number and t.system_attrs.get(_CENTER) is not None]

        def random_start(walk: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
            for _ in range(100):
                config = self.space.sample(seed=rng)
                if key(config) not in seen:
                    break
            # A restart is the walk's next center; an initial draw is not (the walk starts
            # from the best of them).
            return config, {_ROLE: "start", _CENTER: trial.number if walk else None}

        def value(t: FrozenTrial) -> float:
            return sign * float(t.value)  # type: ignore[arg-type]

        def unseen(t: FrozenTrial) -> list[dict[str, Any]]:
            return [c for c in self.space.neighbors(t.params)
                    if key(c) not in seen]

        def best_open() -> FrozenTrial | None:
            for t in sorted(finished.values(), key=lambda t: (-value(t), t.number)):
                if unseen(t):
                    return t
            return None

        if not centers:
            if len(finished) < self.n_initial:
                return random_start(walk=False)
            center = best_open()
        else:
            center = by_number.get(centers[-1])
            if center is None:  # the walk's start has not finished yet (another worker's)
                return random_start()
        restarted = False
        for _ in range(len(finished) + 1):
            if center is None:
                return random_start()
            around = [finished[k] for k in map(key,
                                                self.space.neighbors(center.params))
                      if k in finished]
            better = [t for t in around if value(t) > value(center)]
            todo = unseen(center)
            # A restart's center is explored first, though a better neighbour (the local
            # optimum just left) is known: moving there would only return here.
            if better and not restarted and (self.improvement == "first" or not todo):
                center = max(better, key=lambda t: (value(t), -t.number))
                continue
            if todo:
                config = todo[int(rng.integers(len(todo)))]
                return config, {_ROLE: "neighbor", _CENTER: center.number}
            # A local optimum.
            if self.restart == "random":
                return random_start()
            center, restarted = best_open(), True
        return random_start()
