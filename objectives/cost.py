"""``cost``: score an architecture by what it costs, without training it.

The values are the requested metrics of ``nas_hpo.cost`` (parameter count, FLOPs per image,
median latency in milliseconds), each to be minimized; as the second objective of a
multi-objective study, pair it with an accuracy objective through a Python callable, or use
the cost attributes that every trial of every objective stores. The network is built for the
input of ``dataset`` (or an explicit ``input_shape`` and ``num_classes``), with the study's
per-trial seed for its initial weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from nas_hpo import cost, data
from nas_hpo._objective import Context, DataSource, Objective, Result
from nas_hpo._options import check_declared, option
from nas_hpo.objectives import register
from nas_hpo.space import SearchSpace
from nas_hpo.training import check_device, resolve_device

# The value each metric contributes (the attribute of ``cost.measure`` it comes from).
_VALUE_OF = {"params": "params", "flops": "flops", "latency": "latency_ms"}


@register("cost", test_options={"metrics": ["params"]})
@dataclass(frozen=True)
class Cost(Objective):
    """Parameters, FLOPs and/or latency of the built network, one value per metric."""

    metrics: list[str] | tuple[str, ...] = ("params",)
    dataset: str = data.DEFAULT
    input_shape: list[int] | None = None
    num_classes: int | None = option(None, ge=1)
    batch_size: int = option(1, ge=1)
    device: str = option("cpu", check=check_device)
    warmup: int = option(3, ge=0)
    repeats: int = option(10, ge=1)

    def __post_init__(self) -> None:
        check_declared(self)
        try:
            metrics = cost.check_metrics(self.metrics)
        except (ValueError, TypeError) as e:
            raise ValueError(f"metrics: {e}") from None
        if not metrics:
            raise ValueError("metrics: give at least one of " + ", ".join(cost.METRICS))
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"metrics: {list(metrics)!r} names a metric twice")
        object.__setattr__(self, "metrics", metrics)
        if self.input_shape is None and self.dataset not in data.names():
            raise ValueError(f"dataset: unknown {self.dataset!r}; known: {', '.join(data.names())}")
        if self.input_shape is not None:
            if len(self.input_shape) != 3 or any(int(v) < 1 for v in self.input_shape):
                raise ValueError(
                    f"input_shape: expected [channels, height, width], got {self.input_shape!r}"
                )
            object.__setattr__(self, "input_shape", [int(v) for v in self.input_shape])
            if self.num_classes is None:
                raise ValueError("num_classes: required with input_shape")
        object.__setattr__(self, "directions", ("minimize",) * len(metrics))

    @property
    def cost_device(self) -> str:  # type: ignore[override]
        return str(resolve_device(self.device))

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(_VALUE_OF[m] for m in self.metrics)

    def data_source(self) -> DataSource | None:
        return None if self.input_shape is not None else DataSource(self.dataset)

    def model_input(self) -> tuple[tuple[int, ...], int]:
        if self.input_shape is not None:
            return tuple(self.input_shape), int(self.num_classes)  # type: ignore[arg-type]
        splits = data.load(self.dataset)
        return splits.input_shape, self.num_classes or splits.num_classes

    def __call__(self, config: Mapping[str, Any], *, space: SearchSpace, ctx: Context) -> Result:
        input_shape, num_classes = self.model_input()
        torch.manual_seed(ctx.seed)
        model = space.build(config, input_shape=input_shape, num_classes=num_classes)
        attrs = cost.measure(
            model,
            input_shape,
            self.metrics,
            batch_size=self.batch_size,
            device=self.cost_device,
            warmup=self.warmup,
            repeats=self.repeats,
        )
        attrs["cost_input_shape"] = list(input_shape)
        values = tuple(float(attrs[_VALUE_OF[m]]) for m in self.metrics)  # type: ignore[union-attr]
        return Result(values, attrs)
