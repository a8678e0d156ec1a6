"""How many worker processes ``[backend] workers = "auto"`` (the default) starts.

On the CPU one process: torch already spreads a trial over every core, and two trials that
each take every core wait for each other (see ``_threads``). On a GPU a small network's trial
leaves the device mostly idle (its kernels are short and few at a time), so several trials in
worker processes share it: as many as its free memory holds at ``GPU_WORKER_GIB`` each, at
most one per CPU core (each process launches its own kernels). Measured on an H200
(benchmarks/README.md, "GPU"): an ``nb201`` trial's process peaks at 2.1-2.7 GiB reserved by
PyTorch, and 8 of them used 24.7 GiB of the GPU with their CUDA contexts (3.1 GiB each).
"""

from __future__ import annotations

from typing import Any

__all__ = ["AUTO", "GPU_WORKER_GIB", "auto_workers", "worker_count"]

AUTO = "auto"

#: GPU memory each worker is given room for: the 3.1 GiB an ``nb201`` trial's process used,
#: and headroom for larger networks and batches. A trial that still runs out of memory fails
#: with its reason and the study goes on (``train``).
GPU_WORKER_GIB = 4.0


def auto_workers(device: Any, *, free_bytes: int | None = None, cpu_cores: int | None = None
                 ) -> int:
    """The worker count for trials on ``device`` (a name or ``torch.device``; ``"auto"``
    resolves as the objectives do): 1 off CUDA; on CUDA, its free memory (``free_bytes``, read
    from the device when None) over ``GPU_WORKER_GIB``, between 1 and ``cpu_cores`` (this
    process's cores when None)."""
    import torch

    from nas_hpo.study._threads import cores
    from nas_hpo.training import resolve_device

    dev = resolve_device(device) if isinstance(device, str) else torch.device(device)
    if dev.type != "cuda":
        return 1
    if free_bytes is None:
        free_bytes, _ = torch.cuda.mem_get_info(dev)
    fits = int(free_bytes // int(GPU_WORKER_GIB * 2**30))
    return max(1, min(fits, cpu_cores if cpu_cores is not None else cores()))


def worker_count(spec: Any, objective: Any) -> int:
    """The study's worker processes: ``[backend] workers`` as given, or for ``"auto"``
    ``auto_workers`` of the objective's ``device`` (objectives without one run on the CPU),
    1 on the in-memory storage (which processes cannot share)."""
    from nas_hpo.study._storage import MEMORY

    if spec.workers != AUTO:
        return int(spec.workers)
    if spec.storage == MEMORY:
        return 1
    return auto_workers(getattr(objective, "device", "cpu"))
