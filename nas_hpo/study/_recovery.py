"""Which process runs a trial, and the recovery of trials whose process died.

Every trial records which process runs it (``nas_hpo:worker``: host, pid and the process's
start time); when a study is opened, RUNNING trials whose process on this host is gone (a
``kill -9``, a crash, a closed laptop) are failed at once with a ``fail_reason``, whatever the
storage (journal files have no heartbeat in Optuna). Trials of other machines are failed once
their Optuna heartbeat is older than its grace period.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable
from typing import Any

import optuna

__all__ = ["WORKER_ATTR", "fail_trial", "process_gone", "recover_stale", "worker_id"]

WORKER_ATTR = "nas_hpo:worker"


def worker_id() -> str:
    """``host:pid:start_time`` of this process: enough to tell, later, that it is gone."""
    return _worker_id(os.getpid())


@functools.lru_cache(maxsize=8)  # per pid: a forked child gets its own
def _worker_id(pid: int) -> str:
    import psutil

    return f"{socket.gethostname()}:{pid}:{psutil.Process(pid).create_time():.3f}"


def _alive(worker: str) -> bool | None:
    """Whether the process of ``worker`` still runs: ``None`` when it ran on another host."""
    import psutil

    host, _, rest = worker.partition(":")
    if host != socket.gethostname():
        return None
    pid_text, _, started = rest.partition(":")
    try:
        proc = psutil.Process(int(pid_text))
        if proc.status() == psutil.STATUS_ZOMBIE:  # killed, not yet reaped by its parent
            return False
        return abs(proc.create_time() - float(started)) < 0.01  # pid reused by another process?
    except (psutil.NoSuchProcess, psutil.ZombieProcess, ValueError):
        return False


def process_gone(worker: str) -> bool:
    """Whether the process ``worker`` (a ``worker_id``) ran on this host and is gone."""
    return _alive(worker) is False


def fail_trial(
    storage: optuna.storages.BaseStorage,
    trial: optuna.trial.FrozenTrial,
    reason: str,
    describe: Callable[[optuna.trial.FrozenTrial], dict[str, Any]] | None = None,
) -> bool:
    """Fail a RUNNING trial with a ``fail_reason`` and what ``describe(trial)`` knows of it
    (only the attributes it lacks); False where it had finished meanwhile (another worker
    recovered it first)."""
    from optuna.trial import TrialState

    try:
        try:
            known = describe(trial) if describe else {}
        except Exception:  # what it could not say is missing; the trial still fails
            known = {}
        for key, value in known.items():
            if key not in trial.user_attrs:
                storage.set_trial_user_attr(trial._trial_id, key, value)
        storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
        return bool(storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL))
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def recover_stale(
    study: optuna.Study,
    describe: Callable[[optuna.trial.FrozenTrial], dict[str, Any]] | None = None,
) -> list[int]:
    """Fail the RUNNING trials of ``study`` whose worker is gone, each with a ``fail_reason``;
    returns their numbers. Trials of live workers (other processes of a ``--workers`` run,
    other machines with a fresh heartbeat) are left alone. ``describe(trial)``: user
    attributes to give a failed trial where it lacks them (the engine's seed and ``arch``,
    which it writes when a trial ends: a killed process never did)."""
    from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
    from optuna.trial import TrialState

    storage = study._storage
    stale: dict[int, str] = {}
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in running:
        worker = t.system_attrs.get(WORKER_ATTR)
        if worker and _alive(worker) is False:
            stale[t._trial_id] = (f"worker process {worker.split(':')[1]} on "
                                  f"{worker.split(':')[0]} died while the trial ran")
    if isinstance(storage, BaseHeartbeat) and is_heartbeat_enabled(storage):
        # Optuna's own fail_stale_trials gives no reason; this is the same test (heartbeat
        # older than the grace period) through the interface Optuna's function uses.
        grace = storage.get_heartbeat_interval() or 0
        for trial_id in storage._get_stale_trial_ids(study._study_id):
            stale.setdefault(trial_id, f"no heartbeat from its worker for over {2 * grace} s "
                                       "(worker lost)")
    failed = []
    by_id = {t._trial_id: t for t in running}
    for trial_id, reason in stale.items():
        trial = by_id.get(trial_id) or storage.get_trial(trial_id)
        if fail_trial(storage, trial, reason, describe):
            failed.append(trial.number)
    return sorted(failed)
