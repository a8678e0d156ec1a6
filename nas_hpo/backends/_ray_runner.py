"""The ``ray`` backend: a study's trials as Ray Tune trials, recorded in the study's storage.

How the pieces map (translation only; the search logic is Optuna's, the scheduling Ray's):

- The study's strategy sampler drives ``OptunaSearch`` (through ``_SpaceOptunaSearch``, which
  keeps forbidden draws away from Ray) on the study itself: Ray's searcher state *is* the Optuna
  study in the study's storage, so every Ray trial is an Optuna trial with its params.
- The driver (this process) writes everything to the storage: intermediate values as Ray
  reports them, then the final values and the user attributes the trial sent back (arch, seed,
  cost metrics, what the objective measured). Workers never need to reach the database, so a
  SQLite file on the laptop that drives a cluster works.
- Early stopping is Ray's: the strategy's Optuna pruner is translated to the Ray scheduler of
  the same rule (``SuccessiveHalvingPruner`` → ``ASHAScheduler``, ``HyperbandPruner`` →
  ``HyperBandScheduler``, ``MedianPruner`` → ``MedianStoppingRule``), or ``[backend]
  scheduler`` names one. A trial the scheduler stops is recorded PRUNED.
- Faults: a trial whose worker or node dies is retried ``max_failures`` times by Ray, then
  recorded FAIL with a reason; an exception or ``TrialFailure`` of the objective is recorded
  FAIL with its message at once (retrying a deterministic error wastes the cluster).
- ``Tuner.restore``: each study's Ray experiment lives in ``<ray_dir>/nas-hpo-<study name>``;
  running an interrupted study again restores that experiment (unfinished trials resume).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import TrialState

from nas_hpo._objective import Context, TrialFailure
from nas_hpo._runner import (
    FIDELITY_ATTR,
    CostRecorder,
    Plan,
    ProxyScorer,
    _jsonable,
    _total,
    describer,
    open_study,
    prepare,
    trial_seed,
    warm_start,
)
from nas_hpo._spec import SpecError, StudySpec
from nas_hpo._storage import WORKER_ATTR, recover_stale, worker_id
from nas_hpo.backends._ray import _SpaceOptunaSearch
from nas_hpo.space._optuna import FORBIDDEN_ATTR

try:
    import ray
    from ray import tune
except ImportError as exc:  # re-raised with the fix, never swallowed
    raise ImportError("the ray backend needs Ray Tune: pip install 'ray[tune]>=2.9'") from exc

__all__ = ["run_ray"]

# Keys of the config / results exchanged between the driver and the trainable.
TRIAL_KEY = "nas_hpo:trial"  # the Optuna trial number (it fixes the trial's seed)
FIDELITY_KEY = "nas_hpo:fidelity"
STEP_KEY = "nas_hpo_step"
FINAL_KEY = "nas_hpo_final"
FAIL_KEY = "nas_hpo_fail_reason"
ATTRS_KEY = "nas_hpo_attrs"  # JSON: Ray flattens nested result dicts


def metric_names(n_values: int) -> list[str]:
    return ["value"] if n_values == 1 else [f"value_{i}" for i in range(n_values)]


class RayContext(Context):
    """The context of a Ray trial: reports go to ``ray.tune.report`` (and Ray's scheduler,
    which stops the trial itself when it decides to)."""

    def __init__(self, metric: str, seed: int, fidelity: Mapping[str, Any] | None,
                 attrs: dict[str, Any]) -> None:
        super().__init__(seed, fidelity)
        self.metric, self.known = metric, attrs

    def report(self, value: float, step: int) -> None:
        super().report(value, step)
        if not math.isfinite(value):
            raise TrialFailure(f"intermediate value {value} at step {step} is not finite")
        # The attributes known so far travel with each report: a trial the scheduler stops
        # after this one still gets its costs and arch recorded.
        attrs = json.dumps(_jsonable({**self.known, **self.attrs}))
        tune.report({self.metric: float(value), STEP_KEY: int(step), ATTRS_KEY: attrs})


_PLANS: dict[int, tuple[Plan, CostRecorder]] = {}


def _plan(spec: StudySpec) -> tuple[Plan, CostRecorder]:
    # One plan per worker process (Ray reuses worker processes across trials).
    key = repr(spec)
    if key not in _PLANS:
        plan = prepare(spec)
        _PLANS[key] = (plan, CostRecorder(plan.space, plan.objective, spec.cost_metrics))
    return _PLANS[key]


def _trainable(config: dict[str, Any], spec: StudySpec) -> None:
    """One Ray trial: evaluate ``config`` with the study's objective; the final report carries
    the values and everything to store as user attributes."""
    plan, costs = _plan(spec)
    config = dict(config)
    number = int(config.pop(TRIAL_KEY))
    fidelity = config.pop(FIDELITY_KEY, None)
    names = metric_names(len(plan.directions))
    attrs: dict[str, Any] = {}
    ctx = RayContext(names[0], trial_seed(spec.seed, number), fidelity, attrs)
    if fidelity:
        attrs["budget"] = fidelity
    try:
        if costs.active:
            try:
                attrs.update(costs(config))
            except Exception as e:
                attrs["cost_error"] = f"{type(e).__name__}: {e}"
        if spec.also_score and plan.space.can_build:
            try:
                scores = ProxyScorer(plan, spec.also_score)(config)
                attrs.update({f"zc_{k}": v for k, v in scores.items()})
            except Exception as e:
                attrs["zc_error"] = f"{type(e).__name__}: {e}"
        result = plan.objective(config, space=plan.space, ctx=ctx)
        if len(result.values) != len(names):
            raise TrialFailure(f"the objective returned {len(result.values)} value(s) "
                               f"{result.values}, the study has {len(names)} direction(s)")
    except Exception as e:  # TrialFailure or a bug: recorded FAIL with its message, no retry
        reason = str(e) if isinstance(e, TrialFailure) else f"{type(e).__name__}: {e}"
        attrs.update(ctx.attrs)
        tune.report({FAIL_KEY: reason, ATTRS_KEY: json.dumps(_jsonable(attrs))})
        return
    attrs.update(ctx.attrs)
    attrs.update(result.user_attrs)
    tune.report({**dict(zip(names, result.values, strict=True)), FINAL_KEY: True,
                 ATTRS_KEY: json.dumps(_jsonable(attrs))})


class _StudySearch(_SpaceOptunaSearch):
    """The searcher of a study on Ray: what ``OptunaSearch`` does, plus the study's records
    (seed, arch, worker, user attributes, fail reasons, PRUNED for scheduler stops)."""

    def __init__(self, plan: Plan, storage: optuna.storages.BaseStorage) -> None:
        names = metric_names(len(plan.directions))
        modes = ["max" if d == "maximize" else "min" for d in plan.directions]
        super().__init__(
            plan.space,
            metric=names[0] if len(names) == 1 else names,
            mode=modes[0] if len(modes) == 1 else modes,
            sampler=plan.strategy.sampler,
            seed=None,
            study_name=plan.spec.study_name,
            storage=storage,
        )
        self._study_seed = plan.spec.seed
        self._driver = worker_id()
        self._reasons: dict[str, str] = {}

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config = super().suggest(trial_id)
        if config is None:
            return None
        trial = self._ot_trials[trial_id]
        storage = self._ot_study._storage
        storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, self._driver)
        trial.set_user_attr("seed", trial_seed(self._study_seed, trial.number))
        trial.set_user_attr("arch", self._search_space.arch_key(config))
        trial.set_user_attr("ray_trial_id", trial_id)
        out = {**config, TRIAL_KEY: trial.number}
        fidelity = storage.get_trial_system_attrs(trial._trial_id).get(FIDELITY_ATTR)
        if fidelity:
            out[FIDELITY_KEY] = fidelity
        return out

    def save(self, checkpoint_path: str) -> None:
        # OptunaSearch pickles its state with plain pickle, which fails on spaces whose
        # builders are closures; Ray's cloudpickle (what Tuner.restore reads anyway) does not.
        from ray import cloudpickle

        with open(checkpoint_path, "wb") as f:
            cloudpickle.dump(self.__dict__.copy(), f)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if FAIL_KEY in result:
            self._reasons[trial_id] = result[FAIL_KEY]
        if STEP_KEY in result and not isinstance(self.metric, list):
            trial = self._ot_trials[trial_id]
            if not self._finished(trial):
                trial.report(float(result[self.metric]), int(result[STEP_KEY]))

    def _finished(self, trial: optuna.trial.Trial) -> bool:
        state = self._ot_study._storage.get_trial(trial._trial_id).state
        return state.is_finished()

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        trial = self._ot_trials[trial_id]
        if self._finished(trial):
            # A restored sweep re-runs trials that had finished after Tune's last checkpoint;
            # the study already holds their result.
            self._completed_trials.add(trial_id)
            return
        result = result or {}
        if STEP_KEY in result and FINAL_KEY not in result:
            # The result on which the scheduler stopped the trial reaches only this method.
            self.on_trial_result(trial_id, result)
        for key, value in json.loads(result.get(ATTRS_KEY) or "{}").items():
            trial.set_user_attr(key, value)
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        values = None
        if result.get(FINAL_KEY):
            state = TrialState.COMPLETE
            values = [float(result[m]) for m in metrics]
        elif FAIL_KEY in result or trial_id in self._reasons:
            state = TrialState.FAIL
            trial.set_user_attr("fail_reason", result.get(FAIL_KEY, self._reasons.get(trial_id)))
        elif error:
            state = TrialState.FAIL
            trial.set_user_attr("fail_reason", "the Ray trial errored (its worker or node died "
                                "more often than [backend] max_failures allows); see Ray's "
                                f"error.txt of trial {trial_id}")
        else:
            state = TrialState.PRUNED  # stopped by the Ray scheduler
            trial.set_user_attr("pruned_by", "ray scheduler")
        with warnings.catch_warnings():
            # Optuna warns that heartbeats are meant for Study.optimize; here the driver owns
            # the trials and a dead driver is caught by its worker attribute instead.
            warnings.simplefilter("ignore", UserWarning)
            self._ot_study.tell(trial, values if len(metrics) > 1 or values is None
                                else values[0], state=state)
        self._completed_trials.add(trial_id)


class _EpochBudget(tune.Stopper):
    """``[budget] max_epochs`` on Ray: stop the sweep once the study's trials (finished ones,
    read from the storage) have spent that many epochs."""

    def __init__(self, study: optuna.Study, max_epochs: int) -> None:
        self.study, self.max_epochs = study, max_epochs

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        from nas_hpo._runner import epochs_spent

        return epochs_spent(self.study) >= self.max_epochs


def _scheduler(plan: Plan) -> Any:
    """The Ray scheduler of the study: ``[backend] scheduler``, or the strategy's Optuna
    pruner translated to Ray's scheduler of the same rule."""
    from ray.tune import schedulers

    name = plan.spec.scheduler
    pruner = plan.strategy.pruner
    from nas_hpo.strategies._extrapolation import ExtrapolationPruner

    if name is None and isinstance(pruner, ExtrapolationPruner):
        # Ray has no scheduler of that rule; running without one would silently not prune.
        raise SpecError(
            f"{plan.spec.where('strategy', 'name')}: lce prunes on the optuna backend only (Ray "
            "has no learning-curve scheduler); use the optuna backend, or name a Ray scheduler "
            "in [backend] scheduler"
        )
    if name is None:
        name = {
            optuna.pruners.SuccessiveHalvingPruner: "asha",
            optuna.pruners.HyperbandPruner: "hyperband",
            optuna.pruners.MedianPruner: "median",
        }.get(type(pruner), "fifo")
    if name != "fifo" and len(plan.directions) > 1:
        raise SpecError(f"{plan.spec.where('backend', 'scheduler')}: Ray schedulers stop trials "
                        f"on one metric; the study has {len(plan.directions)} objectives")
    time_attr = "training_iteration"
    # One report per epoch, then the final report: a scheduler's max_t counts that one too, so
    # that it does not stop the trial before the final values arrive.
    max_t = int(getattr(plan.objective, "epochs", 0) or 100) + 1
    if name == "fifo":
        return schedulers.FIFOScheduler()
    if name == "asha":
        rf = getattr(pruner, "_reduction_factor", 4)
        grace = getattr(pruner, "_min_resource", None)
        grace = grace if isinstance(grace, int) else 1
        return schedulers.ASHAScheduler(time_attr=time_attr, max_t=max_t, grace_period=grace,
                                        reduction_factor=rf)
    if name == "hyperband":
        rf = getattr(pruner, "_reduction_factor", 3)
        return schedulers.HyperBandScheduler(time_attr=time_attr, max_t=max_t,
                                             reduction_factor=rf)
    if name == "median":
        startup = getattr(pruner, "_n_startup_trials", 5)
        warmup = getattr(pruner, "_n_warmup_steps", 0)
        return schedulers.MedianStoppingRule(time_attr=time_attr, grace_period=warmup,
                                             min_samples_required=max(1, startup))
    raise SpecError(f"{plan.spec.where('backend', 'scheduler')}: unknown Ray scheduler "
                    f"{name!r}; known: fifo, asha, hyperband, median")


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


