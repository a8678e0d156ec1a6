"""Hyperparameter types of the space model.

Each type is an immutable value object: its name, its domain and its default. The default is
resolved at construction (the same rule as ConfigSpace: first choice, or the middle of the range,
geometric for log scales) so that a space exported to ConfigSpace and read back compares equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

Value = str | int | float | bool


def _plain(value: Any) -> Any:
    """Turn numpy scalars into the Python scalars a config dict holds."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps ``True`` apart from ``1``, and reads numpy scalars (what ConfigSpace
    hands back: ``np.True_``, ``np.str_``, ``np.int64``) as the Python values they hold."""
    a, b = _plain(a), _plain(b)
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


class Hyperparameter:
    """Base of the parameter types; a parameter knows its domain and nothing about conditions."""

    name: str
    default: Any

    def contains(self, value: Any) -> bool:
        """Whether ``value`` lies in the domain (with the right type)."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def values(self) -> list[Any] | None:
        """Every value of a finite domain in order, ``None`` for a continuous one."""
        raise NotImplementedError

    def cardinality(self) -> float:
        """Number of values in the domain (``math.inf`` for a float range)."""
        v = self.values()
        return math.inf if v is None else len(v)

    def domain_text(self) -> str:
        raise NotImplementedError

    def _check_name(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"parameter name must be a non-empty string, got {self.name!r}")


@dataclass(frozen=True, eq=True)
class Categorical(Hyperparameter):
    """A choice among ``choices``; ``ordered=True`` makes it ordinal (ConfigSpace ``Ordinal``),
    which allows greater-than / less-than conditions by position in ``choices``."""

    name: str
    choices: tuple[Value, ...]
    default: Value | None = None
    ordered: bool = False

    def __post_init__(self) -> None:
        self._check_name()
        choices = tuple(_plain(c) for c in self.choices)
        if not choices:
            raise ValueError(f"parameter {self.name!r}: categorical needs at least one choice")
        for c in choices:
            if not isinstance(c, (str, int, float, bool)):
                raise ValueError(
                    f"parameter {self.name!r}: choice {c!r} is not a str, int, float or bool"
                )
        # 1, 1.0 and True compare equal in Python (and in ConfigSpace), so they cannot be
        # separate choices of one parameter.
        if len(set(choices)) != len(choices):
            raise ValueError(f"parameter {self.name!r}: duplicate choices in {list(choices)!r}")
        # ConfigSpace stores numeric choices in a numpy array, where True becomes 1: a config
        # coming back from ConfigSpace (or SMAC) would then hold a value we do not know.
        kinds = {type(c) for c in choices}
        if bool in kinds and kinds & {int, float}:
            raise ValueError(
                f"parameter {self.name!r}: choices {list(choices)!r} mix booleans with numbers "
                "(ConfigSpace would read True back as 1); use strings or separate parameters"
            )
        object.__setattr__(self, "choices", choices)
        default = choices[0] if self.default is None else _plain(self.default)
        if not self.contains(default):
            raise ValueError(
                f"parameter {self.name!r}: default {default!r} is not one of {list(choices)!r}"
            )
        object.__setattr__(self, "default", default)

    def contains(self, value: Any) -> bool:
        return any(_same(value, c) for c in self.choices)

    def index(self, value: Any) -> int:
        for i, c in enumerate(self.choices):
            if _same(value, c):
                return i
        raise ValueError(f"{value!r} is not a choice of {self.name!r}")

    def sample(self, rng: np.random.Generator) -> Value:
        return self.choices[int(rng.integers(len(self.choices)))]

    def values(self) -> list[Any]:
        return list(self.choices)

    def domain_text(self) -> str:
        kind = "ordered" if self.ordered else "one of"
        return f"{kind} {list(self.choices)!r}"


