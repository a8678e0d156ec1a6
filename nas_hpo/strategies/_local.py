"""Local search over ``space.neighbors`` (White, Nolen, Savani & Ghiasi, "Local search is state
of the art for neural architecture search benchmarks", 2020/2021), as an Optuna sampler; Optuna
has none.

The walk has a *center*, a configuration whose value is known. Its unseen neighbours (one
parameter changed, see ``SearchSpace.neighbors``) are evaluated one at a time: at random
(``order = "random"``, the paper's) or best-first by the study's statistics. With
``"additive"`` (the default) the finished trials' values are fitted by least squares as a sum of
one effect per parameter value (a ridge penalty of one pseudo-trial keeps a value seen once
from leading on its own) and the neighbour with the best sum goes first; with ``"mean"`` each
parameter value is scored by the mean value of the trials that have it (shrunk towards the
overall mean by one pseudo-trial). The walk's trials share most of their values with its
centers, so a value's plain mean is mostly the mean of the centers it was seen with; the joint
fit separates the values' effects (on NB201-digits it ends at the best cell in 74 of 80 seeds
against the means' 68, benchmarks/README.md). With ``improvement = "first"`` the walk moves to a neighbour as soon
as one beats the center, with ``"best"`` (the paper's main variant) only once every neighbour is
evaluated, to the best of them. A center none of whose neighbours is better is a local optimum:
the walk restarts, from a new random architecture (``restart = "random"``, the paper's) or
from the best finished trial that still has unseen neighbours (``"best"``). The first
``n_initial`` trials are random and the walk starts from the best of them (the paper's and
NASLib's ``num_init``), which keeps one unlucky start from spending the budget on a poor
region.

Architectures already evaluated (or running) are never proposed again; with
``skip_equivalent`` (the default) neither are those that build the same network as one of them
(``space.network_key``: isomorphic NB201 cells). The walk then knows such a neighbour's value
from the trial that built its network, and when it is better steps onto the neighbour itself,
which becomes a center no trial has (recorded as ``nas_hpo:ls:at``): stepping onto that trial's
own cell instead would move the walk elsewhere, often back to ground it has searched.
The walk is not kept in memory: each trial records its center (``nas_hpo:ls:center``: the
trial holding the center's value; ``nas_hpo:ls:at``: the center where it is not that trial's
own configuration) and role, and every proposal is derived from the study's trials with a
generator seeded by ``(seed, trial number)``: a seed repeats a study exactly, and a resumed
study continues its walk from the last center (with the resumed run's own seed for its random
choices, as for every strategy).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
_AT = "nas_hpo:ls:at"
_ORDERS = ("additive", "mean", "random")


class LocalSearchSampler(DecidedSampler):
    """Local search over a ``SearchSpace`` (single objective); see the module doc."""

    def __init__(self, space: SearchSpace, *, n_initial: int = 10, improvement: str = "first",
                 restart: str = "random", skip_equivalent: bool = True, order: str = "additive",
                 seed: int | None = None) -> None:
        if improvement not in ("best", "first"):
            raise ValueError(f"improvement must be 'best' or 'first', got {improvement!r}")
        if restart not in ("best", "random"):
            raise ValueError(f"restart must be 'best' or 'random', got {restart!r}")
        if order not in _ORDERS:
            raise ValueError(f"order must be one of {', '.join(map(repr, _ORDERS))}, "
                             f"got {order!r}")
        super().__init__(space, seed=seed)
        self.n_initial = max(1, n_initial)
        self.improvement = improvement
        self.restart = restart
        self.order = order
        self.key = key_of(space, skip_equivalent)

    def propose(self, study: optuna.Study, trial: FrozenTrial
                ) -> tuple[dict[str, Any], dict[str, Any]]:
        if len(study.directions) != 1:
            raise ValueError("local search optimizes one objective")
        rng = np.random.default_rng([self.seed, trial.number])
        sign = 1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
        trials = study.get_trials(deepcopy=False)
        space, key = self.space, self.key
        # The best finished trial of each architecture (network), by (signed) value.
        finished: dict[str, FrozenTrial] = {}
        seen = evaluated_keys(study, space, key)
        for t in trials:
            if (t.state == TrialState.COMPLETE and t.value is not None
                    and space.is_valid(t.params)):
                k = key(t.params)
                old = finished.get(k)
                if old is None or sign * t.value > sign * old.value:
                    finished[k] = t
        by_number = {t.number: t for t in finished.values()}
        walked = [t for t in trials
                  if t.number != trial.number and t.system_attrs.get(_CENTER) is not None]

        def value(t: FrozenTrial) -> float:
            return sign * float(t.value)  # type: ignore[arg-type]

        def random_start(walk: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
            for _ in range(100):
                config = space.sample(seed=rng)
                if key(config) not in seen:
                    break
            # A restart is the walk's next center; an initial draw is not (the walk starts
            # from the best of them).
            return config, {_ROLE: "start", _CENTER: trial.number if walk else None}

        def unseen(config: dict[str, Any]) -> list[dict[str, Any]]:
            return [c for c in space.neighbors(config) if key(c) not in seen]

        def best_open() -> FrozenTrial | None:
            for t in sorted(finished.values(), key=lambda t: (-value(t), t.number)):
                if unseen(t.params):
                    return t
            return None

        def own(config: dict[str, Any], holder: FrozenTrial) -> bool:
            # Is config the holder trial's own cell (not another building the same network)?
            return space.arch_key(config) == space.arch_key(holder.params)

        pick = (None if self.order == "random"
                else _best_first(_score(self.order, finished.values(), value)))

        # The center: a config and the finished trial that holds its network (its own trial,
        # or with skip_equivalent one building the same network).
        center: tuple[dict[str, Any], FrozenTrial] | None
        if not walked:
            if len(finished) < self.n_initial:
                return random_start(walk=False)
            t = best_open()
            center = None if t is None else (t.params, t)
        else:
            attrs = walked[-1].system_attrs
            t = by_number.get(attrs[_CENTER])
            if t is None:  # the walk's start has not finished yet (another worker's)
                return random_start()
            center = (attrs.get(_AT) or t.params, t)
        restarted = False
        for _ in range(len(finished) + 1):
            if center is None:
                return random_start()
            config, holder = center
            around = [(n, finished[k]) for n in space.neighbors(config)
                      if (k := key(n)) in finished]
            better = [(n, t) for n, t in around if value(t) > value(holder)]
            todo = unseen(config)
            # A restart's center is explored first, though a better neighbour (the local
            # optimum just left) is known: moving there would only return here.
            if better and not restarted and (self.improvement == "first" or not todo):
                n, t = max(better, key=lambda b: (value(b[1]), -b[1].number))
                # With skip_equivalent the walk steps onto the neighbour itself, valued by the
                # trial that built its network, not onto that trial's own cell elsewhere.
                center = (t.params if own(n, t) else n, t)
                continue
            if todo:
                choice = (todo[int(rng.integers(len(todo)))] if pick is None
                          else pick(todo, rng))
                attrs = {_ROLE: "neighbor", _CENTER: holder.number}
                if not own(config, holder):
                    attrs[_AT] = config
                return choice, attrs
            # A local optimum.
            if self.restart == "random":
                return random_start()
            t, restarted = best_open(), True
            center = None if t is None else (t.params, t)
        return random_start()


Score = Callable[[dict[str, Any]], float]


def _score(order: str, finished: Iterable[FrozenTrial], value: Callable[[FrozenTrial], float]
           ) -> Score:
    """A configuration's score under ``order`` ("additive" or "mean"; module doc): the sum,
    over its parameter values, of each value's effect (least squares) or shrunk mean value,
    learnt from the finished trials (a space's values are str, int, float, bool: hashable)."""
    trials = list(finished)
    values = np.array([value(t) for t in trials])
    items: dict[tuple[str, Any], int] = {}
    rows = [[items.setdefault(item, len(items)) for item in t.params.items()] for t in trials]
    row_of = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
    column = np.fromiter((c for r in rows for c in r), dtype=np.intp, count=len(row_of))
    mean = float(values.mean()) if len(trials) else 0.0
    if order == "additive":
        # Ridge regression of the centered values on the one-hot values (penalty 1), solved
        # on the smaller side: (X'X + I)^-1 X'y = X'(XX' + I)^-1 y (many float values each
        # seen once make more columns than trials).
        onehot = np.zeros((len(trials), len(items)))
        onehot[row_of, column] = 1.0
        centered = values - mean
        if len(items) <= len(trials):
            effect = np.linalg.solve(onehot.T @ onehot + np.eye(len(items)), onehot.T @ centered)
        else:
            effect = onehot.T @ np.linalg.solve(onehot @ onehot.T + np.eye(len(trials)), centered)
    else:
        sums = np.bincount(column, weights=values[row_of], minlength=len(items))
        effect = (sums + mean) / (np.bincount(column, minlength=len(items)) + 1.0)

    def score(config: dict[str, Any]) -> float:
        # A value no trial has: no effect ("additive") or the overall mean ("mean").
        default = 0.0 if order == "additive" else mean
        return sum(float(effect[items[item]]) if item in items else default
                   for item in config.items())

    return score


def _best_first(score: Score
                ) -> Callable[[list[dict[str, Any]], np.random.Generator], dict[str, Any]]:
    """The pick of the neighbour with the best ``score``, ties at random."""

    def pick(todo: list[dict[str, Any]], rng: np.random.Generator) -> dict[str, Any]:
        scores = np.array([score(c) for c in todo])
        top = np.flatnonzero(scores >= scores.max() - 1e-12 * max(1.0, abs(scores.max())))
        return todo[int(top[int(rng.integers(len(top)))])]

    return pick
