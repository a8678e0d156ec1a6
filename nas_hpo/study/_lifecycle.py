"""The trial lifecycle: ask the strategy → a config of the active parameters → forbidden or
duplicate → evaluate → record. Every backend runs this one path; none re-implements a step.

``Lifecycle.propose`` (where the study is) asks Optuna for a trial, stamps its worker and
seed, draws the config through the space (``SearchSpace.suggest``), records a forbidden draw
(PRUNED, its clause, not counted, drawn again; a strategy that cannot see the clauses gets the
nearest valid config next) and answers a repeat of an evaluated architecture from the record.
What is left is evaluated by an ``Evaluator`` wherever the backend runs it, and
``Lifecycle.record`` turns its ``Outcome`` into the trial's final state with every attribute.
``Lifecycle.run_one`` is the three together in this process.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from nas_hpo import strategies
from nas_hpo.space import (
    MAX_FORBIDDEN_DRAWS,
    ForbiddenConfigurationError,
    forbidden_streak_error,
)
from nas_hpo.study._budget import Budget
from nas_hpo.study._context import Heartbeat, OptunaContext, heartbeat_interval
from nas_hpo.study._dedupe import OWN_ATTRS, Answer, ArchRecord, answer_attrs, fidelity_key
from nas_hpo.study._evaluate import FAIL, INTERRUPTED, Evaluator, Outcome
from nas_hpo.study._internals import AttrWriter, stamp_new_trials, tell
from nas_hpo.study._open import describer
from nas_hpo.study._plan import Plan
from nas_hpo.study._recovery import WORKER_ATTR, fail_trial, recover_stale, worker_id
from nas_hpo.study._reserve import reservation
from nas_hpo.study._seeds import FirstTrialSeeded, trial_seed

__all__ = ["Lifecycle", "Proposal"]

_log = logging.getLogger("nas_hpo")
try:  # where Optuna keeps a trial's constraints (optuna 3.x-5.x)
    from optuna.study._constrained_optimization import _CONSTRAINTS_KEY
except ImportError:  # pragma: no cover
    _CONSTRAINTS_KEY = "constraints"


#: Per-trial lines in Optuna's own logger tree: Optuna's handler and verbosity apply (``-q``).
_trials_log = optuna.logging.get_logger("optuna.nas_hpo")


@dataclass
class Proposal:
    """A trial asked for and drawn: its config, seed and fidelity, and the study's population
    as the objective reads it; ``duplicate_of`` when it was answered from the record.
    ``trial`` is Optuna's trial object where this process asked for it (a Ray sweep restored
    after its driver died knows only ``trial_id`` and ``number``)."""

    trial_id: int
    number: int
    config: dict[str, Any]
    seed: int
    fidelity: dict[str, Any] | None = None
    arch: str = ""
    population: list[dict[str, Any]] = field(default_factory=list)
    duplicate_of: int | None = None
    #: The trial evaluating the same architecture right now: this one waits for its outcome
    #: (recorded with it, as a repeat) and is not evaluated.
    waits_for: int | None = None
    trial: optuna.trial.Trial | None = field(default=None, repr=False, compare=False)

    #: Recorded already, without an evaluation (an enqueued config the space refuses).
    rejected: bool = False

    @property
    def to_evaluate(self) -> bool:
        """Whether a backend must evaluate it (not a repeat answered now or later, not a
        rejected enqueued config)."""
        return self.duplicate_of is None and self.waits_for is None and not self.rejected

    def plain(self) -> dict[str, Any]:
        """What a checkpoint keeps of it (everything but the trial object)."""
        return {"trial_id": self.trial_id, "number": self.number, "config": self.config,
                "seed": self.seed, "fidelity": self.fidelity, "arch": self.arch}


class Lifecycle:
    """The lifecycle of the trials one process adds to ``study`` (a context manager: it
    installs its storage shortcuts and the first-trial seeding of the strategy, and takes
    them away when it ends). ``on_record(state, forbidden)`` is called after every trial it
    records (the progress line)."""

    def __init__(self, plan: Plan, study: optuna.Study, *, budget: Budget,
                 on_record: Callable[[optuna.trial.TrialState, bool], None] | None = None
                 ) -> None:
        self.plan, self.study, self.budget = plan, study, budget
        self.spec = plan.spec
        self.on_record = on_record
        self.me = worker_id()
        self.in_memory = type(study._storage) is optuna.storages.InMemoryStorage
        self.record_index = ArchRecord(study)
        # This process's trials being evaluated, by (architecture, fidelity), and the repeats
        # proposed meanwhile that wait for their outcome (a Ray driver runs several at once).
        self._flying: dict[tuple[str, str], int] = {}
        self._waiting: dict[tuple[str, str], list[Proposal]] = {}
        self.streak = 0
        self.forbidden = 0
        self._rng = np.random.default_rng([plan.spec.seed, 0xF0B1])
        self.multi_fidelity = plan.strategy.multi_fidelity
        self.population_keys = tuple(plan.objective.population_attrs)
        self._heartbeat = heartbeat_interval(study)
        self._reservation = reservation(study, plan.spec.storage)
        self._writer: AttrWriter | None = None
        self._undo_stamp: Callable[[], None] = lambda: None
        self._sampler: FirstTrialSeeded | None = None
        self._prepared = False  # the strategy's before_study has run (first propose)

    # ------------------------------------------------------------------ set-up

    def __enter__(self) -> Lifecycle:
        study = self.study
        self._writer = AttrWriter(study)
        if not self.in_memory:  # nothing else can see an in-memory study's trials
            self._undo_stamp = stamp_new_trials(study, self.me)
        self._sampler = FirstTrialSeeded(
            self.plan.strategy.sampler,
            lambda seed: self.plan.strategy_with_seed(seed).sampler, self.spec.seed)
        study.sampler = self._sampler
        study.pruner = self.plan.strategy.pruner
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._undo_stamp()
        self._undo_stamp = lambda: None
        if self._sampler is not None:
            self.study.sampler = self._sampler.inner
            self._sampler = None

    @property
    def sampler(self) -> optuna.samplers.BaseSampler:
        """The sampler this process's trials are drawn with (Ray's searcher asks it)."""
        return self._sampler if self._sampler is not None else self.study.sampler

    # ------------------------------------------------------------------ propose

    def _ask(self) -> optuna.trial.Trial | None:
        """A new trial, or None when the study has no room left (checked and created under
        the study's reservation lock: joined runs stop at exactly ``n_trials``)."""
        if self._heartbeat:
            recover_stale(self.study, describer(self.plan))
        with self._reservation():
            if self.budget.study_full():
                return None
            if self._heartbeat:
                with warnings.catch_warnings():
                    # Optuna warns that heartbeats are meant for Study.optimize; this lifecycle
                    # beats the heart itself (``evaluate_here``) and fails stale trials above.
                    warnings.simplefilter("ignore", UserWarning)
                    trial = self.study.ask()
            else:
                trial = self.study.ask()
        if not self.in_memory:
            # Which process runs the trial, so that a later run can tell it died
            # (recover_stale); created trials carry it already, queued ones do not.
            created = getattr(trial, "_cached_frozen_trial", None)
            if created is None or created.system_attrs.get(WORKER_ATTR) != self.me:
                self.study._storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR,
                                                          self.me)
        return trial

    def put(self, trial_id: int, key: str, value: Any) -> None:
        """A user attribute of the trial ``trial_id``, written with its final state."""
        assert self._writer is not None, "use the Lifecycle as a context manager"
        self._writer.put(trial_id, key, value)

    def propose(self) -> Proposal | None:
        """The next trial to evaluate, or an answered repeat (``duplicate_of`` set): both count
        towards ``n_trials``; None when the study holds ``n_trials`` trials. Forbidden draws
        in between are recorded and not counted."""
        space = self.plan.space
        if not self._prepared:
            self._prepared = True
            hook = self.plan.strategy.before_study
            if hook is not None:
                # Under the study's reservation: of the processes joining the study, one does
                # the work (a search) while the others wait, then find it done.
                with self._reservation():
                    hook(self.study)
        while True:
            trial = self._ask()
            if trial is None:
                return None
            tid = trial._trial_id
            seed = trial_seed(self.spec.seed, trial.number)
            self.put(tid, "seed", seed)
            fixed = _fixed_params(trial)
            try:
                if fixed:  # enqueued (a warm start, a user's enqueue_trial): Optuna keeps a
                    with warnings.catch_warnings():  # fixed value outside its range, warning
                        warnings.simplefilter("ignore", UserWarning)
                        config = space.suggest(trial)
                    space.validate(config)
                else:
                    config = space.suggest(trial)
            except ForbiddenConfigurationError:
                self._forbidden(trial)
                continue
            except ValueError as e:
                if not fixed:
                    raise
                return self._reject(trial, seed, fixed, e)
            self.streak = 0
            arch = space.arch_key(config)
            self.put(tid, "arch", arch)
            fidelity = None
            if self.multi_fidelity:  # the sampler chose it (e.g. {"epochs": 3})
                fidelity = self.study._storage.get_trial_system_attrs(
                    trial._trial_id).get(strategies.FIDELITY_ATTR)
                if fidelity:
                    self.put(tid, "budget", fidelity)
            proposal = Proposal(tid, trial.number, config, seed, fidelity or None, arch,
                                trial=trial)
            key = (arch, fidelity_key(proposal.fidelity))
            if not self.spec.reevaluate:
                original = self.record_index.find(arch, proposal.fidelity,
                                                   others=self.budget.others_active())
                if original is not None:
                    self._answer(proposal, original)
                    return proposal
                if key in self._flying:  # being evaluated: take that evaluation's outcome
                    proposal.waits_for = self._flying[key]
                    self._waiting.setdefault(key, []).append(proposal)
                    self.budget.started_one()
                    return proposal
            self._flying[key] = proposal.number
            if self.population_keys:
                proposal.population = self.population()
            self.budget.started_one()
            return proposal

    def _reject(self, trial: optuna.trial.Trial, seed: int, fixed: dict[str, Any],
                error: ValueError) -> Proposal:
        """An enqueued config the space refuses: a failed trial with the reason, counted,
        never evaluated; the study goes on."""
        proposal = Proposal(trial._trial_id, trial.number, dict(fixed), seed, trial=trial,
                            rejected=True)
        self.budget.started_one()
        self.record(proposal, Outcome(FAIL, reason=f"the enqueued configuration {fixed} is "
                                      f"not one of the space: {error}"))
        return proposal

    def population(self) -> list[dict[str, Any]]:
        """The ``population_attrs`` of the study's complete trials that have all of them."""
        keys = self.population_keys
        trials = self.study.get_trials(deepcopy=False,
                                       states=(optuna.trial.TrialState.COMPLETE,))
        return [{k: t.user_attrs[k] for k in keys} for t in trials
                if all(k in t.user_attrs for k in keys)]

    def _forbidden(self, trial: optuna.trial.Trial) -> None:
        """A draw that hit a forbidden clause: PRUNED with the clause (``suggest`` set it),
        not counted; a strategy that cannot see the clauses gets the nearest valid config
        as its next trial."""
        self._tell(trial._trial_id, trial, optuna.trial.TrialState.PRUNED, None)
        self.forbidden += 1
        self.streak += 1
        if self.on_record is not None:
            self.on_record(optuna.trial.TrialState.PRUNED, True)
        if self.streak >= MAX_FORBIDDEN_DRAWS:
            raise forbidden_streak_error(self.plan.space, self.streak)
        if self.plan.strategy.repair_forbidden:
            params = self.study._storage.get_trial(trial._trial_id).params
            repaired = self.plan.space.repair(params, self._rng)
            self.study.enqueue_trial(repaired, user_attrs={"repaired_from": trial.number})

    def _answer(self, proposal: Proposal, original: Answer) -> None:
        """Record ``proposal`` with the values and measurements of ``original``."""
        attrs = answer_attrs(original)
        proposal.duplicate_of = attrs["duplicate_of"]
        self.budget.started_one()
        self.record(proposal, Outcome("COMPLETE", tuple(original.values), attrs))

    # ------------------------------------------------------------------ evaluate, record

    def evaluate_here(self, proposal: Proposal, evaluator: Evaluator,
                      context: OptunaContext | None = None) -> Outcome:
        """Evaluate ``proposal`` in this process, its reports going to the pruner (``context``:
        a backend's own kind of it, e.g. the simulated clock's). A Ctrl-C records the trial as
        interrupted, with what it had measured, and goes through."""
        attrs: dict[str, Any] = {}
        ctx = OptunaContext(proposal) if context is None else context
        with Heartbeat(self.study, proposal.trial_id, self._heartbeat):
            try:
                return evaluator.evaluate(proposal.config, ctx, attrs)
            except KeyboardInterrupt:
                self.record(proposal, Outcome(FAIL, attrs=attrs, reason=INTERRUPTED))
                raise

    def record(self, proposal: Proposal, outcome: Outcome) -> None:
        """The trial's final state, values and attributes, in one write where the storage
        allows; a failure is logged as one line (its traceback stays on the trial)."""
        attrs = dict(outcome.attrs)
        if outcome.state == FAIL:
            attrs["fail_reason"] = outcome.reason or "failed"
            if outcome.traceback:
                attrs["fail_traceback"] = outcome.traceback
        for key, value in attrs.items():
            self.put(proposal.trial_id, key, value)
        constraints = self.plan.strategy.constraints
        if constraints:
            # Optuna's trial constraints (feasible when <= 0) from bounds on what the trial
            # recorded; a trial without the attribute cannot be shown feasible.
            for key, bound in constraints.items():
                value = attrs.get(key)
                value = math.inf if value is None else float(value) - float(bound)
                self.study._storage.set_trial_system_attr(
                    proposal.trial_id, f"{_CONSTRAINTS_KEY}:{key}", value)
        state = outcome.trial_state
        values = list(outcome.values) if outcome.values is not None else None
        self._tell(proposal.trial_id, proposal.trial or proposal.number, state, values)
        if proposal.duplicate_of is None and not proposal.rejected:
            arch = proposal.arch or self.plan.space.arch_key(proposal.config)
            if state == optuna.trial.TrialState.COMPLETE:
                self.record_index.add(arch, proposal.fidelity, proposal.number,
                                      outcome.values or (), attrs)
            key = (arch, fidelity_key(proposal.fidelity))
            if self._flying.get(key) == proposal.number:
                del self._flying[key]
            for waiting in self._waiting.pop(key, []):
                waiting.duplicate_of, waiting.waits_for = proposal.number, None
                self.record(waiting, Outcome(outcome.state, outcome.values, {
                    **{k: v for k, v in attrs.items() if k not in OWN_ATTRS},
                    "duplicate_of": proposal.number}, outcome.reason, outcome.traceback))
        self._log(proposal, outcome)
        self.budget.finished_one(state, attrs.get("fail_reason"))
        if self.on_record is not None:
            self.on_record(state, False)

    def _tell(self, trial_id: int, trial: optuna.trial.Trial | int,
              state: optuna.trial.TrialState, values: list[float] | None) -> None:
        assert self._writer is not None
        self._writer.before_tell(trial_id, trial if not isinstance(trial, int) else None)
        value = values if values is None or len(values) > 1 else values[0]
        tell(self.study, trial, value, state)

    def _log(self, proposal: Proposal, outcome: Outcome) -> None:
        number = proposal.number
        if outcome.state != FAIL and not _trials_log.isEnabledFor(logging.INFO):
            return  # a cheap trial's whole cost is a few times what formatting the line costs
        if outcome.state == "COMPLETE":
            values = ", ".join(f"{v:.6g}" for v in outcome.values or ())
            more = (f" (answered from trial {proposal.duplicate_of}: same architecture)"
                    if proposal.duplicate_of is not None else "")
            _trials_log.info("Trial %d finished with value(s) %s%s; arch %s", number, values,
                             more, proposal.arch)
        elif outcome.state == "PRUNED":
            _trials_log.info("Trial %d pruned. %s", number, outcome.reason or "")
        else:
            note = " (traceback in its fail_traceback attribute)" if outcome.traceback else ""
            _log.warning("trial %d failed: %s%s", number, outcome.reason, note)

    def run_one(self, evaluator: Evaluator) -> bool:
        """Propose, evaluate here and record one counted trial; False when the study had no
        room for one."""
        proposal = self.propose()
        if proposal is None:
            return False
        if proposal.to_evaluate:
            self.record(proposal, self.evaluate_here(proposal, evaluator))
        return True

    def fail_interrupted(self) -> None:
        """After a Ctrl-C: fail what this process left RUNNING. ``evaluate_here`` fails its
        own trial, but the interrupt can land where Optuna has created the trial and the
        config is not drawn yet (the sampler's ``before_trial``), or while a result is told."""
        try:
            for t in self.study.get_trials(deepcopy=False,
                                           states=(optuna.trial.TrialState.RUNNING,)):
                if self.in_memory or t.system_attrs.get(WORKER_ATTR) == self.me:
                    fail_trial(self.study._storage, t, INTERRUPTED, describer(self.plan))
        except Exception as e:  # the next run's recover_stale fails them (this process is gone)
            _log.warning("could not fail the interrupted trials: %s: %s", type(e).__name__, e)


def _fixed_params(trial: optuna.trial.Trial) -> dict[str, Any] | None:
    """The parameters an enqueued trial was created with (None: a sampled trial)."""
    frozen = getattr(trial, "_cached_frozen_trial", None)
    attrs = frozen.system_attrs if frozen is not None else trial.system_attrs
    return attrs.get("fixed_params") or None
