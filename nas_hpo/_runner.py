"""``nas_hpo.run``: from a study description to a finished Optuna study.

The runner resolves the space, objective and strategy through their registries, opens (or
resumes) the Optuna study in its storage and lets the chosen backend drive the trials. Every
trial records its architecture key, seed, and whatever the objective measured as user
attributes, so the study alone tells the whole story (optuna-dashboard, pandas).
"""

from __future__ import annotations

import datetime
import functools
import gc
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from nas_hpo import objectives, spaces, strategies
from nas_hpo._objective import CallableObjective, Objective, OptunaContext, TrialFailure
from nas_hpo._registry import Registry, UnknownNameError
from nas_hpo._spec import SpecError, StudySpec, import_callable, load_spec
from nas_hpo._storage import (  # noqa: F401,E501 (MEMORY re-exported)
    MEMORY,
    WORKER_ATTR,
    StorageError,
    fail_trial,
    open_storage,
    recover_stale,
    worker_id,
)
from nas_hpo.space import SearchSpace
from nas_hpo.space._optuna import (
    FORBIDDEN_ATTR,
    MAX_FORBIDDEN_DRAWS,
    ForbiddenConfigurationError,
    forbidden_streak_error,
)

FIDELITY_ATTR = "nas_hpo:fidelity"  # set by multi-fidelity samplers (strategies._smac)

__all__ = ["BACKENDS", "Plan", "prepare", "run", "trial_seed"]

_log = logging.getLogger("nas_hpo")

FINISHED = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)


@dataclass(frozen=True)
class Plan:
    """Everything a backend needs: the resolved components of one study."""

    spec: StudySpec
    space: SearchSpace
    objective: Objective
    strategy: strategies.Strategy
    directions: tuple[str, ...]
    #: Print a progress line (trials done, best so far, ETA) to stderr as trials finish.
    progress: bool = False


class CostRecorder:
    """The cost attributes (``params``, ``flops``, ``latency_ms``, ...) of each architecture,
    measured once per architecture key and stored on every trial, whatever the objective.

    Networks are built for the objective's input (``Objective.model_input``), or for the
    embedded default dataset's when the objective cannot tell; ``cost_input_shape`` records
    which. Building draws random weights: it runs under a forked RNG so that the objective's
    own randomness is the same with or without cost recording."""

    def __init__(
        self, space: SearchSpace, objective: Objective, metrics: tuple[str, ...]
    ) -> None:
        self.space, self.objective, self.metrics = space, objective, metrics
        self._cache: dict[str, dict[str, Any]] = {}

    @property
    def active(self) -> bool:
        return bool(self.metrics) and self.space.can_build

    def warm_up(self) -> None:
        """Do before the first trial what its measurement would otherwise do inside it: import
        torch, load the input's shape, and count the FLOPs of a one-pixel network, which makes
        ``FlopCounterMode`` import its ~900 lazy modules (~1 s; 3 s on a busy machine). A
        Ctrl-C that landed in those imports was once lost there, leaving the interrupted run
        in its objective (1 in ~100 tries); now no trial is running while they happen, and
        the first trial's time is its own."""
        import torch

        from nas_hpo import cost

        self._input()
        if "flops" in self.metrics:
            with torch.random.fork_rng(devices=[]):  # leaves the objective's RNG untouched
                tiny = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.Flatten(),
                                           torch.nn.Linear(1, 1))
                cost.count_flops(tiny, (1, 1, 1))

    def _input(self) -> tuple[tuple[int, ...], int]:
        known = self.objective.model_input()
        if known is not None:
            return known
        from nas_hpo import data

        splits = data.load(data.DEFAULT)
        return splits.input_shape, splits.num_classes

    def __call__(self, config: Mapping[str, Any]) -> dict[str, Any]:
        import torch

        from nas_hpo import cost

        key = self.space.arch_key(config)
        if key not in self._cache:
            input_shape, num_classes = self._input()
            with torch.random.fork_rng(devices=[]):
                model = self.space.build(config, input_shape=input_shape, num_classes=num_classes)
                attrs = cost.measure(
                    model, input_shape, self.metrics, device=self.objective.cost_device
                )
            attrs["cost_input_shape"] = list(input_shape)
            if len(self._cache) >= 4096:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = attrs
        return dict(self._cache[key])


class ProxyScorer:
    """Zero-cost proxies of a config's network on the objective's data (its ``dataset``, or
    the embedded default), with the study seed: ``also_score`` and warm starts."""

    def __init__(self, plan: Plan, names: tuple[str, ...]) -> None:
        self.plan, self.names = plan, names

    def __call__(self, config: Mapping[str, Any]) -> dict[str, float]:
        from nas_hpo import data
        from nas_hpo.objectives import zero_cost

        objective = self.plan.objective
        return zero_cost.score_config(
            self.plan.space, dict(config), list(self.names),
            dataset=getattr(objective, "dataset", data.DEFAULT),
            data_dir=getattr(objective, "data_dir", None),
            seed=self.plan.spec.seed,
        )


