"""Backends: executors of the study layer's trial lifecycle, found by name.

- ``optuna`` (``backends.local``): this machine, in this process or ``[backend] workers``
  worker processes sharing the study's storage;
- ``simulated`` (``backends.simulated``): a simulated clock with ``[backend] workers``
  asynchronous simulated workers, for table-answered objectives (``nas-hpo bench``);
- ``ray`` (``backends.ray``): Ray Tune trials on a Ray cluster (or a local Ray).

Each entry is loaded on first use, so ``import nas_hpo`` stays free of Ray's import cost and
works where Ray is missing (using it then raises an ``ImportError`` that says what to install).
The Ray Tune adapter for users' own Ray code (``tune_search``, ``valid_only``) is here too,
loaded the same way. Metadata of an entry: ``test_options`` (what the contract tests run it
with on this machine).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

from nas_hpo._registry import Registry

if TYPE_CHECKING:
    import optuna

    from nas_hpo.backends._ray import tune_search, valid_only
    from nas_hpo.study import Plan

__all__ = ["REGISTRY", "executor", "names", "register", "tune_search", "valid_only"]

Executor = Callable[["Plan"], "optuna.Study"]

#: Name → ``"module:function"`` of an executor ``f(plan) -> optuna.Study`` (imported when
#: it is first used), or the function itself.
REGISTRY: Registry[str | Executor] = Registry("backend")


def register(name: str, target: str | Executor, **meta: Any) -> None:
    """Register an executor (a function, or where to import it from) under ``name``."""
    REGISTRY.add(name, target, **meta)


def executor(name: str) -> Executor:
    """The executor registered as ``name``, imported on first use."""
    target = REGISTRY.entry(name)
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        return getattr(import_module(module), attr)
    return target


def names() -> list[str]:
    return REGISTRY.names()


register("optuna", "nas_hpo.backends.local:execute", test_options={})
register("simulated", "nas_hpo.backends.simulated:execute", test_options={"workers": 2})
register("ray", "nas_hpo.backends.ray:execute",
         test_options={"max_concurrent_trials": 2, "resources_per_trial": {"cpu": 1}})

# Public name -> private module holding it; resolved lazily by ``__getattr__`` (PEP 562).
_LAZY = {"tune_search": "_ray", "valid_only": "_ray"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
