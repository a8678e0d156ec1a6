"""The Ray scheduler of a study: ``[backend] scheduler``, or the strategy's Optuna pruner
translated to Ray's scheduler of the same rule (translation only)."""

from __future__ import annotations

from typing import Any

import optuna

from nas_hpo.study import Plan, SpecError

__all__ = ["scheduler_of"]


def scheduler_of(plan: Plan) -> Any:
    """The Ray scheduler of the study: ``[backend] scheduler``, or the strategy's Optuna
    pruner translated to Ray's scheduler of the same rule."""
    from ray.tune import schedulers

    from nas_hpo.strategies import ExtrapolationPruner

    name = plan.spec.scheduler
    pruner = plan.strategy.pruner
    if name is None and isinstance(pruner, ExtrapolationPruner):
        # Ray has no scheduler of that rule; running without one would silently not prune.
        raise SpecError(
            f"{plan.spec.where('strategy', 'name')}: lce prunes on the optuna backend only (Ray "
            "has no learning-curve scheduler); use the optuna backend, or name a Ray scheduler "
            "in [backend] scheduler"
        )
    if name is None:
        name = {
            optuna.pruners.SuccessiveHalvingPruner: "asha",
            optuna.pruners.HyperbandPruner: "hyperband",
            optuna.pruners.MedianPruner: "median",
        }.get(type(pruner), "fifo")
    if name != "fifo" and len(plan.directions) > 1:
        raise SpecError(f"{plan.spec.where('backend', 'scheduler')}: Ray schedulers stop trials "
                        f"on one metric; the study has {len(plan.directions)} objectives")
    time_attr = "training_iteration"
    # One report per step, then the final report: a scheduler's max_t counts that one too, so
    # that it does not stop the trial before the final values arrive.
    max_t = (plan.objective.max_steps or 100) + 1
    if name == "fifo":
        return schedulers.FIFOScheduler()
    if name == "asha":
        rf = getattr(pruner, "_reduction_factor", 4)
        grace = getattr(pruner, "_min_resource", None)
        grace = grace if isinstance(grace, int) else 1
        return schedulers.ASHAScheduler(time_attr=time_attr, max_t=max_t, grace_period=grace,
                                        reduction_factor=rf)
    if name == "hyperband":
        rf = getattr(pruner, "_reduction_factor", 3)
        return schedulers.HyperBandScheduler(time_attr=time_attr, max_t=max_t,
                                             reduction_factor=rf)
    if name == "median":
        startup = getattr(pruner, "_n_startup_trials", 5)
        warmup = getattr(pruner, "_n_warmup_steps", 0)
        return schedulers.MedianStoppingRule(time_attr=time_attr, grace_period=warmup,
                                             min_samples_required=max(1, startup))
    raise SpecError(f"{plan.spec.where('backend', 'scheduler')}: unknown Ray scheduler "
                    f"{name!r}; known: fifo, asha, hyperband, median")
