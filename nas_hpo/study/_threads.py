"""The thread budget: how many torch threads each trial gets.

Two trials that each run torch on every core of a 2-core machine wait for each other's threads
at every operation: 6 small ``nb201`` trainings on 2 workers took a median 74 s with 2 threads
each, 11.3 s with one (``benchmarks/threads.py`` measures it). By default each trial gets the
cores of the machine (its CPU affinity) over the trials that run at once, at least one;
``[backend] threads`` sets it. In a process of its own (a worker, a Ray trial) the count is
also put into ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` for libraries that read those.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["cores", "default_threads", "threads_set", "use_threads"]


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads(concurrent: int, threads: int | None = None) -> int:
    """``threads`` if set, else the cores over ``concurrent`` trials, at least 1."""
    if threads is not None:
        return threads
    return max(1, cores() // max(1, concurrent))


def use_threads(n: int, *, environment: bool = True) -> int:
    """Give torch ``n`` threads in this process (and, with ``environment``, the usual
    variables, for libraries started later); returns the number torch had before."""
    if environment:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(n)
    import torch

    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    return before


@contextlib.contextmanager
def threads_set(n: int | None) -> Iterator[None]:
    """Torch runs with ``n`` threads in this process inside the block (``None``: as it is),
    and with what it had before after it: a study run in this process (``[backend]
    threads``)."""
    before = use_threads(n, environment=False) if n else None
    try:
        yield
    finally:
        if before is not None:
            use_threads(before, environment=False)
