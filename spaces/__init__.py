"""The search-space catalogue (installed as ``nas_hpo.spaces``).

One module per space. Each registers a factory ``f(**options) -> SearchSpace`` whose space can
``build(config, input_shape=..., num_classes=...)`` a ``torch.nn.Module``; ``options`` are the
space's build options (from the study file's ``[space]`` section), never injected by us.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from nas_hpo._options import check_arguments
from nas_hpo._registry import Registry
from nas_hpo.space import SearchSpace

__all__ = ["REGISTRY", "factory", "get", "meta", "names", "register", "widened"]

#: Name → factory ``f(**options) -> SearchSpace``; metadata: ``size`` (its number of
#: architectures, from the literature or a closed form: the contract tests check the count),
#: ``supernet`` (it builds a weight-sharing supernet), ``test_options`` (build options of a
#: small instance for tests that train).
REGISTRY: Registry[Callable[..., SearchSpace]] = Registry("space")


def register(name: str, **meta: Any) -> Callable[[Callable[..., SearchSpace]],
                                                 Callable[..., SearchSpace]]:
    """Register a space factory under ``name`` (a duplicate name is an error), with its
    metadata (see ``REGISTRY``)."""
    return REGISTRY.register(name, **meta)


def meta(name: str) -> Mapping[str, Any]:
    """The metadata registered with the space ``name``."""
    return REGISTRY.meta(name)


def get(name: str, **options: Any) -> SearchSpace:
    """The registered space ``name``, built with its options."""
    factory = REGISTRY.entry(name)
    check_arguments(factory, options)
    space = factory(**options)
    if space.name is None:
        space.name = name
    # Remembered so that the same space can be rebuilt at another width (``widened``).
    space.build_options = dict(options)
    return space


def widened(space: SearchSpace, width_mult: float) -> SearchSpace:
    """The same registered space with networks ``width_mult`` times as wide: the width
    fidelity of low-cost training. The space's factory must take a ``width_mult`` option."""
    if width_mult == 1:
        return space
    if not width_mult > 0:
        raise ValueError(f"width_mult must be > 0, got {width_mult}")
    fn = REGISTRY.entry(space.name) if space.name in REGISTRY.names() else None
    if fn is None or "width_mult" not in inspect.signature(fn).parameters:
        raise ValueError(
            f"space {space.name or '(unnamed)'!r} has no width_mult build option, so it cannot "
            "be trained at another width"
        )
    options = dict(getattr(space, "build_options", {}))
    options["width_mult"] = float(options.get("width_mult", 1.0)) * width_mult
    return get(space.name, **options)


def names() -> list[str]:
    """Names of the registered spaces."""
    return REGISTRY.names()


def factory(name: str) -> Callable[..., SearchSpace]:
    """The factory registered as ``name`` (to inspect its options)."""
    return REGISTRY.entry(name)


def _import_catalogue() -> None:
    # Importing a module registers its space; every public module of this package is one
    # space, so a new module joins the catalogue (and its contract tests) by existing.
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_catalogue()
