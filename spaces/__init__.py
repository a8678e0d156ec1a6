"""The search-space catalogue (installed as ``nas_hpo.spaces``).

One module per space. Each registers a factory ``f(**options) -> SearchSpace`` whose space can
``build(config, input_shape=..., num_classes=...)`` a ``torch.nn.Module``; ``options`` are the
space's build options (from the study file's ``[space]`` section), never injected by us.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nas_hpo._registry import Registry
from nas_hpo.space import SearchSpace

__all__ = ["get", "names", "register"]

_REGISTRY: Registry[Callable[..., SearchSpace]] = Registry("space")


def register(name: str) -> Callable[[Callable[..., SearchSpace]], Callable[..., SearchSpace]]:
    """Register a space factory under ``name`` (a duplicate name is an error)."""
    return _REGISTRY.register(name)


def get(name: str, **options: Any) -> SearchSpace:
    """The registered space ``name``, built with its options."""
    space = _REGISTRY.entry(name)(**options)
    if space.name is None:
        space.name = name
    return space


def names() -> list[str]:
    """Names of the registered spaces."""
    return _REGISTRY.names()


def factory(name: str) -> Callable[..., SearchSpace]:
    """The factory registered as ``name`` (to inspect its options)."""
    return _REGISTRY.entry(name)


def _import_catalogue() -> None:
    # Importing a module registers its space; every public module of this package is one
    # space, so a new module joins the catalogue (and its contract tests) by existing.
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_catalogue()
