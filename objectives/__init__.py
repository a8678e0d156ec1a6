"""Performance estimators (installed as ``nas_hpo.objectives``).

One module per objective, each registering a factory ``f(**options) -> Objective`` under its
name; ``options`` come from the study file's ``[objective]`` section.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nas_hpo._objective import CallableObjective, Context, Objective, Result, TrialFailure
from nas_hpo._registry import Registry

__all__ = [
    "CallableObjective",
    "Context",
    "Objective",
    "Result",
    "TrialFailure",
    "get",
    "names",
    "register",
]

_REGISTRY: Registry[Callable[..., Objective]] = Registry("objective")


def register(name: str) -> Callable[[Callable[..., Objective]], Callable[..., Objective]]:
    """Register an objective factory under ``name`` (a duplicate name is an error)."""
    return _REGISTRY.register(name)


def get(name: str, **options: Any) -> Objective:
    """The registered objective ``name`` configured with ``options``."""
    return _REGISTRY.entry(name)(**options)


def factory(name: str) -> Callable[..., Objective]:
    return _REGISTRY.entry(name)


def names() -> list[str]:
    return _REGISTRY.names()


from nas_hpo.objectives import (  # noqa: E402,F401
    cost,
    learning_curve,
    supernet,
    tabular,
    train,
    zero_cost,
)
