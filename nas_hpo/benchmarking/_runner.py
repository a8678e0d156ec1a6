"""Running a benchmark: every (strategy, seed) run that the storage does not hold yet.

A run is a study on the ``simulated`` backend in memory, in a worker process (one torch
thread; ``[bench] processes`` of them); when it ends, its trials are written to the
benchmark's storage as the study ``bench/<name>/<strategy>/<seed>``, followed by the attribute
``bench_complete``. A run without it (interrupted while it was written) is deleted and run
again; a complete one is never run again, so a rerun computes only the missing runs.
"""

from __future__ import annotations

import multiprocessing
import time
import warnings
from collections.abc import Callable
from typing import Any

import optuna

from nas_hpo.benchmarking._spec import BenchSpec
from nas_hpo.study import open_storage

__all__ = ["COMPLETE_ATTR", "missing_runs", "open_bench_storage", "run_bench"]

COMPLETE_ATTR = "bench_complete"


def open_bench_storage(spec: BenchSpec) -> optuna.storages.BaseStorage:
    """The benchmark's storage (a SQLite file's folder is made where missing)."""
    return open_storage(spec.storage)


def missing_runs(spec: BenchSpec, storage: optuna.storages.BaseStorage
                 ) -> list[tuple[str, int]]:
    """The (strategy label, seed) runs the storage lacks; a run left incomplete is deleted."""
    complete = set()
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if not summary.study_name.startswith(f"bench/{spec.name}/"):
            continue
        if summary.user_attrs.get(COMPLETE_ATTR):
            complete.add(summary.study_name)
        else:
            optuna.delete_study(study_name=summary.study_name, storage=storage)
    return [(label, seed) for label in spec.strategies for seed in spec.seeds
            if spec.run_name(label, seed) not in complete]


def _one_run(job: tuple[BenchSpec, str, int]) -> tuple[str, int, dict[str, Any], float]:
    """One run in memory (a worker process): its study's parts, and the seconds it took."""
    import torch

    from nas_hpo import backends
    from nas_hpo.study import load_spec, prepare

    spec, label, seed = job
    torch.set_num_threads(1)
    # SMAC's models ask scikit-learn for parallel jobs, which a worker process cannot start:
    # it says so once per model fit; the run is one thread by design.
    warnings.filterwarnings("ignore", message="Loky-backed parallel loops cannot be called")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    plan = prepare(load_spec(spec.study(label, seed)))
    study = backends.executor(plan.spec.backend)(plan)
    parts = {"directions": study.directions, "user_attrs": study.user_attrs,
             "metric_names": study.metric_names, "trials": study.get_trials(deepcopy=False)}
    return label, seed, parts, time.perf_counter() - start


def _write(spec: BenchSpec, storage: optuna.storages.BaseStorage, label: str, seed: int,
           parts: dict[str, Any], seconds: float) -> None:
    study = optuna.create_study(study_name=spec.run_name(label, seed), storage=storage,
                                directions=parts["directions"])
    for key, value in parts["user_attrs"].items():
        study.set_user_attr(key, value)
    if parts["metric_names"]:
        study.set_metric_names(parts["metric_names"])
    study.add_trials(parts["trials"])
    study.set_user_attr("bench_strategy", label)
    study.set_user_attr("bench_seed", seed)
    study.set_user_attr("bench_seconds", round(seconds, 3))
    study.set_user_attr(COMPLETE_ATTR, True)


def run_bench(spec: BenchSpec, *, on_run: Callable[[str, int, float], None] | None = None
              ) -> int:
    """Run the runs the storage lacks (in ``spec.processes`` processes); returns how many."""
    storage = open_bench_storage(spec)
    jobs = [(spec, label, seed) for label, seed in missing_runs(spec, storage)]
    if not jobs:
        return 0
    if spec.processes == 1 or len(jobs) == 1:
        import torch

        before = torch.get_num_threads()
        try:
            for job in jobs:
                label, seed, parts, seconds = _one_run(job)
                _write(spec, storage, label, seed, parts, seconds)
                if on_run:
                    on_run(label, seed, seconds)
        finally:
            torch.set_num_threads(before)
        return len(jobs)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(spec.processes, len(jobs))) as pool:
        for label, seed, parts, seconds in pool.imap_unordered(_one_run, jobs):
            _write(spec, storage, label, seed, parts, seconds)
            if on_run:
                on_run(label, seed, seconds)
    return len(jobs)
