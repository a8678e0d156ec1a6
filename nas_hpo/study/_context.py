"""What a trial evaluated where the study is needs: its context (reports go to the trial and
the strategy's pruner) and Optuna's heartbeat while it runs."""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any

import optuna

from nas_hpo._objective import Context, TrialFailure

if TYPE_CHECKING:
    from nas_hpo.study._lifecycle import Proposal

__all__ = ["Heartbeat", "OptunaContext", "heartbeat_interval"]


class OptunaContext(Context):
    """The context of a trial evaluated where the study is: reports go to ``trial.report`` and
    the strategy's pruner; attributes are written to the trial at once."""

    def __init__(self, proposal: Proposal) -> None:
        super().__init__(proposal.seed, proposal.fidelity, proposal.population)
        assert proposal.trial is not None
        self.trial = proposal.trial

    def report(self, value: float, step: int) -> None:
        super().report(value, step)
        if not math.isfinite(value):
            raise TrialFailure(f"intermediate value {value} at step {step} is not finite")
        self.trial.report(float(value), step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} with value {value:.4g}")

    def set_attr(self, key: str, value: Any) -> None:
        super().set_attr(key, value)
        self.trial.set_user_attr(key, value)


def heartbeat_interval(study: optuna.Study) -> int | None:
    from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled

    storage = study._storage
    if isinstance(storage, BaseHeartbeat) and is_heartbeat_enabled(storage):
        return storage.get_heartbeat_interval()
    return None


class Heartbeat:
    """Optuna's heartbeat of a running trial (what ``Study.optimize`` runs): the storage
    hears from the trial every ``interval`` seconds, so that a lost worker's trial is failed
    once its heartbeat is stale."""

    def __init__(self, study: optuna.Study, trial_id: int, interval: int | None) -> None:
        self.storage, self.trial_id, self.interval = study._storage, trial_id, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while True:
            self.storage.record_heartbeat(self.trial_id)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> Heartbeat:
        if self.interval:
            self._thread = threading.Thread(target=self._beat, daemon=True,
                                            name="nas-hpo-heartbeat")
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

