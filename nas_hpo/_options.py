"""Declared options: the one way a component's options are checked.

A component (an objective, a strategy's settings, a dataset's loader) is a dataclass whose
fields are its options; ``option(default, ge=..., choices=...)`` declares what a field
allows next to its default, and ``check_declared(obj)`` checks every declared field at once,
before anything runs. The messages name the option and what is allowed; the study layer adds
the file and section.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union

__all__ = ["AtLeast1", "AtLeast2", "Allowed", "NonNegative", "Positive", "Probability",
           "allowed_in", "check_arguments", "check_declared", "option", "type_ok", "type_text"]


@dataclass(frozen=True)
class Allowed:
    """What an option allows: a range (``ge``/``gt``/``le``/``lt``), a set of ``choices``
    (or a function giving them, for registries), or a ``check`` returning a problem or None.
    ``None`` is allowed where the option's default is ``None``."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: Sequence[Any] | Callable[[], Sequence[Any]] | None = None
    check: Callable[[Any], str | None] | None = None

    def issue(self, value: Any) -> str | None:
        """What is wrong with ``value`` (None: nothing), without the option's name."""
        if self.choices is not None:
            known = list(self.choices() if callable(self.choices) else self.choices)
            try:
                listed = value in known
            except TypeError:  # an unhashable value against a set of choices
                listed = False
            if not listed:
                return f"unknown {value!r}; known: {', '.join(sorted(map(str, known)))}"
        if any(b is not None for b in (self.ge, self.gt, self.le, self.lt)):
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value)):
                return f"must be a finite number {self._range()}, got {value!r}"
            if not ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                    and (self.le is None or value <= self.le)
                    and (self.lt is None or value < self.lt)):
                return f"must be {self._range()}, got {value!r}"
        if self.check is not None:
            return self.check(value)
        return None

    def problem(self, name: str, value: Any) -> str | None:
        """Why ``value`` is not allowed for option ``name`` (None: it is): ``"epochs must be
        >= 1, got 0"``, ``"dataset: unknown 'x'; known: ..."``."""
        found = self.issue(value)
        if found is None:
            return None
        return f"{name} {found}" if found.startswith("must be") else f"{name}: {found}"

    def _range(self) -> str:
        low = (self.ge, "[") if self.ge is not None else (self.gt, "(")
        high = (self.le, "]") if self.le is not None else (self.lt, ")")
        if low[0] is not None and high[0] is not None:
            return f"in {low[1]}{low[0]:g}, {high[0]:g}{high[1]}"
        if low[0] is not None:
            return f"{'>=' if self.ge is not None else '>'} {low[0]:g}"
        return f"{'<=' if self.le is not None else '<'} {high[0]:g}"

    def text(self) -> str:
        """What is allowed, for documentation and messages."""
        parts = []
        if self.choices is not None:
            known = self.choices() if callable(self.choices) else self.choices
            parts.append("one of " + ", ".join(map(str, known)))
        if any(b is not None for b in (self.ge, self.gt, self.le, self.lt)):
            parts.append(self._range())
        return "; ".join(parts) or "any"


# Options of plain factories (strategies, spaces): what they allow, in their type hints.
NonNegative = Annotated[int, Allowed(ge=0)]
AtLeast1 = Annotated[int, Allowed(ge=1)]
AtLeast2 = Annotated[int, Allowed(ge=2)]
Positive = Annotated[float, Allowed(gt=0)]
Probability = Annotated[float, Allowed(ge=0, le=1)]


def allowed_in(hint: Any) -> list[Allowed]:
    """The ``Allowed`` of a type hint (``Annotated[int, Allowed(...)]``, also inside a
    union), for the checks of options given to a plain factory."""
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return [a for a in typing.get_args(hint)[1:] if isinstance(a, Allowed)]
    if origin in (typing.Union, types.UnionType):
        return [a for h in typing.get_args(hint) for a in allowed_in(h)]
    return []


def type_ok(value: Any, hint: Any) -> bool:
    """Whether a TOML / Python value fits a type hint (ints are accepted for floats, bools are
    not accepted for numbers)."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return type_ok(value, typing.get_args(hint)[0])
    if origin in (Union, types.UnionType):
        return any(type_ok(value, h) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None) or hint is None:
        return value is None
    if origin in (list, tuple, typing.Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = typing.get_args(hint)
        if not args:
            return True
        inner = args[0]
        return all(type_ok(v, inner) for v in value)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            return False
        args = typing.get_args(hint)
        return not args or all(type_ok(k, args[0]) and type_ok(v, args[1])
                               for k, v in value.items())
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def type_text(hint: Any) -> str:
    """A hint as a user reads it: "an integer", "a number", ..."""
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        hint, str(hint).replace("typing.", "")
    )


def check_arguments(fn: Callable[..., Any], arguments: dict[str, Any]) -> None:
    """Check ``arguments`` of a plain factory against what its type hints allow
    (``Annotated[..., Allowed(...)]``); ``ValueError`` names the first one not allowed."""
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable annotations: nothing declared to check
        return
    for name, value in arguments.items():
        hint = hints.get(name, Any)
        if not type_ok(value, hint):
            raise ValueError(f"{name}: expected {type_text(hint)}, got {value!r}")
        for rule in allowed_in(hint):
            problem = rule.problem(name, value)
            if problem:
                raise ValueError(problem)


def option(default: Any, *, ge: float | None = None, gt: float | None = None,
           le: float | None = None, lt: float | None = None,
           choices: Sequence[Any] | Callable[[], Sequence[Any]] | None = None,
           check: Callable[[Any], str | None] | None = None) -> Any:
    """A dataclass field with ``default`` and what it allows (see ``Allowed``)."""
    allowed = Allowed(ge, gt, le, lt, choices, check)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default),
                                 metadata={"allowed": allowed})
    return dataclasses.field(default=default, metadata={"allowed": allowed})


def check_declared(obj: Any) -> None:
    """Check every declared option of the dataclass instance ``obj``; ``ValueError`` names
    the first option that is not allowed."""
    for f in dataclasses.fields(obj):
        allowed = f.metadata.get("allowed")
        if allowed is None:
            continue
        value = getattr(obj, f.name)
        if value is None and f.default is None:
            continue
        problem = allowed.problem(f.name, value)
        if problem:
            raise ValueError(problem)
