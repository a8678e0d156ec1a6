"""The ``ray`` backend: a study's trials as Ray Tune trials, recorded in the study's storage.

The study layer's lifecycle runs here as it does on this machine, split where Ray splits it:

- the driver (this process) *proposes* each trial in a Ray Tune searcher (``_StudySearcher``:
  the study's strategy samples it, forbidden draws and repeats of evaluated architectures
  never reach Ray), and *records* each outcome (values, state, every attribute) in the
  storage, so workers never need to reach the database (a SQLite file on the laptop that
  drives a cluster works);
- a Ray worker *evaluates* it with the same ``Evaluator`` as a local trial, and sends back the
  ``Outcome``.

The ``Budget`` decides when the searcher is finished (``n_trials``, ``timeout_s``,
``max_epochs``, ``max_failures``): trials running then finish, as on this machine.
Early stopping is Ray's: the strategy's Optuna pruner is translated to the Ray scheduler of
the same rule (``SuccessiveHalvingPruner`` → ``ASHAScheduler``, ``HyperbandPruner`` →
``HyperBandScheduler``, ``MedianPruner`` → ``MedianStoppingRule``), or ``[backend]
scheduler`` names one; a trial the scheduler stops is recorded PRUNED. A trial whose worker
or node dies is retried ``[backend] max_failures`` times by Ray, then recorded FAIL with a
reason. Each driver's Ray experiment lives in ``<ray_dir>/nas-hpo-<study name>-<driver>``;
running a study again whose driver died on this machine before its sweep ended restores that
experiment (``Tuner.restore``: unfinished trials resume under their Optuna trial numbers).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import zlib
from collections.abc import Mapping
from typing import Any

import optuna

from nas_hpo.backends._ray_schedulers import scheduler_of
from nas_hpo.backends._ray_worker import (
    ATTRS_KEY,
    OUTCOME_KEY,
    STEP_KEY,
    TRIAL_KEY,
    metric_names,
    trainable,
)
from nas_hpo.study import (
    MEMORY,
    WORKER_ATTR,
    Budget,
    Lifecycle,
    Outcome,
    Plan,
    Proposal,
    SpecError,
    StudySpec,
    counted,
    default_threads,
    describer,
    fail_trial,
    jsonable,
    open_study,
    prepare,
    process_gone,
    recover_stale,
    warm_start,
    worker_id,
)

try:
    import ray
    from ray import tune
    from ray.tune.search import Searcher
except ImportError as exc:  # re-raised with the fix, never swallowed
    raise ImportError("the ray backend needs Ray Tune: pip install 'ray[tune]>=2.9'") from exc

__all__ = ["execute", "experiment_path"]

_log = logging.getLogger("nas_hpo")

#: Study system attribute of each Ray sweep, by its driver: its experiment folder and state.
SWEEP_ATTR = "nas_hpo:ray_sweep:"


# ------------------------------------------------------------------------------ the driver


class _StudySearcher(Searcher):
    """A Ray Tune searcher that is the study layer's lifecycle: ``suggest`` proposes,
    ``on_trial_complete`` records. Its checkpoints keep the proposals Ray is running, so a
    restored sweep records them under their trial numbers."""

    def __init__(self, spec: StudySpec, metric: str | list[str], mode: str | list[str]
                 ) -> None:
        super().__init__(metric=metric, mode=mode)
        self.spec = spec
        self._proposals: dict[str, Proposal] = {}
        self._live: Lifecycle | None = None
        self.error: BaseException | None = None

    # A pickled searcher (Ray's tuner.pkl, its checkpoints) holds no storage connection.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_live"] = None
        state["error"] = None
        state["_proposals"] = {k: p.plain() for k, p in self._proposals.items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._proposals = {k: Proposal(**p) for k, p in state["_proposals"].items()}

    def attach(self, life: Lifecycle) -> None:
        self._live = life

    def life(self) -> Lifecycle:
        """The lifecycle. A restored searcher (its driver died) opens the study again
        (``_OPENED`` closes it) and fails the trials its dead driver proposed after Ray's last
        checkpoint: Ray does not resume them, and they are excused from the budget, so the
        study still gets its ``n_trials`` (what Ray's own trial count did)."""
        if self._live is None:
            plan = prepare(self.spec)
            study = open_study(plan)
            budget = Budget(self.spec, study)
            known = {p.trial_id for p in self._proposals.values()}
            me = worker_id()
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
                driver = t.system_attrs.get(WORKER_ATTR)
                if t._trial_id not in known and driver != me and process_gone(driver or ""):
                    host, pid = (driver or "?:?").split(":")[:2]
                    reason = (f"the Ray driver (process {pid} on {host}) died while the trial "
                              "ran, after Ray's last checkpoint: the restored sweep cannot "
                              "resume it")
                    if fail_trial(study._storage, t, reason, describer(plan)):
                        budget.excused += 1
            self._live = Lifecycle(plan, study, budget=budget).__enter__()
            _OPENED.append(self._live)
        return self._live

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        return True  # metric and mode are the study's, given at construction

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.error is not None:
            return Searcher.FINISHED
        life = self.life()
        try:
            while True:
                if life.budget.stop_reason() is not None:
                    return Searcher.FINISHED
                proposal = life.propose()
                if proposal is None:  # the study holds n_trials trials
                    return Searcher.FINISHED
                if proposal.to_evaluate:  # not a repeat answered now or when its twin ends
                    break
        except Exception as e:  # e.g. a sampler stuck on forbidden draws: raised after fit
            self.error = e
            return Searcher.FINISHED
        life.put(proposal.trial_id, "ray_trial_id", trial_id)
        self._proposals[trial_id] = proposal
        sent = {"number": proposal.number, "seed": proposal.seed,
                "fidelity": proposal.fidelity, "population": proposal.population}
        return {**proposal.config, TRIAL_KEY: json.dumps(jsonable(sent))}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        proposal = self._proposals.get(trial_id)
        if proposal is not None:
            self._report(proposal, result)

    def _report(self, proposal: Proposal, result: Mapping[str, Any]) -> None:
        """An intermediate value Ray reported, written to the trial (what ``trial.report``
        writes on this machine; Ray's scheduler, not Optuna's pruner, decides on it)."""
        if STEP_KEY not in result or isinstance(self.metric, list):
            return
        storage = self.life().study._storage
        if not storage.get_trial(proposal.trial_id).state.is_finished():
            storage.set_trial_intermediate_value(proposal.trial_id, int(result[STEP_KEY]),
                                                 float(result[self.metric]))

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        proposal = self._proposals.pop(trial_id, None)
        if proposal is None:
            return
        life = self.life()
        if life.study._storage.get_trial(proposal.trial_id).state.is_finished():
            return  # a restored sweep re-ran a trial the study had recorded already
        result = result or {}
        if OUTCOME_KEY not in result:
            # The result on which the scheduler stopped the trial reaches only this method.
            self._report(proposal, result)
        life.record(proposal, _outcome(result, error, trial_id))

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump({k: p.plain() for k, p in self._proposals.items()}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self._proposals = {k: Proposal(**p) for k, p in pickle.load(f).items()}


def _outcome(result: Mapping[str, Any], error: bool, trial_id: str) -> Outcome:
    """The ``Outcome`` a Ray trial sent, or the one its end implies."""
    if OUTCOME_KEY in result:
        return Outcome.from_json(result[OUTCOME_KEY])
    attrs = json.loads(result.get(ATTRS_KEY) or "{}")
    if error:
        return Outcome("FAIL", attrs=attrs, reason=(
            "the Ray trial errored (its worker or node died more often than [backend] "
            f"max_failures allows); see Ray's error.txt of trial {trial_id}"))
    attrs["pruned_by"] = "ray scheduler"
    return Outcome("PRUNED", attrs=attrs, reason="stopped by the Ray scheduler")


_OPENED: list[Lifecycle] = []


def _connect(spec: StudySpec) -> bool:
    """Connect to the cluster (or start a local Ray); ``True`` when this call started Ray."""
    if ray.is_initialized():
        return False
    # Worker processes import the objective from the driver's folder as the driver does (a
    # path that does not exist on another node is harmless there).
    paths = [os.getcwd(), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}
    _check_reachable(spec)
    try:
        ray.init(address=spec.address, runtime_env=env, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    except Exception as e:  # ConnectionError, TimeoutError, ValueError of a bad address
        where = spec.where("backend", "address")
        raise SpecError(f"{where}: cannot reach the Ray cluster at {spec.address!r}: "
                        f"{type(e).__name__}: {e}") from None
    return True


def _check_reachable(spec: StudySpec) -> None:
    """Fail fast on a ``host:port`` nobody listens on: ``ray.init`` retries such an address
    for minutes before it gives up."""
    import socket

    address = spec.address
    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SpecError(f"{spec.where('backend', 'address')}: {address!r} is not a Ray address; "
                        "use auto, host:6379 (a head node) or ray://host:10001 (Ray Client)")
    try:
        with socket.create_connection((host, int(port)), timeout=10):
            pass
    except OSError as e:
        raise SpecError(f"{spec.where('backend', 'address')}: cannot reach the Ray cluster at "
                        f"{address!r}: {e}") from None


def _check_resources(spec: StudySpec) -> None:
    """A trial asking for more than the whole cluster has would stay PENDING for ever."""
    have = ray.cluster_resources()
    for key, amount in spec.resources_per_trial.items():
        ray_key = key.upper() if key in ("cpu", "gpu") else key
        if amount > have.get(ray_key, 0.0):
            raise SpecError(
                f"{spec.where('backend', 'resources_per_trial')}: a trial asks for {amount:g} "
                f"{key}, the Ray cluster has {have.get(ray_key, 0.0):g} in all"
            )


def experiment_path(spec: StudySpec, driver: str) -> str:
    """``<ray_dir>/nas-hpo-<study name>-<driver>``: one experiment folder per driver, so that
    runs joining one study do not share Ray's files."""
    root = spec.ray_dir or os.path.join(os.path.expanduser("~"), "ray_results")
    tag = f"{zlib.crc32(driver.encode()):08x}"
    return os.path.join(os.path.abspath(root), f"nas-hpo-{spec.study_name}-{tag}")


def _dead_sweep(study: optuna.Study) -> tuple[str, str] | None:
    """(driver, experiment folder) of a sweep of ``study`` whose driver, on this host, died
    before the sweep ended and that Ray can restore; None where there is none."""
    attrs = study._storage.get_study_system_attrs(study._study_id)
    for key, value in sorted(attrs.items()):
        if key.startswith(SWEEP_ATTR) and isinstance(value, dict) \
                and value.get("state") == "running":
            driver = key[len(SWEEP_ATTR):]
            if process_gone(driver) and tune.Tuner.can_restore(value["path"]):
                return driver, value["path"]
    return None


def trial_threads(spec: StudySpec) -> int:
    """Torch threads of a Ray trial: ``[backend] threads``, else the CPUs Ray reserves for it
    (``resources_per_trial``: Ray runs as many trials on a node as its CPUs allow), at
    least 1."""
    return default_threads(1, spec.threads or max(1, int(spec.resources_per_trial.get("cpu",
                                                                                      1))))


def execute(plan: Plan) -> optuna.Study:
    """Run (or resume) the study's remaining trials as Ray Tune trials."""
    spec = plan.spec
    scheduler_of(plan)  # a study Ray cannot early-stop as asked is refused before it starts
    study = open_study(plan)
    me = worker_id()
    # A sweep whose driver died before fit() returned is restored (and taken over: no other
    # run restores it too); else this run drives a sweep of its own.
    dead = _dead_sweep(study)
    restoring = dead is not None
    if dead is not None:
        path = dead[1]
        study._storage.set_study_system_attr(study._study_id, SWEEP_ATTR + dead[0],
                                             {"path": path, "state": f"taken over by {me}"})
    else:
        path = experiment_path(spec, me)
    if not restoring:
        failed = recover_stale(study, describer(plan))
        if failed:
            _log.warning("trials %s were left RUNNING by a driver that is gone; marked failed",
                         failed)
        if counted(study) >= spec.n_trials:
            return study
        warm_start(plan, study)  # enqueued trials are what the searcher proposes first
    from nas_hpo._progress import Progress

    progress = Progress(spec.n_trials, study, enabled=plan.progress)
    started = _connect(spec)
    searcher: _StudySearcher | None = None
    life: Lifecycle | None = None
    lost = 0  # trials the dead driver of a restored sweep proposed and Ray cannot resume
    try:
        _check_resources(spec)
        # The workers need no storage: the spec they get has none (no password in Ray's files).
        runs = tune.with_resources(
            tune.with_parameters(trainable, spec=dataclasses.replace(spec, storage=MEMORY),
                                 n_values=len(plan.directions), threads=trial_threads(spec)),
            dict(spec.resources_per_trial))
        if restoring:
            tuner = tune.Tuner.restore(path, runs, resume_unfinished=True,
                                       resume_errored=False, restart_errored=False)
        else:
            names = metric_names(len(plan.directions))
            modes = ["max" if d == "maximize" else "min" for d in plan.directions]
            single = len(names) == 1
            searcher = _StudySearcher(spec, names[0] if single else names,
                                      modes[0] if single else modes)
            budget = Budget(spec, study)
            life = Lifecycle(plan, study, budget=budget,
                             on_record=progress.update if progress.enabled else None)
            searcher.attach(life.__enter__())
            tuner = tune.Tuner(
                runs,
                param_space={},
                tune_config=tune.TuneConfig(
                    search_alg=searcher,
                    scheduler=scheduler_of(plan),
                    # Schedulers read the metric from here (one objective only).
                    metric=names[0] if single else None,
                    mode=modes[0] if single else None,
                    num_samples=-1,  # the searcher says when the budget is spent
                    # One worker process for many trials: Ray Tune's default starts one per
                    # trial, which here imports torch and nas-hpo again each time (~1.5 s).
                    reuse_actors=True,
                    max_concurrent_trials=spec.max_concurrent_trials,
                ),
                run_config=tune.RunConfig(
                    name=os.path.basename(path),
                    storage_path=os.path.dirname(path),
                    failure_config=tune.FailureConfig(max_failures=spec.ray_max_failures),
                    verbose=0,
                ),
            )
        study._storage.set_study_system_attr(study._study_id, SWEEP_ATTR + me,
                                             {"path": path, "state": "running"})
        # A failed trial's last report carries its outcome and no metric value (there is
        # none to give); Ray's documented switch lets such a result through to the searcher.
        os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
        # Ray saves the sweep's state every 10 s at most by default: a driver that dies loses
        # the trials it proposed since (they cannot be resumed). Every 2 s instead; the state
        # of a sweep is small.
        os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
        tuner.fit()
        study._storage.set_study_system_attr(study._study_id, SWEEP_ATTR + me,
                                             {"path": path, "state": "done"})
        if restoring:
            # Trials the interrupted driver asked for after Tune's last checkpoint are unknown
            # to the restored sweep; they are failed with a reason rather than left RUNNING.
            lost = len(recover_stale(study, describer(plan)))
            lost += sum(live.budget.excused for live in _OPENED)
            if any(live.budget.stop_reason() is not None for live in _OPENED):
                lost = 0  # the sweep ended on time, cost or epochs: nothing to make up for
    finally:
        if life is not None:
            life.close()
        while _OPENED:
            _OPENED.pop().close()
        progress.close()
        if started:
            ray.shutdown()
    if searcher is not None:
        if searcher.error is not None:
            raise searcher.error
        searcher.life().budget.raise_if_aborted()
    if lost and counted(study) < spec.n_trials + lost:
        # The restored sweep runs no trials in place of the lost ones when its searcher had
        # already told Tune it was finished (Tune keeps that in its checkpoint): a sweep of
        # this run's own does, so the study still gets its n_trials.
        more = dataclasses.replace(spec, n_trials=spec.n_trials + lost)
        return execute(dataclasses.replace(plan, spec=more))
    return optuna.load_study(study_name=spec.study_name, storage=study._storage)
