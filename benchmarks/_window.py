"""Throughput of N concurrent worker processes over a fixed window (for the benchmarks'
``--workers``): each spawned process sets itself up, runs one unit of work untimed, waits
for the others, then counts the units it finishes inside ``seconds``. On a GPU it also says
how much of the GPU's memory was in use mid-window and the largest per-process peak."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from typing import Any

import torch


def _worker(make: Callable[[Any], Callable[[int], object]], job: Any, device: str,
            seconds: float, ready: Any, results: Any) -> None:
    one = make(job)
    one(0)  # warm-up, not counted
    ready.wait(timeout=300)
    until = time.perf_counter() + seconds
    done = 0
    while True:
        one(done)
        if time.perf_counter() > until:  # (a unit that ends after the window is not counted)
            break
        done += 1
    peak = torch.cuda.max_memory_reserved() / 2**30 if device.startswith("cuda") else 0.0
    results.put((done, peak))


def per_second(make: Callable[[Any], Callable[[int], object]], job: Any, device: torch.device,
               workers: int, seconds: float) -> tuple[float, str]:
    """Units per second of ``workers`` processes, each running ``make(job)(i)`` for
    i = 0, 1, ... (``make`` at module level, picklable; it sets the process up), and a line
    on the GPU memory in use ("" on the CPU)."""
    ctx = mp.get_context("spawn")
    # The window opens when every process has imported, set up and run one unit.
    ready, results = ctx.Barrier(workers + 1), ctx.Queue()
    args = (make, job, str(device), seconds, ready, results)
    procs = [ctx.Process(target=_worker, args=args) for _ in range(workers)]
    for proc in procs:
        proc.start()
    ready.wait(timeout=300)  # (a worker that died breaks the barrier: no hang)
    used = ""
    if device.type == "cuda":
        time.sleep(seconds / 2)
        free, total = torch.cuda.mem_get_info(device)
        used = f"GPU memory in use mid-window {(total - free) / 2**30:.1f} of {total / 2**30:.0f} GiB"
    counts = [results.get(timeout=seconds + 300) for _ in procs]
    for proc in procs:
        proc.join()
    if device.type == "cuda":
        used += f", PyTorch's peak per process {max(p for _, p in counts):.2f} GiB"
    return sum(n for n, _ in counts) / seconds, used
