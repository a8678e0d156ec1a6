"""The training step of the ``train`` objective: forward, loss, backward and optimizer step,
with the epoch's loss and correct predictions summed on the device, launched eagerly or
captured once as a CUDA graph and replayed.

Why a graph: a small network's step on a GPU is hundreds of short kernels, and launching them
from Python costs more than running them; a replay launches the whole step at once. The
capture follows PyTorch's whole-network recipe (``torch.cuda.graphs`` documentation): static
input and label buffers that each step's batch is copied into; a few eager warm-up steps on a
side stream before the capture (they are real training steps, on real batches); gradients set
to None before the capture, so that the captured backward allocates them from the graph's
pool and every replay writes them afresh; autocast without its weight-cast cache; an
optimizer that reads its learning rate from a device tensor, refreshed from the schedule
before each replay (a float would be frozen into the graph). A batch of another size (the
last, partial one of an epoch) runs eagerly on the same parameters, gradients and optimizer
state: a graph has one shape, and the eager path keeps every image of the epoch, as the
eager recipe does. A network whose step cannot be captured (a host synchronization in its
forward, say) trains eagerly, the reason kept in ``fallback``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["GRAPH_WARMUP", "TrainStep"]

#: Eager steps on a side stream before the capture (the PyTorch recipe's three): lazy
#: initializations (cuDNN / cuBLAS handles, the optimizer's momentum buffers) happen there,
#: not in the graph.
GRAPH_WARMUP = 3


class TrainStep:
    """``step(xb, yb)`` trains ``model`` on one batch; ``loss_sum`` and ``correct`` sum the
    loss and the correct predictions on the device until ``reset()`` (read once per epoch:
    the one synchronization). ``graph``: capture the steps of ``batch_size`` images as a CUDA
    graph (the model, data and optimizer on one CUDA device, the optimizer built with
    ``capturable=True`` where it has that option)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *,
                 device: torch.device, autocast: torch.dtype | None, batch_size: int,
                 graph: bool = False) -> None:
        if graph and device.type != "cuda":
            raise ValueError(f"a CUDA graph needs a CUDA device, not {device}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.device, self.autocast, self.batch_size = device, autocast, batch_size
        self.graph = graph
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device)
        self._warm = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._x = self._y = None
        self._lrs: list[torch.Tensor] = []
        self._side: torch.cuda.Stream | None = None  # the warm-up's stream
        #: Why the capture failed and the steps stayed eager (None: it did not fail).
        self.fallback: str | None = None

    @property
    def captured(self) -> bool:
        """Whether the steps now replay a captured graph."""
        return self._graph is not None

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.correct.zero_()

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        if not self.graph or len(xb) != self.batch_size:
            if self._graph is not None:
                # Keep the gradients the graph writes (set to None, the next eager backward
                # would allocate new ones outside its pool); zeroed, this backward fills them.
                self.optimizer.zero_grad(set_to_none=False)
            self._eager(xb, yb, cache=True)
        elif self._graph is not None:
            self._replay(xb, yb)
        elif self._warm < GRAPH_WARMUP:
            side = self._side = self._side or torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                self._eager(xb, yb, cache=True)
            torch.cuda.current_stream(self.device).wait_stream(side)
            self._warm += 1
        else:
            try:
                self._capture(xb, yb)
            except torch.cuda.OutOfMemoryError:
                raise
            except RuntimeError as e:
                # A network the capture cannot take (a host synchronization or a
                # data-dependent shape in its forward): the run goes on eagerly. Nothing of
                # this step ran during the failed capture; it runs eagerly now.
                self.graph, self._graph = False, None
                self.fallback = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)  # the error surfaces here, not later
                self._eager(xb, yb, cache=True)
                return
            self._replay(xb, yb)

    def _eager(self, xb: torch.Tensor, yb: torch.Tensor, *, cache: bool) -> None:
        if self._graph is None:
            self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.autocast or torch.float32,
                            enabled=self.autocast is not None, cache_enabled=cache):
            out = self.model(xb)
        loss = self.loss_fn(out.float(), yb)
        loss.backward()
        self.optimizer.step()
        self.loss_sum += loss.detach()
        self.correct += (out.detach().argmax(1) == yb).sum()

    def _capture(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        self._x, self._y = torch.empty_like(xb), torch.empty_like(yb)
        groups = self.optimizer.param_groups
        self._lrs = [torch.tensor(float(g["lr"]), device=self.device) for g in groups]
        floats = [g["lr"] for g in groups]
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        try:
            for g, lr in zip(groups, self._lrs, strict=True):
                g["lr"] = lr
            # (no autocast cache: a cast cached during the capture would be stale at replay)
            with torch.cuda.graph(graph):
                self._eager(self._x, self._y, cache=False)
        finally:
            # The schedule goes on setting floats; _replay copies them into the tensors.
            for g, lr in zip(groups, floats, strict=True):
                g["lr"] = lr
        self._graph = graph

    def _replay(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        assert self._graph is not None and self._x is not None and self._y is not None
        self._x.copy_(xb)
        self._y.copy_(yb)
        for g, lr in zip(self.optimizer.param_groups, self._lrs, strict=True):
            lr.fill_(g["lr"])
        self._graph.replay()