def warm_start(plan: Plan, study: optuna.Study) -> list[dict[str, Any]]:
    """``[strategy] warm_start = N``: on a study without trials, score N random architectures
    with the proxy ``warm_start_by`` and enqueue the best ``warm_start_top`` (default N/10) as
    the first trials, best first. Returns the enqueued configs."""
    spec = plan.spec
    if not spec.warm_start or study.get_trials(deepcopy=False):
        return []
    if not plan.space.can_build:
        raise SpecError(f"{spec.where('strategy', 'warm_start')}: the space "
                        f"{plan.space.name!r} builds no network for a proxy to score")
    score = ProxyScorer(plan, (spec.warm_start_by,))
    seen: dict[str, tuple[float, dict[str, Any]]] = {}
    for i in range(spec.warm_start * 4):  # duplicates of a small space are drawn again
        if len(seen) >= spec.warm_start:
            break
        config = plan.space.sample(seed=int(np.random.SeedSequence([spec.seed, 0x3A57, i]).generate_state(1)[0]))
        key = plan.space.arch_key(config)
        if key not in seen:
            seen[key] = (score(config)[spec.warm_start_by], config)
    top = spec.warm_start_top or max(1, spec.warm_start // 10)
    best = sorted(seen.values(), key=lambda sc: -sc[0])[:top]
    for value, config in best:
        study.enqueue_trial(config, user_attrs={
            "warm_start": {"by": spec.warm_start_by, "score": value, "of": len(seen)}})
    _log.info("warm start: enqueued the %d best of %d architectures by %s", len(best),
              len(seen), spec.warm_start_by)
    return [c for _, c in best]


def trial_seed(study_seed: int, number: int) -> int:
    """The seed of trial ``number``: distinct per trial, fixed by the study's seed; the first
    word of ``np.random.SeedSequence([study_seed, number]).generate_state(1)``."""
    if 0 <= study_seed <= _U32 and 0 <= number <= _U32:
        return _seed_block(study_seed, number >> 10)[number & 1023]
    return int(np.random.SeedSequence([study_seed, number]).generate_state(1)[0])


_U32 = 0xFFFFFFFF


@functools.lru_cache(maxsize=16)
def _seed_block(study_seed: int, block: int) -> list[int]:
    """``trial_seed`` of trials 1024·block ... 1024·block + 1023, computed together.

    Why not SeedSequence itself: building one costs ~10 µs, a fifth of a cheap sampler's whole
    trial. This is NumPy's SeedSequence entropy mixing (pool of 4 words, entropy
    [study_seed, number], both one 32-bit word) and its generate_state for one word, on
    arrays; its hash constants do not depend on the data, so every lane shares them. Tested
    equal to SeedSequence."""
    u64, mask = np.uint64, np.uint64(_U32)
    number = np.arange(block << 10, (block << 10) + 1024, dtype=np.uint64)
    entropy = [np.full(1024, study_seed, dtype=np.uint64), number, None, None]
    const = 0x43B0D7E5

    def hashmix(value: np.ndarray | None) -> np.ndarray:
        nonlocal const
        v = (np.zeros(1024, dtype=np.uint64) if value is None else value) ^ u64(const)
        const = (const * 0x931E8875) & _U32
        v = (v * u64(const)) & mask
        return v ^ (v >> u64(16))

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        r = (u64(0xCA01F9DD) * x - u64(0x4973F715) * y) & mask
        return r ^ (r >> u64(16))

    pool = [hashmix(e) for e in entropy]
    for src in range(4):
        for dst in range(4):
            if src != dst:
                pool[dst] = mix(pool[dst], hashmix(pool[src]))
    v = (pool[0] ^ u64(0x8B51F9DD)) * u64((0x8B51F9DD * 0x58F38DED) & _U32) & mask
    return (v ^ (v >> u64(16))).tolist()  # Python ints: indexing a list costs nothing


def _space(spec: StudySpec) -> SearchSpace:
    if spec.space.obj is not None:
        if not isinstance(spec.space.obj, SearchSpace):
            raise SpecError(f"space= must be a registered name or a SearchSpace, got "
                            f"{type(spec.space.obj).__name__}")
        return spec.space.obj
    try:
        return spaces.get(spec.space.name, **spec.space.options)
    except (ValueError, TypeError) as e:
        raise SpecError(f"{spec.where('space')}: {e}") from None


def _objective(spec: StudySpec) -> Objective:
    item = spec.objective
    if item.obj is not None:
        if isinstance(item.obj, Objective):
            return item.obj
        if not callable(item.obj):
            raise SpecError(f"objective= must be a name or a callable, got {item.obj!r}")
        return CallableObjective(item.obj, spec.directions)
    if ":" in item.name:
        fn = import_callable(item.name, spec.where("objective", "name"))
        return CallableObjective(fn, spec.directions)
    try:
        return objectives.get(item.name, **item.options)
    except (ValueError, TypeError) as e:
        raise SpecError(f"{spec.where('objective')}: {e}") from None


def prepare(spec: StudySpec, *, worker: int = 0, progress: bool = False,
            resume_at: int = 0) -> Plan:
    """Resolve the names of a checked spec into objects (errors name the section).

    ``worker`` numbers the processes of a ``--workers N`` run: worker 0's strategy is seeded
    with the study seed, the others with seeds derived from it, so that parallel workers do
    not propose the same architectures (trial seeds stay those of the trial numbers).
    ``resume_at``: the number of trials the study already holds. A resumed study's strategy
    is seeded from it too: seeded with the study seed again, a random sampler would replay
    the first run's draws and propose its architectures a second time."""
    space = _space(spec)
    objective = _objective(spec)
    try:
        objective.check_space(space)
    except ValueError as e:
        raise SpecError(f"{spec.where('objective')}: {e}") from None
    directions = spec.directions or objective.directions
    if len(directions) != len(objective.directions):
        raise SpecError(
            f"{spec.where('study', 'directions')}: the objective {spec.objective.name!r} gives "
            f"{len(objective.directions)} value(s) ({', '.join(objective.directions)}), but "
            f"{len(directions)} direction(s) are set"
        )
    seed = (spec.seed if worker == 0 and resume_at == 0
            else int(np.random.SeedSequence([spec.seed, 0x5EED, worker]
                                            + ([resume_at] if resume_at else []))
                     .generate_state(1)[0]))
    setting = strategies.Setting(
        space=space, seed=seed, directions=tuple(directions),
        fidelities=tuple(objective.fidelities),
    )
    try:
        strategy = strategies.get(spec.strategy.name, setting, **spec.strategy.options)
    except UnknownNameError as e:
        raise SpecError(f"{spec.where('strategy', 'name')}: {e}") from None
    except (ValueError, TypeError) as e:
        raise SpecError(f"{spec.where('strategy')}: {e}") from None
    return Plan(spec, space, objective, strategy, tuple(directions), progress)


def _jsonable(value: Any) -> Any:
    """User attributes go through JSON in Optuna's storages; numpy and torch scalars don't."""
    try:
        json.dumps(value)
        return value
    except TypeError:
        if hasattr(value, "item"):
            return value.item()
        if isinstance(value, Mapping):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        return str(value)


@dataclass
class Draws:
    """What one process's trial function has seen: trials run, forbidden draws among them, and
    the forbidden draws since the last valid one."""

    calls: int = 0
    forbidden: int = 0
    streak: int = 0


def make_trial_function(
    plan: Plan, stamped: bool = False, stop_at_total: bool = False,
    defer: Callable[[int, str, Any], None] | None = None, draws: Draws | None = None,
) -> Callable[[optuna.trial.Trial], Any]:
    """The Optuna objective function of a plan (also what the Ray backend reuses later).
    ``stamped``: the trials this process creates carry its worker id from their creation
    (``_stamp_new_trials``). ``stop_at_total``: stop the study's optimize loop once the
    study holds ``n_trials`` trials, counting those of other processes and machines that
    joined it (checked here rather than in an Optuna callback: Optuna reads the finished trial
    back from the storage and deep-copies it for every callback). ``defer(trial_id, key,
    value)``: where user attributes go to be written with the trial's final state
    (``_attrs_at_finish``); without it each is written at once. ``draws``: counted here, for
    ``_optimize`` to draw again for forbidden configurations."""
    space, objective, spec = plan.space, plan.objective, plan.spec
    n_values = len(plan.directions)
    costs = CostRecorder(space, objective, spec.cost_metrics)
    proxies = ProxyScorer(plan, spec.also_score)
    me = worker_id()
    # Fixed for the study: read once, not on every trial.
    measure_costs = costs.active
    if measure_costs:
        costs.warm_up()
    score_proxies = bool(spec.also_score) and space.can_build
    multi_fidelity, constraints = plan.strategy.multi_fidelity, plan.strategy.constraints
    draws = draws if draws is not None else Draws()

    def evaluate(trial: optuna.trial.Trial) -> float | tuple[float, ...]:
        # Which process runs the trial, so that a later run can tell it died (recover_stale);
        # trials this process created carry it already, those popped from the queue do not.
        in_memory = type(trial.study._storage) is optuna.storages.InMemoryStorage
        if not in_memory:
            created = getattr(trial, "_cached_frozen_trial", None)
            if not (stamped and created is not None
                    and created.system_attrs.get(WORKER_ATTR) == me):
                trial.study._storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, me)
        held: dict[str, Any] | None = None
        if defer is not None:
            def put(key: str, value: Any, trial_id: int = trial._trial_id) -> None:
                defer(trial_id, key, value)
        elif in_memory:
            # In memory: held here and written in one step as the trial ends (each
            # set_user_attr copies the trial: a few µs of a cheap sampler's ~0.2 ms).
            held = {}
            put = held.__setitem__
        else:
            put = trial.set_user_attr
        draws.calls += 1
        forbidden = False
        try:
            return measure(trial, put)
        except ForbiddenConfigurationError:
            forbidden = True
            raise
        except KeyboardInterrupt:
            # Wherever it lands (cost measurement, the objective, storage writes).
            put("fail_reason", "interrupted (Ctrl-C / SIGINT)")
            raise
        finally:
            if held:
                _write_user_attrs(trial, held)
            draws.forbidden += forbidden
            draws.streak = draws.streak + 1 if forbidden else 0
            if draws.streak >= MAX_FORBIDDEN_DRAWS:
                trial.study.stop()  # _optimize raises forbidden_streak_error
            # A forbidden draw is no evaluation: it brings the study no closer to n_trials.
            if stop_at_total and not forbidden:
                try:
                    # This trial is RUNNING, so it is counted.
                    if _total(trial.study) >= spec.n_trials:
                        trial.study.stop()
                except Exception:  # a storage error surfaces at the next write; keep this one's
                    pass

    def measure(trial: optuna.trial.Trial, put: Callable[[str, Any], None]
                ) -> float | tuple[float, ...]:
        seed = trial_seed(spec.seed, trial.number)
        put("seed", seed)
        config = space.suggest(trial)
        put("arch", space.arch_key(config))
        recorded: dict[str, Any] = {}
        if measure_costs:
            # Before the evaluation, so pruned and failed trials carry their costs too; a
            # network that cannot be measured is noted, and the objective still runs.
            try:
                recorded = costs(config)
                for key, value in recorded.items():
                    put(key, value)
            except Exception as e:
                put("cost_error", f"{type(e).__name__}: {e}")
        if score_proxies:
            # Zero-cost proxies of the trial's network next to what the objective measures
            # (the raw material of `nas-hpo correlate`); a proxy that fails is noted.
            try:
                for name, value in proxies(config).items():
                    put(f"zc_{name}", value)
            except Exception as e:
                put("zc_error", f"{type(e).__name__}: {e}")
        # A multi-fidelity strategy says at which fidelity to evaluate (e.g. {"epochs": 3}).
        fidelity = (trial.study._storage.get_trial_system_attrs(trial._trial_id).get(FIDELITY_ATTR)
                    if multi_fidelity else None)
        if fidelity:
            put("budget", fidelity)
        ctx = OptunaContext(trial, seed, fidelity)
        try:
            result = objective(config, space=space, ctx=ctx)
            if len(result.values) != n_values:
                raise TrialFailure(
                    f"the objective returned {len(result.values)} value(s) "
                    f"{result.values}, the study has {n_values} direction(s)"
                )
        except TrialFailure as e:
            put("fail_reason", str(e))
            raise
        except optuna.TrialPruned:
            raise
        except Exception as e:
            put("fail_reason", f"{type(e).__name__}: {e}")
            raise
        for key, value in result.user_attrs.items():
            put(key, _jsonable(value))
        if constraints:
            # Optuna's trial constraints (feasible when <= 0) from bounds on what the trial
            # recorded; a trial without the attribute cannot be shown feasible.
            attrs = {**recorded, **ctx.attrs, **result.user_attrs}
            for key, bound in constraints.items():
                value = attrs.get(key)
                trial.set_constraint(
                    key, math.inf if value is None else float(value) - float(bound)
                )
        return result.values[0] if n_values == 1 else result.values

    return evaluate


