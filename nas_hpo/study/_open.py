"""Opening a study: create it, or load it to resume; a study of the same name made for another
space or other directions is an error rather than a silent mix."""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable
from typing import Any

import optuna

from nas_hpo.study._checks import SpecError
from nas_hpo.study._internals import counted
from nas_hpo.study._plan import Plan
from nas_hpo.study._recovery import recover_stale
from nas_hpo.study._seeds import trial_seed
from nas_hpo.study._storage import StorageError, describe, open_storage
from nas_hpo.study._warm import warm_start

__all__ = ["describer", "open_study", "resume", "storage_of"]

_log = logging.getLogger("nas_hpo")


def storage_of(plan: Plan) -> optuna.storages.BaseStorage:
    """The study's storage, opened with its heartbeat (off on SQLite unless asked for)."""
    spec = plan.spec
    heartbeat = spec.heartbeat_s
    if heartbeat is None:
        heartbeat = 0 if spec.storage.startswith("sqlite:") else 30
    try:
        return open_storage(spec.storage, heartbeat_s=heartbeat)
    except StorageError as e:
        raise SpecError(f"{spec.where('study', 'storage')}: {e}") from None


def open_study(plan: Plan, storage: optuna.storages.BaseStorage | None = None) -> optuna.Study:
    """Create the study, or load it to resume. A new study records its space, objective,
    strategy and versions, and the names of its values where it has several
    (``set_metric_names``)."""
    spec = plan.spec
    study = optuna.create_study(
        study_name=spec.study_name,
        storage=storage if storage is not None else storage_of(plan),
        sampler=plan.strategy.sampler,
        pruner=plan.strategy.pruner,
        directions=list(plan.directions),
        load_if_exists=True,
    )
    where = describe(spec.storage)
    wanted = [optuna.study.StudyDirection[d.upper()] for d in plan.directions]
    if list(study.directions) != wanted:
        raise SpecError(
            f"{spec.where('study', 'name')}: study {spec.study_name!r} in {where} has "
            f"directions {[d.name.lower() for d in study.directions]}, not {list(plan.directions)}"
        )
    recorded = study.user_attrs.get("space")
    space_name = plan.space.name or spec.space.name
    if recorded is not None and recorded != space_name:
        raise SpecError(
            f"{spec.where('study', 'name')}: study {spec.study_name!r} in {where} was run "
            f"on space {recorded!r}, not {space_name!r}; choose another study name"
        )
    if recorded is None:
        from nas_hpo import __version__

        study.set_user_attr("space", space_name)
        study.set_user_attr("objective", spec.objective.name)
        study.set_user_attr("strategy", spec.strategy.name)
        study.set_user_attr("nas_hpo_version", __version__)
        study.set_user_attr("versions", dict(_versions()))
    names = plan.metric_names
    if names and len(names) == len(plan.directions) > 1 and not study.metric_names:
        # A multi-objective study's values by name (the dashboard's axes, the report's plots
        # and best.csv); one value keeps Optuna's "value" columns.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(names))
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

    def describe_trial(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
        known: dict[str, Any] = {"seed": trial_seed(plan.spec.seed, t.number)}
        try:
            plan.space.validate(t.params)
            known["arch"] = plan.space.arch_key(t.params)
        except Exception:  # no or partial parameters: no architecture yet
            pass
        return known

    return describe_trial


def resume(plan: Plan, gone: str = "worker") -> tuple[optuna.Study, int]:
    """Open the study to run it in this process: created or loaded, the trials a ``gone``
    process left RUNNING failed, and where trials remain, the warm start enqueued. Returns the
    study and how many trials it still lacks (0: nothing to run)."""
    study = open_study(plan)
    failed = recover_stale(study, describer(plan))
    if failed:
        _log.warning("trials %s were left RUNNING by a %s that is gone; marked failed", failed,
                     gone)
    remaining = plan.spec.n_trials - counted(study)
    if remaining > 0:
        warm_start(plan, study)
    return study, max(remaining, 0)
