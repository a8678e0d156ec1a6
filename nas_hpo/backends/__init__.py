"""Backend adapters: translate a ``SearchSpace`` to the optimizers that run trials.

The Ray Tune adapter lives in ``_ray`` and is imported on first use, so ``import nas_hpo`` (and
``import nas_hpo.backends``) stays free of Ray's import cost and works where Ray is missing;
using one of its names without Ray installed raises an ``ImportError`` that says what to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas_hpo.backends._ray import tune_search, valid_only

__all__ = ["tune_search", "valid_only"]

# Public name -> private module holding it; resolved lazily by ``__getattr__`` (PEP 562).
_LAZY = {"tune_search": "_ray", "valid_only": "_ray"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
