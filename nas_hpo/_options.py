"""Declared options: the one way a component's options are checked.

A component (an objective, a strategy's settings, a dataset's loader) is a dataclass whose
fields are its options; ``option(default, ge=..., choices=...)`` declares what a field
allows next to its default, and ``check_declared(obj)`` checks every declared field at once,
before anything runs. The messages name the option and what is allowed; the study layer adds
the file and section.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Allowed", "check_declared", "option"]


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

    def problem(self, name: str, value: Any) -> str | None:
        """Why ``value`` is not allowed for option ``name`` (None: it is)."""
        if self.choices is not None:
            known = list(self.choices() if callable(self.choices) else self.choices)
            if value not in known:
                return (f"{name}: unknown {value!r}; known: "
                        f"{', '.join(sorted(map(str, known)))}")
        if any(b is not None for b in (self.ge, self.gt, self.le, self.lt)):
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or math.isnan(value)):
                return f"{name} must be a number {self._range()}, got {value!r}"
            if not ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                    and (self.le is None or value <= self.le)
                    and (self.lt is None or value < self.lt)):
                return f"{name} must be {self._range()}, got {value!r}"
        if self.check is not None:
            found = self.check(value)
            if found:
                return f"{name}: {found}"
        return None

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
