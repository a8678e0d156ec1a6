"""Search strategies by name: each is a factory returning the Optuna sampler (and pruner) to use.

Strategies come from the optimizers (Optuna here); nas-hpo only chooses the settings that
conditional spaces need. A factory is called as ``f(setting, **options)``: ``setting`` carries
what the study decides (space, seed, directions) and ``options`` are exactly the keys the user
wrote in the ``[strategy]`` section, passed on to the backend's constructor.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from nas_hpo._registry import Registry
from nas_hpo.space import SearchSpace

__all__ = ["Setting", "Strategy", "get", "names", "register"]


@dataclass(frozen=True)
class Setting:
    """What the study fixes for its strategy."""

    space: SearchSpace
    seed: int
    directions: tuple[str, ...]


@dataclass(frozen=True)
class Strategy:
    """The Optuna sampler and pruner of a study."""

    name: str
    sampler: optuna.samplers.BaseSampler
    pruner: optuna.pruners.BasePruner


_REGISTRY: Registry[Callable[..., Strategy]] = Registry("strategy")


def register(name: str) -> Callable[[Callable[..., Strategy]], Callable[..., Strategy]]:
    return _REGISTRY.register(name)


def get(name: str, setting: Setting, **options: Any) -> Strategy:
    return _REGISTRY.entry(name)(setting, **options)


def factory(name: str) -> Callable[..., Strategy]:
    return _REGISTRY.entry(name)


def names() -> list[str]:
    return _REGISTRY.names()


@register("random")
def random(setting: Setting) -> Strategy:
    """Uniform random search (Optuna's ``RandomSampler``): the baseline every NAS paper needs."""
    return Strategy("random", optuna.samplers.RandomSampler(seed=setting.seed),
                    optuna.pruners.NopPruner())


@register("tpe")
def tpe(
    setting: Setting,
    *,
    n_startup_trials: int = 10,
    n_ei_candidates: int = 24,
    multivariate: bool = True,
    group: bool = True,
    constant_liar: bool = True,
) -> Strategy:
    """Optuna's TPE. ``multivariate`` with ``group`` models the parameters that are active
    together jointly, which is what a conditional space needs (independent TPE would model each
    layer's parameters without the depth that activates them)."""
    with warnings.catch_warnings():
        # ``group`` is still marked experimental in Optuna; choosing it is deliberate here.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            n_startup_trials=n_startup_trials,
            n_ei_candidates=n_ei_candidates,
            multivariate=multivariate,
            group=group,
            constant_liar=constant_liar,
            seed=setting.seed,
        )
    return Strategy("tpe", sampler, optuna.pruners.NopPruner())
