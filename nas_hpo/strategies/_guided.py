"""Predictor-guided search: BANANAS (White, Neiswanger & Savani, "BANANAS: Bayesian
Optimization with Neural Architectures for Neural Architecture Search", AAAI 2021), and the
same loop with a Gaussian process (the conditional-aware ``gp``).

Each proposal, after ``n_startup_trials`` random ones:

1. every finished trial becomes a training row: ``space.encode(config)`` (the space's own
   encoding where it has one — ``nb201``: BANANAS' path encoding — else the generic one-hot /
   ordinal encoding with an active flag per conditional parameter), plus, when the study's
   trials ended at different fidelities (pruned ones, or a multi-fidelity sampler's), the
   trial's last reported step as a fraction of the largest (prediction is then at the
   largest; and, with ``zero_cost``, the named zero-cost proxies of each config (the study's
   stored scores where it has them, ``also_score``; else scored once per architecture on the
   objective's data), so the predictor can use what the proxies know;
2. the surrogate (``_predictor``: an ensemble of MLPs, or a GP) is fitted to the values;
3. candidates are made by mutating the best finished configs (``space.mutate``, one or two
   steps) and by random samples; architectures already evaluated or running are left out
   (with ``skip_equivalent`` also those that build the same network, ``space.network_key``);
4. the acquisition picks one: independent Thompson sampling (``its``, BANANAS' choice: one
   draw from each candidate's normal ``N(mean, std)``), ``ucb`` (mean + ``beta`` · std),
   ``ei`` (expected improvement over the best value) or ``mean``.

Everything is recomputed from the study's finished trials with a random generator seeded by
``(seed, trial number)``, so a study resumes and repeats exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nas_hpo.strategies._decided import DecidedSampler
from nas_hpo.strategies._predictor import PREDICTORS
from nas_hpo.strategies._unseen import evaluated_keys, key_of

if TYPE_CHECKING:
    from nas_hpo.space import SearchSpace

_ROLE = "nas_hpo:guided:role"
_PREDICTED = "nas_hpo:guided:predicted"
_MAX_RANDOM_TRIES = 200


def _norm_cdf(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


class PredictorGuidedSampler(DecidedSampler):
    """BANANAS-style search over a ``SearchSpace`` (single objective); see the module doc."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        predictor: str = "ensemble",
        acquisition: str = "ucb",
        n_startup_trials: int = 10,
        n_candidates: int = 100,
        n_parents: int = 10,
        random_fraction: float = 0.2,
        beta: float = 1.0,
        predictor_options: dict[str, Any] | None = None,
        encoding: str = "space",
        zero_cost: tuple[str, ...] = (),
        proxies: Callable[[Mapping[str, Any], tuple[str, ...]], Mapping[str, float]]
        | None = None,
        skip_equivalent: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(space, seed=seed)
        self.key = key_of(space, skip_equivalent)
        if predictor not in PREDICTORS:
            raise ValueError(f"predictor must be one of {sorted(PREDICTORS)}, got {predictor!r}")
        if acquisition not in ("its", "ucb", "ei", "mean"):
            raise ValueError(f"acquisition must be its, ucb, ei or mean, got {acquisition!r}")
        self.predictor = predictor
        self.acquisition = acquisition
        self.n_startup_trials = max(1, n_startup_trials)
        self.n_candidates = n_candidates
        self.n_parents = n_parents
        self.random_fraction = random_fraction
        self.beta = beta
        self.predictor_options = dict(predictor_options or {})
        if encoding not in ("space", "generic"):
            raise ValueError(f"encoding must be 'space' or 'generic', got {encoding!r}")
        self._encode = space.encode if encoding == "space" else space.encoding.encode
        if zero_cost and proxies is None:
            raise ValueError("zero_cost features need a space that builds networks to score")
        self.zero_cost = tuple(zero_cost)
        self._proxies = proxies
        self._scores: dict[str, list[float]] = {}  # arch key -> proxy scores, computed once

    # ------------------------------------------------------------------ data

    def _rows(self, study: optuna.Study) -> tuple[list[FrozenTrial], list[float | None], list[float]]:
        """The finished trials with what each measured: (trials, their last step, value)."""
        trials, steps, values = [], [], []
        for t in study.get_trials(deepcopy=False,
                                  states=(TrialState.COMPLETE, TrialState.PRUNED)):
            if not self.space.is_valid(t.params):
                continue
            last = max(t.intermediate_values) if t.intermediate_values else None
            if t.state == TrialState.COMPLETE and t.value is not None:
                value = t.value
            elif last is not None:
                value = t.intermediate_values[last]
            else:
                continue
            if value is None or not math.isfinite(value):
                continue
            trials.append(t)
            steps.append(last)
            values.append(float(value))
        return trials, steps, values

    def training_data(self, study: optuna.Study
                      ) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray, np.ndarray | None]:
        """What the surrogate is fitted to: the finished trials' configs, their feature rows
        (the encoding, and the fidelity as the last column when the trials ended at
        different steps), their values signed so that larger is better, and the fidelities
        (a fraction of the largest step; ``None`` when all ended alike)."""
        trials, steps, values = self._rows(study)
        sign = 1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
        y = sign * np.asarray(values, dtype=float)
        fidelity = None
        known = [s for s in steps if s is not None]
        if known and len(set(known)) > 1:
            top = max(known)
            fidelity = np.asarray([(s if s is not None else top) / top for s in steps])
        configs = [dict(t.params) for t in trials]
        if not configs:
            return configs, np.zeros((0, 0)), y, fidelity
        zc = self._zero_cost(configs, [t.user_attrs for t in trials])
        return configs, self._features(configs, fidelity, zc), y, fidelity

    def _zero_cost(self, configs: list[dict[str, Any]],
                   stored: list[Mapping[str, Any]] | None = None) -> np.ndarray | None:
        """The ``zero_cost`` proxies of each config: the trial's own user attributes where the
        study stores them (``also_score``), else scored here once per architecture; as
        sign · log(1 + |score|), since proxies such as synflow span many orders of
        magnitude."""
        if not self.zero_cost:
            return None
        rows = []
        for i, config in enumerate(configs):
            attrs = stored[i] if stored is not None else {}
            if all(isinstance(attrs.get(n), (int, float)) for n in self.zero_cost):
                rows.append([float(attrs[n]) for n in self.zero_cost])
                continue
            key = self.space.arch_key(config)
            if key not in self._scores:
                assert self._proxies is not None
                got = self._proxies(config, self.zero_cost)
                self._scores[key] = [float(got[n]) for n in self.zero_cost]
            rows.append(self._scores[key])
        raw = np.asarray(rows, dtype=float)
        return np.sign(raw) * np.log1p(np.abs(raw))

    def _features(self, configs: list[dict[str, Any]], fidelity: np.ndarray | None,
                  zero_cost: np.ndarray | None = None) -> np.ndarray:
        parts = [np.stack([self._encode(c) for c in configs])]
        if zero_cost is not None:
            parts.append(zero_cost)
        if fidelity is not None:
            parts.append(fidelity[:, None])
        return np.hstack(parts)

    # ------------------------------------------------------------------ candidates

    def _candidates(self, study: optuna.Study, ranked: list[dict[str, Any]],
                    rng: np.random.Generator) -> list[dict[str, Any]]:
        seen = evaluated_keys(study, self.space, self.key)
        out: dict[str, dict[str, Any]] = {}
        n_random = int(round(self.n_candidates * self.random_fraction))
        n_mutants = self.n_candidates - n_random
        parents = ranked[: self.n_parents]
        tries = 0
        while len(out) < n_mutants and parents and tries < 20 * self.n_candidates:
            parent = parents[tries % len(parents)]
            tries += 1
            try:
                child = self.space.mutate(parent, rng)
                if rng.random() < 0.5:
                    child = self.space.mutate(child, rng)  # two steps: a wider neighbourhood
            except ValueError:
                continue  # a parent without a valid one-step change
            key = self.key(child)
            if key not in seen:
                out.setdefault(key, child)
        tries = 0
        while len(out) < self.n_candidates and tries < _MAX_RANDOM_TRIES + self.n_candidates:
            tries += 1
            child = self.space.sample(seed=rng)
            key = self.key(child)
            if key not in seen:
                out.setdefault(key, child)
        return list(out.values())

    # ------------------------------------------------------------------ proposal

    def propose(self, study: optuna.Study, trial: FrozenTrial
                ) -> tuple[dict[str, Any], dict[str, Any]]:
        if len(study.directions) != 1:
            raise ValueError("predictor-guided search optimizes one objective")
        rng = np.random.default_rng([self.seed, trial.number])
        configs, X, y, fidelity = self.training_data(study)
        if len(configs) < self.n_startup_trials:
            return self.space.sample(seed=rng), {_ROLE: "random"}
        sign = 1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
        model = PREDICTORS[self.predictor](
            seed=int(rng.integers(2**31)), **self.predictor_options).fit(X, y)
        # Parents: the best configs measured at the largest fidelity first.
        at_top = np.ones(len(configs)) if fidelity is None else fidelity
        order = sorted(range(len(configs)), key=lambda i: (-at_top[i], -y[i]))
        ranked = [configs[i] for i in order]
        candidates = self._candidates(study, ranked, rng)
        if not candidates:
            return self.space.sample(seed=rng), {_ROLE: "random"}
        cf = None if fidelity is None else np.ones(len(candidates))
        mean, std = model.predict(self._features(candidates, cf, self._zero_cost(candidates)))
        score = self._acquire(mean, std, float(np.max(y)), rng)
        best = int(np.argmax(score))
        return candidates[best], {_ROLE: "model",
                                  _PREDICTED: [sign * float(mean[best]), float(std[best])]}

    def _acquire(self, mean: np.ndarray, std: np.ndarray, incumbent: float,
                 rng: np.random.Generator) -> np.ndarray:
        if self.acquisition == "its":
            return rng.normal(mean, np.maximum(std, 0.0))
        if self.acquisition == "ucb":
            return mean + self.beta * std
        if self.acquisition == "ei":
            s = np.maximum(std, 1e-12)
            z = (mean - incumbent) / s
            return (mean - incumbent) * _norm_cdf(z) + s * np.exp(-0.5 * z**2) / math.sqrt(
                2 * math.pi)
        return mean


def role_of(trial: FrozenTrial) -> str | None:
    """How a trial's config was chosen: ``random`` (start-up) or ``model`` (the acquisition)."""
    return trial.system_attrs.get(_ROLE)


def predicted(trial: FrozenTrial) -> tuple[float, float] | None:
    """The surrogate's (mean, std) for the config the acquisition chose."""
    value = trial.system_attrs.get(_PREDICTED)
    return None if value is None else (float(value[0]), float(value[1]))
