"""``lce``: stop a training run whose extrapolated learning curve will not reach the best.

Domhan, Springenberg & Hutter (IJCAI 2015) end a run when its learning curve, extrapolated to
the last epoch, is unlikely to beat the best run so far. Optuna has no such pruner (its
pruners compare intermediate values at the same step: median, percentile, successive
halving, Hyperband, threshold), so this is ours: at each reported step from ``min_steps`` on,
the trial's curve is fitted with ``nas_hpo.curves.extrapolate`` (the
paper's parametric families, Akaike-weighted) and extrapolated to ``target_step``; the trial
is pruned when that prediction plus ``margin`` is below the best finished trial's value.
Where the paper asks for a probability (by MCMC) under a threshold, this compares the
weighted prediction with the best value: cheaper, and ``margin`` sets how much optimism a
trial is granted.

The families model accuracies that rise towards an asymptote of at most 1: the pruner needs a
maximized objective, and leaves alone a trial that reports a value outside [0, 1].
"""

from __future__ import annotations

import math

import optuna
from optuna.trial import FrozenTrial, TrialState


class ExtrapolationPruner(optuna.pruners.BasePruner):
    """Prune when the extrapolated final value + ``margin`` < the best finished value.

    ``target_step``: the step extrapolated to; ``None``: the largest step any finished trial
    reported (the full run's length). ``n_startup_trials``: finished trials before any pruning.
    ``min_steps``: points of a curve before it is extrapolated (at least 5, so that the
    three-parameter families take part). ``interval_steps``: extrapolate every this many
    steps."""

    def __init__(self, *, target_step: int | None = None, n_startup_trials: int = 5,
                 min_steps: int = 5, margin: float = 0.0, interval_steps: int = 1) -> None:
        if min_steps < 5:
            raise ValueError(f"min_steps must be >= 5, got {min_steps}")
        if target_step is not None and target_step < min_steps:
            raise ValueError(f"target_step ({target_step}) must be >= min_steps ({min_steps})")
        if n_startup_trials < 1:
            raise ValueError(f"n_startup_trials must be >= 1, got {n_startup_trials}")
        if interval_steps < 1:
            raise ValueError(f"interval_steps must be >= 1, got {interval_steps}")
        if not math.isfinite(margin):
            raise ValueError(f"margin must be a finite number, got {margin}")
        self.target_step, self.n_startup_trials = target_step, n_startup_trials
        self.min_steps, self.margin, self.interval_steps = min_steps, margin, interval_steps

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or len(trial.intermediate_values) < self.min_steps:
            return False
        if (len(trial.intermediate_values) - self.min_steps) % self.interval_steps:
            return False
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(finished) < self.n_startup_trials:
            return False
        target = self.target_step or max(
            (t.last_step for t in finished if t.last_step is not None), default=None)
        if target is None or target <= step:
            return False
        curve = [trial.intermediate_values[s] for s in sorted(trial.intermediate_values)]
        if not all(0.0 <= v <= 1.0 for v in curve):
            return False
        from nas_hpo.curves import extrapolate

        try:
            # Steps as epochs 1..n: the families are fitted to consecutive points.
            predicted = extrapolate(curve, target - step + len(curve)).prediction
        except ValueError:
            return False
        best = max(t.value for t in finished if t.value is not None)
        if predicted + self.margin < best:
            study._storage.set_trial_user_attr(
                trial._trial_id, "lce_predicted", round(predicted, 6))
            return True
        return False
