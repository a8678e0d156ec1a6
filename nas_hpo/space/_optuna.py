"""Optuna define-by-run for a conditional space (translation only, no search logic).

Parameters are asked in the space's topological order and only when active, under their own
names, so ``trial.params`` of a finished trial is exactly the config. A forbidden combination can
only be seen once its last parameter is drawn; the trial is then pruned before the objective runs,
with the clause stored in the trial's ``forbidden`` user attribute (``FORBIDDEN_ATTR``). Such a
draw is no evaluation: both backends record it and draw again, without counting it against the
study's ``n_trials``, and stop with ``forbidden_streak_error`` after ``MAX_FORBIDDEN_DRAWS``
forbidden draws in a row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import optuna

from nas_hpo.space._params import Categorical, Constant, Float, Hyperparameter, Integer

if TYPE_CHECKING:
    from nas_hpo.space._space import Config, SearchSpace


FORBIDDEN_ATTR = "forbidden"

# The space's construction guarantees at least one valid config, so a long run of forbidden
# draws means a sampler stuck on a forbidden point (e.g. an enqueued or fixed one): stop rather
# than draw for ever.
MAX_FORBIDDEN_DRAWS = 1_000


def forbidden_streak_error(space: SearchSpace, draws: int) -> RuntimeError:
    """The error for ``draws`` forbidden draws in a row."""
    clauses = "; ".join(str(c) for c in space.forbidden)
    return RuntimeError(f"{draws} draws in a row hit a forbidden clause ({clauses}): the "
                        "sampler keeps proposing forbidden configurations")


class ForbiddenConfigurationError(optuna.TrialPruned):
    """The sampled configuration hits a forbidden clause; the trial is pruned, not evaluated."""


def ask(trial: optuna.trial.BaseTrial, p: Hyperparameter) -> Any:
    if isinstance(p, Categorical):
        return trial.suggest_categorical(p.name, list(p.choices))
    if isinstance(p, Integer):
        return trial.suggest_int(p.name, p.low, p.high, log=p.log)
    if isinstance(p, Float):
        return trial.suggest_float(p.name, p.low, p.high, log=p.log)
    if isinstance(p, Constant):
        # A one-choice categorical keeps trial.params equal to the config.
        return trial.suggest_categorical(p.name, [p.value])
    raise TypeError(f"no Optuna distribution for {p!r}")


def distribution(p: Hyperparameter) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution ``ask`` uses for ``p`` (for samplers that need them up front)."""
    if isinstance(p, Categorical):
        return optuna.distributions.CategoricalDistribution(list(p.choices))
    if isinstance(p, Integer):
        return optuna.distributions.IntDistribution(p.low, p.high, log=p.log)
    if isinstance(p, Float):
        return optuna.distributions.FloatDistribution(p.low, p.high, log=p.log)
    if isinstance(p, Constant):
        return optuna.distributions.CategoricalDistribution([p.value])
    raise TypeError(f"no Optuna distribution for {p!r}")


def suggest(space: SearchSpace, trial: optuna.trial.BaseTrial) -> Config:
    config: Config = {}
    for name in space.order:
        if space.is_active(name, config):
            config[name] = ask(trial, space[name])
    clause = next((c for c in space.forbidden if c.fires(config)), None)
    if clause is not None:
        trial.set_user_attr(FORBIDDEN_ATTR, str(clause))
        raise ForbiddenConfigurationError(f"forbidden combination {clause}: {config}")
    return config
