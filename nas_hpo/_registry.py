"""Registries: the only way a name in a study file becomes an object (no if/elif over names).

Each entry may carry metadata (``Registry.add(name, obj, **meta)``): what the contract tests
read to exercise every entry without a hand-kept list (a space's small test options and known
size, an objective's cheap test options, ...). ``Registry.temporarily`` adds an entry for the
duration of a ``with`` block, so a test never reaches into a registry's private state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(ValueError):
    """A name that no registry entry has; the message lists the registered names."""


class Registry(Generic[T]):
    """Name → factory (with metadata). Registering a name twice is an error, as in timm's
    model registry."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._meta: dict[str, Mapping[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator form of ``add``."""

        def deco(obj: T) -> T:
            self.add(name, obj, **meta)
            return obj

        return deco

    def add(self, name: str, obj: T, **meta: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        self._entries[name] = obj
        self._meta[name] = MappingProxyType(dict(meta))

    def remove(self, name: str) -> None:
        """Take ``name`` out of the registry (an unknown name is an error)."""
        self.entry(name)
        del self._entries[name], self._meta[name]

    @contextlib.contextmanager
    def temporarily(self, name: str, obj: T, **meta: Any) -> Iterator[T]:
        """``add`` for the duration of a ``with`` block (tests, notebooks)."""
        self.add(name, obj, **meta)
        try:
            yield obj
        finally:
            self.remove(name)

    def entry(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}"
            ) from None

    def meta(self, name: str) -> Mapping[str, Any]:
        """The metadata registered with ``name`` (read only)."""
        self.entry(name)
        return self._meta[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
