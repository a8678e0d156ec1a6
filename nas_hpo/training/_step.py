"""The training step of the ``train`` objective: forward, loss, backward and optimizer step,
with the epoch's loss and correct predictions summed on the device, launched eagerly or
captured as CUDA graphs and replayed; and the evaluation pass, likewise.

Why a graph: a small network's step on a GPU is hundreds of short kernels, and launching them
from Python costs more than running them; a replay launches the whole step at once. The
capture follows PyTorch's whole-network recipe (``torch.cuda.graphs`` documentation): static
input and label buffers that each step's batch is copied into; a few eager warm-up steps on a
side stream before the capture (they are real training steps, on real batches); gradients set
to None before the capture, so that the captured backward allocates them from the graph's
pool and every replay writes them afresh; autocast without its weight-cast cache; an
optimizer that reads its learning rate from a device tensor, refreshed from the schedule
before each replay (a float would be frozen into the graph). A graph has one shape: the last,
partial batch of an epoch (the same size every epoch) gets a graph of its own, captured after
one eager step of that size (the optimizer state and the kernels' handles exist by then); the
eager path, and the graphs, keep every image of the epoch, as the eager recipe does. Steps of
any further size run eagerly on the same parameters, gradients and optimizer state. A network
whose step cannot be captured (a host synchronization in its forward, say) trains eagerly,
the reason kept in ``fallback``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from nas_hpo.training._recipe import evaluation_sums

__all__ = ["GRAPH_WARMUP", "GraphedEvaluation", "TrainStep"]

#: Eager steps on a side stream before the first capture (the PyTorch recipe's three): lazy
#: initializations (cuDNN / cuBLAS handles, the optimizer's momentum buffers) happen there,
#: not in the graph. A second batch size is captured after one eager step of that size.
GRAPH_WARMUP = 3
#: Batch sizes captured per step: the full batch and the epoch's last, partial one.
MAX_GRAPHS = 2


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    x: torch.Tensor
    y: torch.Tensor
    lrs: list[torch.Tensor]


class TrainStep:
    """``step(xb, yb)`` trains ``model`` on one batch; ``loss_sum`` and ``correct`` sum the
    loss and the correct predictions on the device until ``reset()`` (read once per epoch:
    the one synchronization). ``graph``: capture the steps of ``batch_size`` images, and then
    of one other size (the partial batch), as CUDA graphs (the model, data and optimizer on
    one CUDA device, the optimizer built with ``capturable=True`` where it has that option)."""

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
        self._warm: dict[int, int] = {}  # eager steps so far, by batch size
        self._graphs: dict[int, _Graph] = {}
        self._eager_sizes: set[int] = set()  # sizes whose capture failed
        self._side: torch.cuda.Stream | None = None  # the warm-up's stream
        #: Why a capture failed and those steps stayed eager (None: none failed).
        self.fallback: str | None = None

    @property
    def captured(self) -> bool:
        """Whether the full batches replay a captured graph."""
        return self.batch_size in self._graphs

    @property
    def graphed_sizes(self) -> list[int]:
        """The batch sizes that replay a graph, in the order they were captured."""
        return list(self._graphs)

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.correct.zero_()

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        n = len(xb)
        if n in self._graphs:
            self._replay(self._graphs[n], xb, yb)
        elif not self._may_capture(n):
            self._zero_grads()
            self._eager(xb, yb, cache=True)
        elif self._warm.get(n, 0) < (GRAPH_WARMUP if n == self.batch_size else 1):
            self._zero_grads()
            side = self._side = self._side or torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                self._eager(xb, yb, cache=True)
            torch.cuda.current_stream(self.device).wait_stream(side)
            self._warm[n] = self._warm.get(n, 0) + 1
        else:
            try:
                self._graphs[n] = self._capture(xb, yb)
            except torch.cuda.OutOfMemoryError:
                raise
            except RuntimeError as e:
                # A network the capture cannot take (a host synchronization or a
                # data-dependent shape in its forward): these steps go on eagerly. Nothing of
                # this step ran during the failed capture; it runs eagerly now.
                reason = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
                if n == self.batch_size:
                    self.graph = False
                    self.fallback = reason
                else:
                    self._eager_sizes.add(n)
                    self.fallback = self.fallback or f"batches of {n}: {reason}"
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)  # the error surfaces here, not later
                self._zero_grads()
                self._eager(xb, yb, cache=True)
                return
            self._replay(self._graphs[n], xb, yb)

    def _may_capture(self, n: int) -> bool:
        """The full batch first; then one other size, once the full batch replays."""
        if not self.graph or n in self._eager_sizes:
            return False
        if n == self.batch_size:
            return True
        return self.captured and len(self._graphs) < MAX_GRAPHS

    def _zero_grads(self) -> None:
        """Before an eager step: gradients set to None while no graph exists; once one does,
        zeroed in place (the graphs write those tensors: set to None, the next eager backward
        would allocate new ones outside their pools; zeroed, it fills them)."""
        self.optimizer.zero_grad(set_to_none=not self._graphs)

    def _eager(self, xb: torch.Tensor, yb: torch.Tensor, *, cache: bool) -> None:
        """One step on gradients the caller has reset (``_zero_grads``, or None before a
        capture, whose backward then allocates them in the graph's pool)."""
        with torch.autocast(self.device.type, dtype=self.autocast or torch.float32,
                            enabled=self.autocast is not None, cache_enabled=cache):
            out = self.model(xb)
        loss = self.loss_fn(out.float(), yb)
        loss.backward()
        self.optimizer.step()
        self.loss_sum += loss.detach()
        self.correct += (out.detach().argmax(1) == yb).sum()

    def _capture(self, xb: torch.Tensor, yb: torch.Tensor) -> _Graph:
        x, y = torch.empty_like(xb), torch.empty_like(yb)
        groups = self.optimizer.param_groups
        lrs = [torch.tensor(float(g["lr"]), device=self.device) for g in groups]
        floats = [g["lr"] for g in groups]
        # Each capture's backward allocates its own gradients in its own pool (the graphs
        # before it keep theirs: a pool's memory stays the graph's); nothing zeroes them.
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        try:
            for g, lr in zip(groups, lrs, strict=True):
                g["lr"] = lr
            # (no autocast cache: a cast cached during the capture would be stale at replay)
            with torch.cuda.graph(graph):
                self._eager(x, y, cache=False)
        finally:
            # The schedule goes on setting floats; _replay copies them into the tensors.
            for g, lr in zip(groups, floats, strict=True):
                g["lr"] = lr
        return _Graph(graph, x, y, lrs)

    def _replay(self, g: _Graph, xb: torch.Tensor, yb: torch.Tensor) -> None:
        g.x.copy_(xb)
        g.y.copy_(yb)
        for group, lr in zip(self.optimizer.param_groups, g.lrs, strict=True):
            lr.fill_(group["lr"])
        g.graph.replay()


class GraphedEvaluation:
    """``evaluation()``: accuracy and mean cross-entropy of ``model`` on ``(x, y)`` in eval
    mode, as ``evaluate`` computes them. With ``graph``, the first call runs eagerly (the
    kernels' lazy set-up), the second captures the whole pass (``x``'s chunks are fixed views
    of it: no input buffer to fill) and replays it, later calls replay it: one launch and one
    synchronization per evaluation instead of a few hundred launches. A pass the capture
    cannot take runs eagerly, the reason kept in ``fallback``."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                 autocast: torch.dtype | None, batch_size: int = 1024,
                 graph: bool = False) -> None:
        if graph and x.device.type != "cuda":
            raise ValueError(f"a CUDA graph needs a CUDA device, not {x.device}")
        self.model, self.x, self.y = model, x, y
        self.autocast, self.batch_size, self.graph = autocast, batch_size, graph
        self.correct = torch.zeros((), device=x.device)
        self.loss = torch.zeros((), device=x.device)
        self._graph: torch.cuda.CUDAGraph | None = None
        self._calls = 0
        #: Why the capture failed and the evaluation stayed eager (None: it did not fail).
        self.fallback: str | None = None

    @property
    def captured(self) -> bool:
        return self._graph is not None

    def __call__(self) -> tuple[float, float]:
        self.model.eval()
        if self.graph and self._graph is None and self._calls >= 1:
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph):
                    self._pass(cache=False)
                self._graph = graph
            except torch.cuda.OutOfMemoryError:
                raise
            except RuntimeError as e:
                self.graph = False
                self.fallback = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
                torch.cuda.synchronize(self.x.device)
        self._calls += 1
        if self._graph is not None:
            self._graph.replay()
        else:
            self._pass(cache=True)
        return self.correct.item() / len(self.x), self.loss.item() / len(self.x)

    def _pass(self, *, cache: bool) -> None:
        evaluation_sums(self.model, self.x, self.y, self.correct, self.loss,
                        batch_size=self.batch_size, autocast=self.autocast, cache=cache)
