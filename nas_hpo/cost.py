"""What a network costs: parameters, FLOPs, measured latency.

Multi-objective NAS trades accuracy against these, and every trial of every objective stores
them (``params``, ``flops``, ``latency_ms``) so that any study can be re-read as a
multi-objective one. FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (PyTorch's
own counter: 2 FLOPs per multiply-add of convolutions, matrix products and attention; cheap
element-wise ops, norms and pools are not counted), for one image. Latency is the median of
timed forward passes after a warm-up: CUDA events on a GPU, ``time.perf_counter`` on the CPU,
with the batch size and device recorded next to it.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "METRICS",
    "Latency",
    "count_flops",
    "count_params",
    "measure",
    "measure_latency",
]

def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers such as BN statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def _example(input_shape: Sequence[int], batch_size: int, device: torch.device) -> torch.Tensor:
    # Fixed, not random: costs must not depend on a seed.
    return torch.ones(batch_size, *input_shape, device=device)


class _EvalMode:
    """Evaluation mode for the measurement, the caller's mode afterwards."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.modes = [(m, m.training) for m in model.modules()]

    def __enter__(self) -> nn.Module:
        self.model.eval()
        return self.model

    def __exit__(self, *exc: object) -> None:
        for m, mode in self.modes:
            m.training = mode


def count_flops(model: nn.Module, input_shape: Sequence[int], *, batch_size: int = 1) -> int:
    """FLOPs of one forward pass of a batch of ``batch_size`` inputs of ``input_shape``
    (``(C, H, W)``), in evaluation mode, as ``FlopCounterMode`` counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    device = _device_of(model)
    x = _example(input_shape, batch_size, device)
    counter = FlopCounterMode(display=False)
    with _EvalMode(model), torch.no_grad(), counter:
        model(x)
    return int(counter.get_total_flops())


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


@dataclass(frozen=True)
class Latency:
    """Median forward time in milliseconds over ``repeats`` timed passes."""

    median_ms: float
    batch_size: int
    device: str
    repeats: int
    times_ms: tuple[float, ...]


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    batch_size: int = 1,
    device: str | torch.device | None = None,
    warmup: int = 3,
    repeats: int = 10,
) -> Latency:
    """Time the forward pass of ``model`` (on ``device``; its own device when ``None``).

    The model is measured as given when it already lives on ``device``; otherwise a copy is
    moved there, so the caller's model never changes device."""
    if batch_size < 1 or repeats < 1 or warmup < 0:
        raise ValueError(
            f"need batch_size >= 1, repeats >= 1, warmup >= 0; got {batch_size}, {repeats}, "
            f"{warmup}"
        )
    target = torch.device(device) if device is not None else _device_of(model)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"latency on {target} asked for, but CUDA is not available here")
    if _device_of(model) != target:
        model = copy.deepcopy(model).to(target)
    x = _example(input_shape, batch_size, target)
    times: list[float] = []
    with _EvalMode(model), torch.inference_mode():
        for _ in range(warmup):
            model(x)
        if target.type == "cuda":
            # Host timers would measure the launch, not the kernels: time on the stream.
            torch.cuda.synchronize(target)
            for _ in range(repeats):
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                model(x)
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
        else:
            for _ in range(repeats):
                t0 = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - t0) * 1e3)
    return Latency(
        median_ms=statistics.median(times),
        batch_size=batch_size,
        device=str(target),
        repeats=repeats,
        times_ms=tuple(times),
    )


def _params_attrs(model: nn.Module, input_shape: Sequence[int], **_: Any) -> dict[str, Any]:
    return {"params": count_params(model)}


def _flops_attrs(model: nn.Module, input_shape: Sequence[int], **_: Any) -> dict[str, Any]:
    return {"flops": count_flops(model, input_shape)}


def _latency_attrs(model: nn.Module, input_shape: Sequence[int], **options: Any) -> dict[str, Any]:
    lat = measure_latency(model, input_shape, **options)
    return {
        "latency_ms": round(lat.median_ms, 4),
        "latency_batch_size": lat.batch_size,
        "latency_device": lat.device,
    }


_MEASURES = {"params": _params_attrs, "flops": _flops_attrs, "latency": _latency_attrs}
METRICS = tuple(_MEASURES)


def check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    """The metric names, or ``ValueError`` naming an unknown one and the known ones."""
    if isinstance(metrics, str):
        metrics = (metrics,)
    out = tuple(metrics)
    for m in out:
        if m not in _MEASURES:
            raise ValueError(f"unknown cost metric {m!r}; known: {', '.join(METRICS)}")
    return out


def measure(
    model: nn.Module,
    input_shape: Sequence[int],
    metrics: Iterable[str] = METRICS,
    *,
    batch_size: int = 1,
    device: str | torch.device | None = None,
    warmup: int = 3,
    repeats: int = 10,
) -> dict[str, Any]:
    """The requested metrics as trial user attributes: ``params``, ``flops`` (per image),
    ``latency_ms`` with ``latency_batch_size`` and ``latency_device``."""
    out: dict[str, Any] = {}
    for m in check_metrics(metrics):
        out.update(
            _MEASURES[m](
                model,
                input_shape,
                batch_size=batch_size,
                device=device,
                warmup=warmup,
                repeats=repeats,
            )
        )
    return out
