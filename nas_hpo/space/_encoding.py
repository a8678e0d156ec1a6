"""A fixed-length numeric encoding of a conditional space's configs, for surrogate models.

A config holds only its active parameters, so two configs of a conditional space can have
different keys; a model (a neural predictor, a Gaussian process) needs vectors of one length.
Each parameter gets columns by its type:

- an unordered categorical: one-hot over its choices;
- an ordered categorical or an integer: one number in [0, 1] (the choice's position, or the
  value on its scale, logarithmic for log ranges);
- a float: its value on its scale, in [0, 1];
- a constant: no column (it carries nothing);

and a parameter with a condition gets one more column, 1 when it is active, 0 when not; its
value columns are then all 0. So the kernel or network sees "inactive" as its own state, not
as a random value (what Optuna's samplers do outside the intersection search space).

``decode`` inverts ``encode``: walking the space's topological order it keeps the parameters
active in the config decoded so far, so ``decode(encode(c)) == c`` for every valid config
(floats up to the 13 decimals ConfigSpace keeps).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_hpo.space._params import (
    FLOAT_PLACES,
    Categorical,
    Constant,
    Float,
    Hyperparameter,
    Integer,
)

if TYPE_CHECKING:
    from nas_hpo.space._space import Config, SearchSpace


def _unit(param: Integer | Float, value: float) -> float:
    if param.log:
        lo, hi, v = math.log(param.low), math.log(param.high), math.log(value)
    else:
        lo, hi, v = param.low, param.high, value
    return (v - lo) / (hi - lo)


def _from_unit(param: Integer | Float, u: float) -> float:
    u = min(max(float(u), 0.0), 1.0)
    if param.log:
        lo, hi = math.log(param.low), math.log(param.high)
        return math.exp(lo + u * (hi - lo))
    return param.low + u * (param.high - param.low)


@dataclass(frozen=True)
class _Columns:
    name: str
    start: int
    width: int  # value columns
    flag: int | None  # the active flag's column, for a conditional parameter


class Encoding:
    """The encoding of one space: ``encode(config)``, ``decode(vector)``, ``names``."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        columns: list[_Columns] = []
        names: list[str] = []
        for n in space.order:
            p = space[n]
            start = len(names)
            if isinstance(p, Constant):
                width = 0
            elif isinstance(p, Categorical) and not p.ordered:
                width = len(p.choices)
                names.extend(f"{n}={c}" for c in p.choices)
            else:
                width = 1
                names.append(n)
            flag = None
            if n in space.conditions:
                flag = len(names)
                names.append(f"{n}:active")
            columns.append(_Columns(n, start, width, flag))
        self._columns = tuple(columns)
        self.names: tuple[str, ...] = tuple(names)

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """The vector of a valid config (its inactive parameters absent)."""
        out = np.zeros(len(self.names))
        for col in self._columns:
            if col.name not in config:
                continue
            if col.flag is not None:
                out[col.flag] = 1.0
            p: Hyperparameter = self.space[col.name]
            value = config[col.name]
            if col.width == 0:
                continue
            if isinstance(p, Categorical):
                i = p.index(value)
                if p.ordered:
                    out[col.start] = i / max(len(p.choices) - 1, 1)
                else:
                    out[col.start + i] = 1.0
            else:
                out[col.start] = _unit(p, value)  # type: ignore[arg-type]
        return out

    def encode_many(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if not configs:
            return np.zeros((0, len(self.names)))
        return np.stack([self.encode(c) for c in configs])

    def decode(self, vector: Sequence[float]) -> Config:
        """The config a vector encodes: activity from the parameters decoded so far; a
        categorical's choice is its largest column, numbers are rounded onto their domain."""
        v = np.asarray(vector, dtype=float)
        if v.shape != (len(self.names),):
            raise ValueError(f"a vector of this space has {len(self.names)} entries, got "
                             f"shape {v.shape}")
        config: Config = {}
        for col in self._columns:
            if not self.space.is_active(col.name, config):
                continue
            p = self.space[col.name]
            if isinstance(p, Constant):
                config[col.name] = p.value
            elif isinstance(p, Categorical):
                if p.ordered:
                    i = int(round(min(max(v[col.start], 0.0), 1.0) * (len(p.choices) - 1)))
                else:
                    i = int(np.argmax(v[col.start : col.start + col.width]))
                config[col.name] = p.choices[i]
            elif isinstance(p, Integer):
                x = int(round(_from_unit(p, v[col.start])))
                config[col.name] = min(max(x, p.low), p.high)
            else:
                assert isinstance(p, Float)
                x = round(_from_unit(p, v[col.start]), FLOAT_PLACES)
                config[col.name] = min(max(x, p.low), p.high)
        return config