def _write_user_attrs(trial: optuna.trial.Trial, attrs: dict[str, Any]) -> None:
    """``trial.set_user_attr`` for several attributes in one step on an in-memory storage,
    where Optuna copies the trial for each (its steps, for several keys)."""
    storage, trial_id = trial.study._storage, trial._trial_id
    try:  # optuna 3.x-5.x internals of InMemoryStorage.set_trial_user_attr
        with storage._lock:
            frozen = storage._get_trial(trial_id)
            storage.check_trial_is_updatable(trial_id, frozen.state)
            clone = object.__new__(frozen.__class__)  # copy.copy's result, without detours
            clone.__dict__.update(frozen.__dict__)
            clone._user_attrs = {**frozen._user_attrs, **attrs}
            storage._set_trial(trial_id, clone)
    except AttributeError:
        for key, value in attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)
    cached = getattr(trial, "_cached_frozen_trial", None)
    if cached is not None:  # as set_user_attr keeps the trial's own view
        cached.user_attrs.update(attrs)


def open_study(plan: Plan) -> optuna.Study:
    """Create the study, or load it to resume; a study of the same name made for another space
    or other directions is an error rather than a silent mix."""
    spec = plan.spec
    try:
        heartbeat = spec.heartbeat_s
        if heartbeat is None:
            heartbeat = 0 if spec.storage.startswith("sqlite:") else 30
        storage = open_storage(spec.storage, heartbeat_s=heartbeat)
    except StorageError as e:
        raise SpecError(f"{spec.where('study', 'storage')}: {e}") from None
    study = optuna.create_study(
        study_name=spec.study_name,
        storage=storage,
        sampler=plan.strategy.sampler,
        pruner=plan.strategy.pruner,
        directions=list(plan.directions),
        load_if_exists=True,
    )
    wanted = [optuna.study.StudyDirection[d.upper()] for d in plan.directions]
    if list(study.directions) != wanted:
        raise SpecError(
            f"{spec.where('study', 'name')}: study {spec.study_name!r} in {spec.storage} has "
            f"directions {[d.name.lower() for d in study.directions]}, not {list(plan.directions)}"
        )
    recorded = study.user_attrs.get("space")
    space_name = plan.space.name or spec.space.name
    if recorded is not None and recorded != space_name:
        raise SpecError(
            f"{spec.where('study', 'name')}: study {spec.study_name!r} in {spec.storage} was run "
            f"on space {recorded!r}, not {space_name!r}; choose another study name"
        )
    if recorded is None:
        from nas_hpo import __version__

        study.set_user_attr("space", space_name)
        study.set_user_attr("objective", spec.objective.name)
        study.set_user_attr("strategy", spec.strategy.name)
        study.set_user_attr("nas_hpo_version", __version__)
        study.set_user_attr("versions", dict(_versions()))
    return study


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    # Read once per process: importlib.metadata parses each package's METADATA file
    # (~1 ms apiece), which was most of a small study's fixed cost.
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("nas-hpo", "optuna", "torch", "ConfigSpace", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def describer(plan: Plan) -> Callable[[optuna.trial.FrozenTrial], dict[str, Any]]:
    """What ``recover_stale`` gives a trial whose process died before writing it: its seed,
    and its architecture where its parameters were drawn (a process can die, or be
    interrupted, between the trial's creation and its first parameter)."""

    def describe(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
        known: dict[str, Any] = {"seed": trial_seed(plan.spec.seed, t.number)}
        try:
            plan.space.validate(t.params)
            known["arch"] = plan.space.arch_key(t.params)
        except Exception:  # no or partial parameters: no architecture yet
            pass
        return known

    return describe


def _total(study: optuna.Study) -> int:
    """Trials that count against ``n_trials``: finished ones and those running now, except the
    forbidden draws (pruned before any evaluation, with a ``forbidden`` user attribute)."""
    states = (*FINISHED, optuna.trial.TrialState.RUNNING)
    backend = getattr(study._storage, "_backend", study._storage)
    if isinstance(backend, optuna.storages.RDBStorage):
        # One COUNT query instead of loading the unfinished trials with their params and
        # attributes (what get_trials does): this runs after every trial.
        try:
            with backend.engine.connect() as connection:
                return int(connection.execute(_count_query(study._study_id)).scalar_one())
        except Exception:  # another Optuna schema: the public, slower way
            pass
    return sum(FORBIDDEN_ATTR not in t.user_attrs
               for t in study.get_trials(deepcopy=False, states=states))


@functools.lru_cache(maxsize=64)
def _count_query(study_id: int) -> Any:
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    states = (*FINISHED, optuna.trial.TrialState.RUNNING)
    trial, attr = models.TrialModel, models.TrialUserAttributeModel
    forbidden = sa.exists().where(attr.trial_id == trial.trial_id, attr.key == FORBIDDEN_ATTR)
    # Only a pruned trial can be a forbidden draw: the attribute lookup is skipped for the rest
    # (it tripled the query's time on a 5,000-trial SQLite study).
    pruned = optuna.trial.TrialState.PRUNED
    return (sa.select(sa.func.count()).select_from(trial)
            .where(trial.study_id == study_id, trial.state.in_(states),
                   sa.or_(trial.state != pruned, ~forbidden)))


def _stamp_new_trials(study: optuna.Study, worker: str) -> Callable[[], None]:
    """Make the trials this process creates carry their worker from their creation (so that a
    later run can tell a trial whose process died, ``recover_stale``): a template trial, what
    ``enqueue_trial`` uses, puts the attribute into the creation's own storage transaction
    rather than one more (~1 ms each on SQLite). Trials popped from the queue are not created
    here; the trial function writes their worker. Returns a function that undoes the patch."""
    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    if isinstance(backend, optuna.storages.RDBStorage):
        undo = _stamp_in_creation_transaction(backend, worker)
        if undo is not None:
            return undo
    create = storage.create_new_trial

    def create_new_trial(study_id: int, template_trial: Any = None) -> int:
        if template_trial is not None:
            return create(study_id, template_trial)
        template = optuna.trial.FrozenTrial(
            number=-1, state=optuna.trial.TrialState.RUNNING, value=None, values=None,
            datetime_start=datetime.datetime.now(), datetime_complete=None, params={},
            distributions={}, user_attrs={}, system_attrs={WORKER_ATTR: worker},
            intermediate_values={}, trial_id=-1,
        )
        return create(study_id, template)

    storage.create_new_trial = create_new_trial  # type: ignore[method-assign]

    def undo() -> None:
        del storage.create_new_trial

    return undo


def _stamp_in_creation_transaction(
    backend: optuna.storages.RDBStorage, worker: str
) -> Callable[[], None] | None:
    """``_stamp_new_trials`` on a database: Optuna creates the plain trial as usual and one
    prepared INSERT adds the worker in the same transaction. (Optuna's template path deep-copies
    the template and runs a SELECT and a freshly built upsert per attribute: ~1 ms a trial on
    SQLite, most of it SQLAlchemy building statements.) None where Optuna's internals differ
    (optuna 3.x-5.x); the caller then uses the template."""
    try:
        import sqlalchemy as sa
        from optuna.storages._rdb import models

        prepare, create = backend._get_prepared_new_trial, backend._create_new_trial
        insert = sa.insert(models.TrialSystemAttributeModel.__table__)
    except (ImportError, AttributeError):
        return None
    value_json = json.dumps(worker)

    def get_prepared_new_trial(study_id: int, template_trial: Any, session: Any) -> Any:
        trial = prepare(study_id, template_trial, session)  # flushed: it has its id
        if template_trial is None:
            session.execute(insert, {"trial_id": trial.trial_id, "key": WORKER_ATTR,
                                     "value_json": value_json})
        return trial

    def create_new_trial(study_id: int, template_trial: Any = None) -> Any:
        frozen = create(study_id, template_trial)
        if template_trial is None:  # what the row now holds (the trial's cached view)
            frozen.system_attrs[WORKER_ATTR] = worker
        return frozen

    backend._get_prepared_new_trial = get_prepared_new_trial  # type: ignore[method-assign]
    backend._create_new_trial = create_new_trial  # type: ignore[method-assign]

    def undo() -> None:
        del backend._get_prepared_new_trial, backend._create_new_trial

    return undo


def _attrs_at_finish(
    study: optuna.Study,
) -> tuple[Callable[[int, str, Any], None] | None, Callable[[], None]]:
    """On an RDB storage, write a trial's user attributes in the transaction that finishes it.

    Each ``set_user_attr`` is one transaction of its own (a commit, an fsync on SQLite: ~1 ms),
    and Optuna has no batch write; a trial that records its seed, architecture, costs and the
    objective's attributes paid one per attribute. Returns ``defer(trial_id, key, value)``,
    which holds an attribute until the trial's state becomes final (COMPLETE, PRUNED or FAIL:
    Optuna's ``tell`` always comes, Ctrl-C included), and an undo function; ``defer`` is None
    where this does not apply (in-memory and journal storages, another Optuna schema), and
    the caller writes at once. What is deferred is gone if the process is killed during the
    trial (``recover_stale`` then fails it with its parameters and worker, without them)."""
    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    none: tuple[None, Callable[[], None]] = (None, lambda: None)
    if not isinstance(backend, optuna.storages.RDBStorage):
        return none
    try:  # Optuna's own pieces of set_trial_state_values (optuna 3.x-5.x)
        import sqlalchemy.exc
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        parts = (backend._set_trial_attr_without_commit, backend._set_trial_value_without_commit,
                 backend.check_trial_is_updatable, models.TrialModel.find_or_raise_by_id)
    except (ImportError, AttributeError):
        return none
    set_attr, set_value, check, find = parts
    pending: dict[int, dict[str, Any]] = {}
    finish = backend.set_trial_state_values
    table = models.TrialUserAttributeModel
    dialect = backend.engine.name
    if dialect in ("sqlite", "postgresql"):
        # One upsert for all rows (Optuna runs a SELECT and an upsert per attribute); the same
        # statement as Optuna's, on the same unique (trial_id, key).
        from sqlalchemy.dialects import postgresql, sqlite

        insert = (sqlite if dialect == "sqlite" else postgresql).insert(table.__table__)
        # Built once (SQLAlchemy then reuses its compiled form), run for all rows at once.
        upsert = insert.on_conflict_do_update(
            index_elements=["trial_id", "key"], set_={"value_json": insert.excluded.value_json}
        )

        def write_attrs(session: Any, trial_id: int, attrs: dict[str, Any]) -> None:
            session.execute(upsert, [
                {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)}
                for k, v in attrs.items()
            ])
    else:
        def write_attrs(session: Any, trial_id: int, attrs: dict[str, Any]) -> None:
            for key, value in attrs.items():
                set_attr(session, table, trial_id, key, value)

    def defer(trial_id: int, key: str, value: Any) -> None:
        # Made JSON here (as Optuna would, at once): nothing can fail later in Optuna's tell.
        pending.setdefault(trial_id, {})[key] = _jsonable(value)

    def set_trial_state_values(trial_id: int, state: optuna.trial.TrialState,
                               values: Any = None) -> bool:
        attrs = pending.get(trial_id) if state.is_finished() else None
        if not attrs:
            return finish(trial_id, state, values)
        # Held until written: a write a Ctrl-C broke off is made again when the runner fails
        # the interrupted trial (_fail_interrupted).
        try:
            with _create_scoped_session(backend.scoped_session) as session:
                trial = find(trial_id, session, for_update=True)
                check(trial_id, trial.state)
                write_attrs(session, trial_id, attrs)
                for objective, v in enumerate(values or ()):
                    set_value(session, trial, objective, v)
                trial.state = state
                trial.datetime_complete = datetime.datetime.now()
            pending.pop(trial_id, None)
            return True
        except sqlalchemy.exc.IntegrityError:
            pending.pop(trial_id, None)
            return False
        except TypeError:
            # Optuna's internals changed under us: the slow, public way (rolled back above).
            for key, value in pending.pop(trial_id).items():
                backend.set_trial_user_attr(trial_id, key, value)
            return finish(trial_id, state, values)

    backend.set_trial_state_values = set_trial_state_values  # type: ignore[method-assign]

    def undo() -> None:
        del backend.set_trial_state_values
        pending.clear()

    return defer, undo


def epochs_spent(study: optuna.Study) -> int:
    """Training epochs the study's finished trials spent: one per intermediate value (the
    ``train`` objective reports once per epoch), so pruned and failed trials count what they
    trained before they stopped."""
    return sum(len(t.intermediate_values) for t in study.get_trials(deepcopy=False,
                                                                      states=FINISHED))


class _StopAtEpochs:
    """``[budget] max_epochs``: stop starting trials once the study has spent that many epochs
    (trials running then finish; the budget may be exceeded by what they train)."""

    def __init__(self, max_epochs: int) -> None:
        self.max_epochs = max_epochs

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if epochs_spent(study) >= self.max_epochs:
            study.stop()


def _optimize(plan: Plan, study: optuna.Study, n: int, timeout_s: float | None,
              callbacks: list[Any]) -> None:
    max_epochs = plan.spec.max_epochs
    if max_epochs is not None:
        callbacks = [_StopAtEpochs(max_epochs), *callbacks]
    # Other processes may join a stored study; an in-memory one is this process's alone, and
    # study.optimize's n_trials already stops it.
    shared = not isinstance(study._storage, optuna.storages.InMemoryStorage)
    # Nothing else can see an in-memory study: no worker to record (recover_stale never reads
    # it), and its writes cost nothing to batch.
    undo_stamp = _stamp_new_trials(study, worker_id()) if shared else (lambda: None)
    defer, undo_defer = _attrs_at_finish(study) if shared else (None, lambda: None)
    # What exists before the loop (torch, the data, imported modules) lives through it: kept
    # out of the cyclic collector's scans (gc.freeze), whose full passes over that heap were
    # most of the per-trial cost of cheap samplers; unfrozen after the loop.
    frozen = gc.isenabled() and gc.get_freeze_count() == 0
    if frozen:
        gc.freeze()
    draws = Draws()
    function = make_trial_function(plan, stamped=shared, stop_at_total=shared, defer=defer,
                                   draws=draws)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while n > 0:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            if max_epochs is not None and epochs_spent(study) >= max_epochs:
                break
            calls, forbidden = draws.calls, draws.forbidden
            study.optimize(
                function,
                n_trials=n,
                timeout=left,
                catch=(TrialFailure,),
                callbacks=callbacks or None,  # Optuna reads the trial back for any list
            )
            if draws.streak >= MAX_FORBIDDEN_DRAWS:
                raise forbidden_streak_error(plan.space, draws.streak)
            # A forbidden draw is recorded (PRUNED, with its clause) but is no evaluation: as
            # many trials again, unless the loop was stopped (timeout, study.stop()). Optuna's
            # n_trials counts every trial, so the redraws are rounds of their own.
            if draws.calls - calls < n:
                break
            n = draws.forbidden - forbidden
            if shared and n and _total(study) >= plan.spec.n_trials:
                break  # other processes finished the study meanwhile
    except BaseException as e:
        interrupt = _interrupt_of(e)
        if interrupt is None:
            raise
        if shared:
            _fail_interrupted(plan, study)
        if interrupt is e:
            raise
        raise interrupt from None
    finally:
        undo_defer()
        undo_stamp()
        if frozen:
            gc.unfreeze()


def _interrupt_of(error: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C behind ``error``. Optuna (4.x-5.0) turns a KeyboardInterrupt raised while it
    tells a trial's result (the sampler's ``after_trial``, the storage write) into an
    UnboundLocalError of its own ``_run_trial``, whose ``finally`` reads a variable the
    interrupted ``try`` never set; the interrupt is that error's context."""
    if isinstance(error, KeyboardInterrupt):
        return error
    if isinstance(error, UnboundLocalError) and isinstance(error.__context__, KeyboardInterrupt):
        return error.__context__
    return None


def _fail_interrupted(plan: Plan, study: optuna.Study) -> None:
    """After a Ctrl-C: fail what this process left RUNNING. The trial function fails its own
    trial, but the interrupt can land where Optuna has created the trial and not yet called the
    function (the sampler's ``before_trial``, the heartbeat thread's start) or is telling its
    result; such a trial was left RUNNING until the next run's ``recover_stale``."""
    me = worker_id()
    try:
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if t.system_attrs.get(WORKER_ATTR) == me:
                fail_trial(study._storage, t, "interrupted (Ctrl-C / SIGINT)", describer(plan))
    except Exception as e:  # the next run's recover_stale fails them (this process is gone)
        _log.warning("could not fail the interrupted trials: %s: %s", type(e).__name__, e)


def _worker_main(spec: StudySpec, index: int, quota: int, verbosity: int,
                 resume_at: int = 0) -> None:
    """One process of a ``--workers N`` run (spawned: a fresh interpreter, CUDA-safe)."""
    optuna.logging.set_verbosity(verbosity)
    plan = prepare(spec, worker=index, resume_at=resume_at)
    study = open_study(plan)
    _optimize(plan, study, quota, spec.timeout_s, [])


def _run_optuna(plan: Plan) -> optuna.Study:
    """The local backend: ``study.optimize`` in this process, or in ``workers`` processes that
    share the study through its storage."""
    from nas_hpo._progress import Progress

    spec = plan.spec
    study = open_study(plan)
    failed = recover_stale(study, describer(plan))
    if failed:
        _log.warning("trials %s were left RUNNING by a worker that is gone; marked failed",
                     failed)
    remaining = spec.n_trials - _total(study)
    if remaining <= 0:
        return study
    resume_at = len(study.get_trials(deepcopy=False))
    if resume_at:
        plan = prepare(spec, progress=plan.progress, resume_at=resume_at)
        study.sampler, study.pruner = plan.strategy.sampler, plan.strategy.pruner
    warm_start(plan, study)
    progress = Progress(spec.n_trials, study, enabled=plan.progress)
    if spec.workers == 1:
        # Optuna deep-copies the finished trial for every callback: none when it is silent.
        _optimize(plan, study, remaining, spec.timeout_s, [progress] if progress.enabled else [])
        progress.close()
        return study
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    workers = min(spec.workers, remaining)
    # Each worker runs an exact share of the remaining trials, so N workers never overshoot.
    quotas = [remaining // workers + (i < remaining % workers) for i in range(workers)]
    procs = [ctx.Process(target=_worker_main, args=(spec, i, q, optuna.logging.get_verbosity(), resume_at), name=f"nas-hpo-worker-{i}")
             for i, q in enumerate(quotas)]
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
    progress.poll()
    progress.close()
    bad = [(p.name, p.exitcode) for p in procs if p.exitcode != 0]
    if bad:
        raise RuntimeError(
            "worker process(es) ended with an error: "
            + ", ".join(f"{name} (exit code {code})" for name, code in bad)
            + "; their finished trials are in the storage, their messages above"
        )
    return optuna.load_study(study_name=spec.study_name, storage=study._storage)


BACKENDS: Registry[Callable[[Plan], optuna.Study]] = Registry("backend")
BACKENDS.add("optuna", _run_optuna)


def _run_ray(plan: Plan) -> optuna.Study:
    """The Ray Tune backend (``nas_hpo.backends._ray_runner``), imported on first use."""
    from nas_hpo.backends._ray_runner import run_ray

    return run_ray(plan)


BACKENDS.add("ray", _run_ray)


def run(spec: str | os.PathLike[str] | Mapping[str, Any] | None = None, /, *,
        progress: bool = False, **overrides: Any) -> optuna.Study:
    """Run (or resume) the study described by ``spec`` — a study-file path or a dict with the
    same sections — with ``overrides`` (``space=``, ``objective=``, ``strategy=``,
    ``n_trials=``, ``storage=``, ``study_name=``, ``seed=``, ``backend=``, ...). ``objective``
    may be any callable ``f(config) -> float | tuple``; ``space`` may be a ``SearchSpace``.

    ``n_trials`` is the study's total: a resumed study runs only the trials it still lacks
    (trials failed because their worker died count as trials; forbidden draws, recorded as
    pruned trials with a ``forbidden`` attribute and drawn again, do not). ``progress`` prints
    a progress line to stderr as trials finish.
    """
    plan = prepare(load_spec(spec, **overrides), progress=progress)
    return BACKENDS.entry(plan.spec.backend)(plan)


def best_value_text(values: Any) -> str:
    if values is None:
        return "-"
    if isinstance(values, (list, tuple)):
        return ", ".join(f"{v:.4f}" for v in values)
    return f"{values:.4f}" if isinstance(values, float) and math.isfinite(values) else str(values)