def _resources(spec: StudySpec) -> dict[str, float]:
    return {k: v for k, v in spec.resources_per_trial.items()}


def experiment_path(spec: StudySpec) -> str:
    root = spec.ray_dir or os.path.join(os.path.expanduser("~"), "ray_results")
    return os.path.join(os.path.abspath(root), f"nas-hpo-{spec.study_name}")


def run_ray(plan: Plan) -> optuna.Study:
    """Run the study's remaining trials as Ray Tune trials."""
    spec = plan.spec
    if plan.strategy.constraints:
        raise SpecError(f"{spec.where('strategy')}: constraints are not supported on the ray "
                        "backend yet; run this strategy on the optuna backend")
    _scheduler(plan)  # a study Ray cannot early-stop as asked is refused before it starts
    study = open_study(plan)
    path = experiment_path(spec)
    # A sweep that was interrupted (its driver stopped before fit() returned) is restored.
    state = study._storage.get_study_system_attrs(study._study_id).get(SWEEP_ATTR)
    restoring = (state == "running" and tune.Tuner.can_restore(path)
                 and spec.n_trials - _count_done(study) > 0)
    if not restoring:
        failed = recover_stale(study, describer(plan))
        if failed:
            import logging

            logging.getLogger("nas_hpo").warning(
                "trials %s were left RUNNING by a driver that is gone; marked failed", failed)
    remaining = spec.n_trials - _total(study)
    if remaining <= 0 and not restoring:
        return study
    if not restoring:
        resume_at = len(study.get_trials(deepcopy=False))
        if resume_at:
            # As on the optuna backend: a resumed study's strategy is seeded from the trials
            # it holds already, so that it does not propose the first run's draws again.
            plan = prepare(spec, progress=plan.progress, resume_at=resume_at)
        warm_start(plan, study)  # enqueued trials are what OptunaSearch asks for first
    started = _connect(spec)
    try:
        _check_resources(spec)
        trainable = tune.with_resources(
            tune.with_parameters(_trainable, spec=spec), _resources(spec)
        )
        if restoring:
            tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=False)
        else:
            searcher = _StudySearch(plan, study._storage)
            single = len(plan.directions) == 1
            tuner = tune.Tuner(
                trainable,
                param_space={},
                tune_config=tune.TuneConfig(
                    search_alg=searcher,
                    scheduler=_scheduler(plan),
                    # Schedulers read the metric from here (one objective only).
                    metric=searcher.metric if single else None,
                    mode=searcher.mode if single else None,
                    num_samples=remaining,
                    max_concurrent_trials=spec.max_concurrent_trials,
                    time_budget_s=spec.timeout_s,
                ),
                run_config=tune.RunConfig(
                    name=os.path.basename(path),
                    storage_path=os.path.dirname(path),
                    failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                    stop=_EpochBudget(study, spec.max_epochs) if spec.max_epochs else None,
                    verbose=0 if not plan.progress else 1,
                ),
            )
        study._storage.set_study_system_attr(study._study_id, SWEEP_ATTR, "running")
        # A failed trial's last report carries its reason and no metric value (there is none
        # to give); Ray's documented switch lets such a result through to the searcher.
        os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
        tuner.fit()
        study._storage.set_study_system_attr(study._study_id, SWEEP_ATTR, "done")
        if restoring:
            # Trials the interrupted driver asked for after Tune's last checkpoint are unknown
            # to the restored sweep; they are failed with a reason rather than left RUNNING.
            recover_stale(study, describer(plan))
    finally:
        if started:
            ray.shutdown()
    return optuna.load_study(study_name=spec.study_name, storage=study._storage)


SWEEP_ATTR = "nas_hpo:ray_sweep"


def _count_done(study: optuna.Study) -> int:
    """Finished trials that count against ``n_trials`` (forbidden draws are not evaluations)."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                    TrialState.FAIL))
    return sum(FORBIDDEN_ATTR not in t.user_attrs for t in done)
