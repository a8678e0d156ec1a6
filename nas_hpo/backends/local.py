"""The ``optuna`` backend: the study's trials on this machine, in this process or in
``[backend] workers`` worker processes that share the study through its storage (``"auto"``,
the default: one on the CPU, as many as the GPU's memory holds for a CUDA objective; see
``nas_hpo.study.worker_count``).

Each process runs the study layer's lifecycle (``Lifecycle.run_one``) until the study's
``Budget`` says stop; nothing here decides what a trial is or how it is recorded. With several
workers, each gets an exact share of the remaining trials and ``cores / workers`` torch
threads (``[backend] threads`` overrides it).
"""

from __future__ import annotations

import gc
import multiprocessing
from typing import Any

import optuna

from nas_hpo.study import (
    Budget,
    Lifecycle,
    Plan,
    SpecError,
    StudyAborted,
    StudySpec,
    default_threads,
    open_study,
    prepare,
    resume,
    threads_set,
    use_threads,
    worker_count,
)

__all__ = ["execute"]


def run_trials(plan: Plan, study: optuna.Study, quota: int, *, progress: Any = None) -> None:
    """Run up to ``quota`` counted trials of ``study`` in this process."""
    shared = not isinstance(study._storage, optuna.storages.InMemoryStorage)
    budget = Budget(plan.spec, study, quota=quota, shared=shared)
    evaluator = plan.evaluator()
    evaluator.warm_up()
    # What exists before the loop (torch, the data, imported modules) lives through it: kept
    # out of the cyclic collector's scans (gc.freeze), whose full passes over that heap were
    # most of the per-trial cost of cheap samplers; unfrozen after the loop.
    frozen = gc.isenabled() and gc.get_freeze_count() == 0
    if frozen:
        gc.freeze()
    on_record = progress.update if progress is not None and progress.enabled else None
    try:
        with Lifecycle(plan, study, budget=budget, on_record=on_record) as life:
            try:
                while budget.stop_reason() is None and life.run_one(evaluator):
                    pass
            except KeyboardInterrupt:
                life.fail_interrupted()
                raise
    finally:
        if frozen:
            gc.unfreeze()
    budget.raise_if_aborted()


def _worker_main(spec: StudySpec, quota: int, verbosity: int, threads: int,
                 errors: Any) -> None:
    """One process of a ``--workers N`` run (spawned: a fresh interpreter, CUDA-safe). An
    error that stops it goes to the parent (``errors``), which raises it as its own."""
    use_threads(threads)
    optuna.logging.set_verbosity(verbosity)
    try:
        plan = prepare(spec)
        study = open_study(plan)
        run_trials(plan, study, quota)
    except (StudyAborted, SpecError) as e:
        errors.put((type(e).__name__, str(e)))
        raise SystemExit(3) from None
    except Exception as e:
        errors.put(("RuntimeError", f"{type(e).__name__}: {e}"))
        raise


def execute(plan: Plan) -> optuna.Study:
    """Run (or resume) the study of ``plan`` on this machine."""
    from nas_hpo._progress import Progress

    spec = plan.spec
    study, remaining = resume(plan)
    if remaining == 0:
        return study
    progress = Progress(spec.n_trials, study, enabled=plan.progress)
    workers = min(worker_count(spec, plan.objective), remaining)
    if workers == 1:
        try:
            with threads_set(spec.threads):
                run_trials(plan, study, remaining, progress=progress)
        finally:
            progress.close()
        return study
    return _run_workers(plan, study, remaining, workers, progress)


def _run_workers(plan: Plan, study: optuna.Study, remaining: int, workers: int,
                 progress: Any) -> optuna.Study:
    spec = plan.spec
    ctx = multiprocessing.get_context("spawn")
    threads = default_threads(workers, spec.threads)
    # Each worker runs an exact share of the remaining trials, so N workers never overshoot.
    quotas = [remaining // workers + (i < remaining % workers) for i in range(workers)]
    verbosity = optuna.logging.get_verbosity()
    errors = ctx.SimpleQueue()
    procs = [ctx.Process(target=_worker_main, args=(spec, q, verbosity, threads, errors),
                         name=f"nas-hpo-worker-{i}") for i, q in enumerate(quotas)]
    for p in procs:
        p.start()
    try:
        while alive := [p for p in procs if p.is_alive()]:
            alive[0].join(timeout=2.0)
            progress.poll()
    except KeyboardInterrupt:
        # Workers share the terminal's process group and got the SIGINT too; each fails its
        # running trial with a reason. Wait for them so that nothing is left RUNNING.
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
        raise
    finally:
        progress.poll()
        progress.close()
    if not errors.empty():
        kind, message = errors.get()
        raise {"StudyAborted": StudyAborted, "SpecError": SpecError}.get(kind, RuntimeError)(
            message)
    bad = [(p.name, p.exitcode) for p in procs if p.exitcode != 0]
    if bad:
        raise RuntimeError(
            "worker process(es) ended with an error: "
            + ", ".join(f"{name} (exit code {code})" for name, code in bad)
            + "; their finished trials are in the storage, their messages above"
        )
    return optuna.load_study(study_name=spec.study_name, storage=study._storage)
