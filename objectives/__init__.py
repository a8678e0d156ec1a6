"""Performance estimators (installed as ``nas_hpo.objectives``).

One module per objective, each registering a factory ``f(**options) -> Objective`` under its
name; ``options`` come from the study file's ``[objective]`` section. The contract every
objective keeps is the base class's (``nas_hpo.Objective``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nas_hpo._objective import (
    CallableObjective,
    Context,
    DataSource,
    Objective,
    Result,
    TrialFailure,
)
from nas_hpo._registry import Registry

__all__ = [
    "REGISTRY",
    "CallableObjective",
    "Context",
    "DataSource",
    "Objective",
    "Result",
    "TrialFailure",
    "factory",
    "get",
    "names",
    "register",
]

#: Name → factory ``f(**options) -> Objective``; metadata: ``test_options`` (cheap options
#: the contract tests evaluate it with on a small space), ``needs`` (what a test must give
#: it: e.g. "table", a file of results).
REGISTRY: Registry[Callable[..., Objective]] = Registry("objective")


def register(name: str, **meta: Any) -> Callable[[Callable[..., Objective]],
                                                 Callable[..., Objective]]:
    """Register an objective factory under ``name`` (a duplicate name is an error)."""
    return REGISTRY.register(name, **meta)


def get(name: str, **options: Any) -> Objective:
    """The registered objective ``name`` configured with ``options``."""
    return REGISTRY.entry(name)(**options)


def factory(name: str) -> Callable[..., Objective]:
    return REGISTRY.entry(name)


def names() -> list[str]:
    return REGISTRY.names()


from nas_hpo.objectives import (  # noqa: E402,F401
    cost,
    learning_curve,
    supernet,
    tabular,
    train,
    zero_cost,
)