@dataclass(frozen=True, eq=True)
class Integer(Hyperparameter):
    """An integer in ``[low, high]`` (both included, ``low < high``), uniform or log-uniform."""

    name: str
    low: int
    high: int
    log: bool = False
    default: int | None = None

    def __post_init__(self) -> None:
        self._check_name()
        low, high = _plain(self.low), _plain(self.high)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
            raise ValueError(f"parameter {self.name!r}: integer bounds must be ints")
        # ConfigSpace (like our Float) refuses an empty range, so a single value must be a
        # Constant; accepting it here would make the space impossible to export.
        if low >= high:
            raise ValueError(
                f"parameter {self.name!r}: need low < high, got {low}, {high} "
                "(use Constant for a single value)"
            )
        if self.log and low <= 0:
            raise ValueError(f"parameter {self.name!r}: a log scale needs low > 0, got {low}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        if self.default is None:
            mid = math.sqrt(low * high) if self.log else (low + high) / 2
            default = int(round(mid))
        else:
            default = _plain(self.default)
        if not self.contains(default):
            raise ValueError(
                f"parameter {self.name!r}: default {default!r} is outside [{low}, {high}]"
            )
        object.__setattr__(self, "default", default)

    def contains(self, value: Any) -> bool:
        value = _plain(value)
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )

    def sample(self, rng: np.random.Generator) -> int:
        if not self.log:
            return int(rng.integers(self.low, self.high + 1))
        # Log-uniform over the integers, as Optuna's IntDistribution(log=True) does: draw in
        # log space over [low - 0.5, high + 0.5] and round.
        lo, hi = math.log(self.low - 0.5), math.log(self.high + 0.5)
        v = int(round(math.exp(rng.uniform(lo, hi))))
        return min(max(v, self.low), self.high)

    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1))

    def cardinality(self) -> float:
        return self.high - self.low + 1

    def domain_text(self) -> str:
        return f"an integer in [{self.low}, {self.high}]" + (" (log)" if self.log else "")


@dataclass(frozen=True, eq=True)
class Float(Hyperparameter):
    """A real number in ``[low, high]``, uniform or log-uniform."""

    name: str
    low: float
    high: float
    log: bool = False
    default: float | None = None

    def __post_init__(self) -> None:
        self._check_name()
        # ConfigSpace rounds float bounds and defaults to 13 decimals; doing the same here keeps
        # the export lossless (a round trip through ConfigSpace compares equal).
        low, high = _round(_plain(self.low)), _round(_plain(self.high))
        if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
            raise ValueError(f"parameter {self.name!r}: need finite low < high, got {low}, {high}")
        if self.log and low <= 0:
            raise ValueError(f"parameter {self.name!r}: a log scale needs low > 0, got {low}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        if self.default is None:
            default = math.sqrt(low * high) if self.log else (low + high) / 2
        else:
            default = _plain(self.default)
        if not self.contains(default):
            raise ValueError(
                f"parameter {self.name!r}: default {default!r} is outside [{low}, {high}]"
            )
        object.__setattr__(self, "default", _round(default))

    def contains(self, value: Any) -> bool:
        value = _plain(value)
        return (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and self.low <= value <= self.high
        )

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def values(self) -> None:
        return None

    def domain_text(self) -> str:
        return f"a float in [{self.low}, {self.high}]" + (" (log)" if self.log else "")


@dataclass(frozen=True, eq=True)
class Constant(Hyperparameter):
    """A parameter with a single value (kept so that exports and records are complete)."""

    name: str
    value: Value

    def __post_init__(self) -> None:
        self._check_name()
        value = _plain(self.value)
        if not isinstance(value, (str, int, float, bool)):
            raise ValueError(f"parameter {self.name!r}: constant {value!r} is not a scalar")
        object.__setattr__(self, "value", value)

    @property
    def default(self) -> Value:  # type: ignore[override]
        return self.value

    def contains(self, value: Any) -> bool:
        return _same(_plain(value), self.value)

    def sample(self, rng: np.random.Generator) -> Value:
        return self.value

    def values(self) -> list[Any]:
        return [self.value]

    def domain_text(self) -> str:
        return f"the constant {self.value!r}"


FLOAT_PLACES = 13


def _round(x: float) -> float:
    return float(round(float(x), FLOAT_PLACES))


def position(param: Hyperparameter, value: Any) -> float:
    """The order key used by greater-than / less-than: the number itself, or the index of an
    ordered categorical's choice."""
    if isinstance(param, Categorical):
        return param.index(value)
    return value
