"""The continuous relaxation of a space's categorical parameters: the one mechanism every
supernet uses to run a *mixture* of its architectures instead of one path.

A supernet's ``forward(x, config)`` takes a config; where it makes a choice (the operation
on an edge, the block at a position) it calls ``mixed(config, name, ops, x)``. With a plain
config that is the chosen operation, as before. With a ``Relaxed`` config — a weight vector
over each parameter's choices — it is the weighted sum of the operations (DARTS), with the
ops of an exactly-zero weight not run (GDAS's one path per step), on a fraction of the
channels where the relaxation asks for it (PC-DARTS). The search algorithm only makes the
weights (``nas_hpo.oneshot.OneShotSearch``); no space holds a copy of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch.nn import functional as F

__all__ = ["Relaxed", "is_relaxed", "is_zero", "mixed", "weight_of"]

Op = Callable[[torch.Tensor], torch.Tensor] | None


class Relaxed(Mapping[str, Any]):
    """A soft config: per relaxed parameter a weight vector over ``choices[name]`` (a tensor
    summing to one; a one-hot one is a hard sample), and the values of the parameters that
    stay fixed. ``partial`` > 1 runs each mixed operation on the first 1/``partial`` of the
    channels (PC-DARTS; the supernet must be built for it). ``parameter_free`` collects, per
    parameter, the choices whose operation holds no weights (the collapse guard's view)."""

    def __init__(self, weights: Mapping[str, torch.Tensor], choices: Mapping[str, list[Any]],
                 fixed: Mapping[str, Any] | None = None, *, partial: int = 1) -> None:
        self.weights = dict(weights)
        self.choices = {k: list(v) for k, v in choices.items()}
        self.fixed = dict(fixed or {})
        self.partial = partial
        self.parameter_free: dict[str, set[Any]] = {}

    def __getitem__(self, name: str) -> Any:
        if name in self.fixed:
            return self.fixed[name]
        if name in self.weights:
            raise TypeError(f"parameter {name!r} is relaxed: a supernet reads it through "
                            "nas_hpo.oneshot.mixed / weight_of")
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter([*self.fixed, *self.weights])

    def __len__(self) -> int:
        return len(self.fixed) + len(self.weights)


def is_relaxed(config: Mapping[str, Any]) -> bool:
    return isinstance(config, Relaxed)


def weight_of(config: Mapping[str, Any], name: str, values: Any) -> torch.Tensor | float:
    """The total weight of ``values`` (a value, or a list / tuple / set of them) of parameter
    ``name``: 1.0 or 0.0 in a plain config, the sum of their weights in a relaxed one."""
    many = values if isinstance(values, (set, frozenset, list, tuple)) else (values,)
    if not isinstance(config, Relaxed) or name not in config.weights:
        return 1.0 if config[name] in many else 0.0
    w = config.weights[name]
    index = config.choices[name]
    return sum((w[index.index(v)] for v in many), torch.zeros((), device=w.device))


def is_zero(w: Any) -> bool:
    """Whether a weight (a tensor or a plain number) is exactly zero: a choice a hard sample
    did not draw, which a supernet need not compute (its weight still carries a gradient)."""
    return float(w.detach() if isinstance(w, torch.Tensor) else w) == 0.0


def _shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def mixed(config: Mapping[str, Any], name: str | tuple[str, ...], ops: Mapping[Any, Op],
          x: torch.Tensor) -> torch.Tensor | None:
    """The output of the choice ``name`` among ``ops`` (value → module; ``None`` is the zero
    operation, which keeps the input's shape) on ``x``. ``name`` may be a tuple of parameters
    whose values together key ``ops`` (a block chosen by kernel and width): their weights
    multiply.

    A plain config runs the chosen op (``None`` for the zero op: the caller skips it). A
    relaxed one returns ``Σ_o w_o · op_o(x)``; an op whose weight is exactly zero (in a hard
    sample) is not run and its weight is added as it is, so that its gradient still flows
    (GDAS). With ``config.partial = k`` > 1 the ops see the first 1/k of the channels, the rest
    passes by (max-pooled where the ops halve the map), and the channels are shuffled
    (PC-DARTS)."""
    names = name if isinstance(name, tuple) else (name,)
    if not isinstance(config, Relaxed) or not any(n in config.weights for n in names):
        op = ops[tuple(config[n] for n in names) if isinstance(name, tuple) else config[name]]
        return None if op is None else op(x)
    if names[0] not in config.parameter_free:
        config.parameter_free[names[0]] = {
            key for key, op in ops.items()
            if op is None or not any(True for _ in getattr(op, "parameters", tuple)())}
    k = config.partial
    xa = x[:, : x.shape[1] // k] if k > 1 else x
    out: torch.Tensor | None = None
    carried: Any = 0.0
    for key, op in ops.items():
        w: Any = 1.0
        for n, v in zip(names, key if isinstance(name, tuple) else (key,), strict=True):
            w = w * weight_of(config, n, v)
        if op is None:
            continue  # w · 0: nothing to add, and no gradient for w
        if is_zero(w):
            carried = carried + w  # GDAS: not run, the weight keeps its gradient
            continue
        y = w * op(xa)
        out = y if out is None else out + y
    if out is None:  # all weight on the zero op
        out = torch.zeros_like(xa)
    out = out + carried
    if k > 1:
        bypass = x[:, x.shape[1] // k:]
        if bypass.shape[-1] != out.shape[-1]:
            bypass = F.max_pool2d(bypass, 2, 2, ceil_mode=True)
        out = _shuffle(torch.cat([out, bypass], dim=1), k)
    return out
