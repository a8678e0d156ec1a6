"""The budget of a study: how many trials, how long, how many epochs, how much simulated
time, how many failures.

Every backend asks the same ``Budget`` before it starts a trial, so a study stops for the same
reasons wherever it runs: the study holds ``n_trials`` counted trials (its own, other
processes' and other runs'; forbidden draws are not counted), this run's share of them is
done, the ``timeout_s`` of this run is over, the trials spent ``max_epochs`` epochs or
``max_cost`` simulated seconds (the simulated clock, or else their ``simulated_cost``), or the
objective is broken (``max_failures`` failed trials in the study, ``max_failures_in_a_row``
in a row in this process). Trials running when it stops finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import optuna

from nas_hpo.study._internals import FINISHED, counted
from nas_hpo.study._spec import StudySpec

__all__ = ["Budget", "StudyAborted", "cost_spent", "epochs_spent"]


class StudyAborted(RuntimeError):
    """The study was stopped before its budget was spent (a broken objective); the message
    names the limit and the last failure's reason."""


def epochs_spent(study: optuna.Study) -> int:
    """Training epochs the study's finished trials spent: one per intermediate value (the
    ``train`` objective reports once per epoch), so pruned and failed trials count what they
    trained before they stopped."""
    return sum(len(t.intermediate_values) for t in study.get_trials(deepcopy=False,
                                                                      states=FINISHED))


def cost_spent(study: optuna.Study) -> float:
    """Simulated seconds the study's finished trials cost (their ``simulated_cost``)."""
    total = 0.0
    for t in study.get_trials(deepcopy=False, states=FINISHED):
        value = t.user_attrs.get("simulated_cost")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total += float(value)
    return total


class Budget:
    """What is left of a study's budget for this process. ``quota``: the trials this process
    may add (None: up to ``n_trials`` in the study); ``shared``: other processes may add
    trials too, so the study is counted in the storage before each trial; ``clock``: the
    simulated time, where a simulated clock runs the study."""

    def __init__(self, spec: StudySpec, study: optuna.Study, *, quota: int | None = None,
                 shared: bool = True, clock: Callable[[], float] | None = None) -> None:
        self.spec, self.study, self.shared = spec, study, shared
        #: The simulated clock where one runs (``max_cost`` is then its time).
        self.clock = clock
        self.quota = quota
        self.started = 0
        self.deadline = None if spec.timeout_s is None else time.monotonic() + spec.timeout_s
        self.in_a_row = 0
        self.aborted: str | None = None
        self._last_reason: str | None = None
        # Counted trials of the study at the last look, and those this process started
        # since the first look: more in the study means other processes add trials too.
        self._first_count: int | None = None
        self._last_count: int | None = None
        #: Trials of the study not counted against ``n_trials`` (a Ray driver's lost ones).
        self.excused = 0

    def stop_reason(self) -> str | None:
        """Why no further trial may start (None: one may, if the study has room for it:
        ``study_full``, checked when the trial is reserved)."""
        if self.aborted is not None:
            return self.aborted
        if self.quota is not None and self.started >= self.quota:
            return "this run's share of n_trials is done"
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return f"timeout_s ({self.spec.timeout_s:g} s) is over"
        if self.spec.max_epochs is not None and epochs_spent(self.study) >= self.spec.max_epochs:
            return f"max_epochs ({self.spec.max_epochs}) spent"
        if self.spec.max_cost is not None:
            spent = self.clock() if self.clock is not None else cost_spent(self.study)
            if spent >= self.spec.max_cost:
                return f"max_cost ({self.spec.max_cost:g} simulated seconds) spent"
        return None

    def study_full(self) -> bool:
        """Whether the study holds ``n_trials`` counted trials, its own, other processes' and
        other runs' (asked under the study's reservation lock, before a trial is created).
        A study only this process adds to (in memory) is bounded by the quota instead."""
        if not (self.shared or self.quota is None):
            return False
        n = counted(self.study)
        if self._first_count is None:
            self._first_count = n - self.started
        self._last_count = n
        return n - self.excused >= self.spec.n_trials

    def others_active(self) -> bool:
        """Whether other processes added trials to the study since this one first looked
        (answered by the count ``stop_reason`` takes before each trial)."""
        if self._first_count is None or self._last_count is None:
            return False
        return self._last_count > self._first_count + self.started

    def started_one(self) -> None:
        self.started += 1

    def finished_one(self, state: optuna.trial.TrialState, reason: str | None = None) -> None:
        """Count a trial's outcome; a broken objective trips ``max_failures`` /
        ``max_failures_in_a_row`` (see ``aborted``)."""
        if state != optuna.trial.TrialState.FAIL:
            self.in_a_row = 0
            return
        self.in_a_row += 1
        self._last_reason = reason
        spec = self.spec
        if spec.max_failures_in_a_row is not None and self.in_a_row >= spec.max_failures_in_a_row:
            self._abort(f"{self.in_a_row} trials in a row failed ([budget] "
                        f"max_failures_in_a_row = {spec.max_failures_in_a_row})")
        elif spec.max_failures is not None:
            failed = len(self.study.get_trials(deepcopy=False,
                                               states=(optuna.trial.TrialState.FAIL,)))
            if failed >= spec.max_failures:
                self._abort(f"the study holds {failed} failed trials ([budget] max_failures = "
                            f"{spec.max_failures})")

    def _abort(self, why: str) -> None:
        self.aborted = f"{why}; the last failure: {self._last_reason}"

    def raise_if_aborted(self) -> None:
        if self.aborted is not None:
            raise StudyAborted(f"{self.spec.source}: study {self.spec.study_name!r} stopped: "
                               f"{self.aborted}")
