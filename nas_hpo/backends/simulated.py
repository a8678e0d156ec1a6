"""The ``simulated`` backend: a study on a simulated clock, as Syne Tune's simulator backend
runs one — for objectives answered from a table, whose evaluations take milliseconds but stand
for trainings of minutes.

``[backend] workers`` simulated workers run trials asynchronously. An evaluation says what it
costs through ``Context.spend`` (the ``tabular`` objective spends each epoch's training time
from the table before it reports that epoch); it then waits until the clock has moved on by
that much, while the other workers' trials run up to the same moment. So results and
intermediate values reach the study in simulated-time order, and a pruner (Optuna's median or
successive halving, Hyperband, ``lce``) decides on an epoch at the moment it would have been
reported, seeing what the other trials had reported by then. A worker that finishes proposes
its next trial at once, from what the study knows at that moment. An objective that never
spends is charged the wall time its evaluation took.

Each trial records ``sim_start`` and ``sim_end`` (simulated seconds from the study's start on
this clock; a resumed study continues from its latest ``sim_end``). ``[budget] max_cost`` is
the simulated time after which no trial starts; ``n_trials`` bounds the count as everywhere.
Ties are broken by trial number, so a run is deterministic.

Only one evaluation runs at any moment: each trial's evaluation is a thread that the clock
resumes when its time comes, through the same ``Lifecycle.evaluate_here`` and ``record`` as
every other backend.
"""

from __future__ import annotations

import heapq
import threading
import time

import optuna

from nas_hpo.study import (
    FINISHED,
    Budget,
    Evaluator,
    Lifecycle,
    OptunaContext,
    Outcome,
    Plan,
    Proposal,
    resume,
    threads_set,
)

__all__ = ["SimulatedClock", "execute"]

_SCHEDULER = None  # who holds the baton when no trial runs


class _Task:
    """One trial being evaluated on a simulated worker."""

    def __init__(self, proposal: Proposal, start: float) -> None:
        self.proposal, self.start = proposal, start
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None
        self.done = False
        self.thread: threading.Thread | None = None


class _ClockContext(OptunaContext):
    """A trial's context on the simulated clock: ``spend`` waits for the clock."""

    def __init__(self, proposal: Proposal, clock: SimulatedClock, task: _Task) -> None:
        super().__init__(proposal)
        self._clock, self._task = clock, task

    def spend(self, seconds: float) -> None:
        super().spend(seconds)
        self._clock.sleep(self._task, float(seconds))


class SimulatedClock:
    """The clock and the baton: exactly one of the scheduler and the trials' threads runs."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._events: list[tuple[float, int, int, _Task]] = []
        self._seq = 0
        self._cond = threading.Condition()
        self._holder: _Task | None = _SCHEDULER

    # --- called by a trial's thread
    def sleep(self, task: _Task, seconds: float) -> None:
        """Hand the baton back until the clock reaches now + ``seconds``."""
        self._push(self.now + seconds, task)
        with self._cond:
            self._holder = _SCHEDULER
            self._cond.notify_all()
            while self._holder is not task:
                self._cond.wait()

    def _wait_turn(self, task: _Task) -> None:
        with self._cond:
            while self._holder is not task:
                self._cond.wait()

    def _done(self) -> None:
        with self._cond:
            self._holder = _SCHEDULER
            self._cond.notify_all()

    # --- called by the scheduler
    def _push(self, at: float, task: _Task) -> None:
        self._seq += 1
        heapq.heappush(self._events, (at, task.proposal.number, self._seq, task))

    def resume(self, task: _Task) -> None:
        """Let ``task`` run until it sleeps again or ends."""
        with self._cond:
            self._holder = task
            self._cond.notify_all()
            while self._holder is not _SCHEDULER:
                self._cond.wait()

    def next_event(self) -> _Task:
        at, _, _, task = heapq.heappop(self._events)
        self.now = max(self.now, at)
        return task


def _resume_time(study: optuna.Study) -> float:
    """Where a resumed study's clock starts: the latest ``sim_end`` of its trials."""
    ends = [t.user_attrs.get("sim_end") for t in study.get_trials(deepcopy=False,
                                                                   states=FINISHED)]
    return max((float(e) for e in ends if isinstance(e, (int, float))), default=0.0)


def run_simulated(plan: Plan, study: optuna.Study, evaluator: Evaluator, quota: int) -> float:
    """Run up to ``quota`` more trials of the study on a simulated clock; returns the clock's
    end time."""
    spec = plan.spec
    clock = SimulatedClock(_resume_time(study))
    shared = not isinstance(study._storage, optuna.storages.InMemoryStorage)
    budget = Budget(spec, study, quota=quota, shared=shared, clock=lambda: clock.now)
    running: dict[int, _Task] = {}
    evaluator.warm_up()

    def body(life: Lifecycle, task: _Task) -> None:
        clock._wait_turn(task)
        try:
            wall = time.perf_counter()
            ctx = _ClockContext(task.proposal, clock, task)
            task.outcome = life.evaluate_here(task.proposal, evaluator, ctx)
            if ctx.spent == 0:  # an objective that never said its cost: its wall time
                clock.sleep(task, time.perf_counter() - wall)
        except BaseException as e:  # noqa: BLE001 - re-raised by the scheduler
            task.error = e
        finally:
            task.done = True
            clock._done()

    def finish(life: Lifecycle, task: _Task) -> None:
        running.pop(task.proposal.number, None)
        if task.thread is not None:
            task.thread.join()
        if task.error is not None:
            raise task.error
        assert task.outcome is not None
        task.outcome.attrs.update({"sim_start": task.start, "sim_end": clock.now})
        life.record(task.proposal, task.outcome)

    with Lifecycle(plan, study, budget=budget) as life:
        try:
            while True:
                while (len(running) < spec.workers and budget.stop_reason() is None):
                    proposal = life.propose()
                    if proposal is None:
                        break
                    if not proposal.to_evaluate:
                        continue
                    task = _Task(proposal, clock.now)
                    task.thread = threading.Thread(target=body, args=(life, task), daemon=True,
                                                   name=f"nas-hpo-sim-{proposal.number}")
                    running[proposal.number] = task
                    task.thread.start()
                    clock.resume(task)
                    if task.done:
                        finish(life, task)
                if not running:
                    break
                task = clock.next_event()
                clock.resume(task)
                if task.done:
                    finish(life, task)
        except KeyboardInterrupt:
            life.fail_interrupted()
            raise
    budget.raise_if_aborted()
    return clock.now


def execute(plan: Plan) -> optuna.Study:
    """Run (or resume) the study of ``plan`` on a simulated clock in this process."""
    study, remaining = resume(plan, gone="run")
    if remaining == 0:
        return study
    with threads_set(plan.spec.threads):
        end = run_simulated(plan, study, plan.evaluator(), remaining)
    study.set_user_attr("sim_time", end)
    return study

