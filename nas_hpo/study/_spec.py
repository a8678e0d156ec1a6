"""The study description: a TOML file, a dict with the same sections, plus overrides.

Every mistake is reported as a ``SpecError`` that names the file, the section and the key, and
says what is allowed. Names (space, objective, strategy, backend) are checked against the
registries and the options of each named component against the component's own signature, so
that the study fails before its first trial rather than in the middle of it.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from nas_hpo._registry import UnknownNameError
from nas_hpo.study._checks import SpecError, check_options, import_callable, type_ok, type_text
from nas_hpo.study._checks import where as _where

DEFAULT_STORAGE = "sqlite:///nas_hpo.db"
DIRECTIONS = ("maximize", "minimize")
DEFAULT_COST = ("params", "flops", "latency")


@dataclass(frozen=True)
class Named:
    """A ``[space]`` / ``[objective]`` / ``[strategy]`` section: a name and its options (or,
    from Python, an object given directly)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    obj: Any = None


@dataclass(frozen=True)
class StudySpec:
    """A resolved study description (the study file after overrides)."""

    source: str
    study_name: str
    storage: str
    directions: tuple[str, ...] | None
    seed: int
    space: Named
    objective: Named
    strategy: Named
    n_trials: int
    timeout_s: float | None
    backend: str
    #: Worker processes (``optuna`` backend) or simulated workers (``simulated``); ``"auto"``
    #: (the default): ``nas_hpo.study.worker_count`` decides, by the objective's device.
    workers: int | str
    cost_metrics: tuple[str, ...] = DEFAULT_COST
    #: Names of the study's values (default: the objective's), recorded on a
    #: multi-objective study for the dashboard and the reports.
    metric_names: tuple[str, ...] | None = None
    #: Optuna heartbeat interval of RDB storages (0: off; None: 30 s on database servers, off
    #: on SQLite, whose workers share one machine); see ``nas_hpo.study.open_storage``.
    heartbeat_s: int | None = None
    #: Zero-cost proxies scored on every trial's network (``zc_<name>`` user attributes).
    also_score: tuple[str, ...] = ()
    #: Warm start: score this many random architectures with ``warm_start_by`` (a zero-cost
    #: proxy) and enqueue the ``warm_start_top`` best as the first trials of a new study.
    warm_start: int = 0
    warm_start_by: str = "synflow"
    warm_start_top: int | None = None
    #: Evaluate an architecture again although a finished trial at the same fidelity has it
    #: (noisy objectives); otherwise a repeat is answered from the record (``duplicate_of``).
    reevaluate: bool = False
    #: Budget by fidelity spent: stop once the study's trials trained this many epochs in all.
    max_epochs: int | None = None
    #: Budget in simulated seconds: no trial starts once the simulated clock (the
    #: ``simulated`` backend) or the trials' recorded ``simulated_cost`` (elsewhere) reach it.
    max_cost: float | None = None
    #: Stop the study once it holds this many failed trials / once this many trials in a row
    #: failed (a broken objective).
    max_failures: int | None = None
    max_failures_in_a_row: int | None = None
    #: Torch threads of each trial (None: the cores over the trials that run at once).
    threads: int | None = None
    #: Ray backend: cluster address (``None``: start a local Ray instance), resources of one
    #: trial, concurrency cap, retries of a trial whose worker died, Ray scheduler.
    address: str | None = None
    resources_per_trial: dict[str, float] = field(default_factory=lambda: {"cpu": 1.0})
    max_concurrent_trials: int | None = None
    ray_max_failures: int = 1
    scheduler: str | None = None
    ray_dir: str | None = None

    def where(self, section: str, key: str | None = None) -> str:
        return _where(self.source, section, key)


def _at_least(low: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value is None or value >= low else f"must be >= {low:g}, got {value}"

    return check


def _between(low: int, high: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"must be in [{low}, {high}], got {value}"

    return check


def _workers(value: Any) -> str | None:
    if value == "auto" or (isinstance(value, int) and 1 <= value <= 1024):
        return None
    return f'must be an integer in [1, 1024] or "auto", got {value!r}'


def _positive(value: Any) -> str | None:
    return None if value is None or value > 0 else f"must be > 0, got {value}"


def _not_empty(value: Any) -> str | None:
    return None if value.strip() else f"must not be empty, got {value!r}"


def _directions(value: Any) -> str | None:
    if value and all(d in DIRECTIONS for d in value):
        return None
    return f"each direction must be 'maximize' or 'minimize', got {list(value)!r}"


def _names(value: Any) -> str | None:
    if not value or any(not n.strip() for n in value) or len(set(value)) != len(value):
        return f"give one distinct, non-empty name per value, got {list(value)!r}"
    return None


def _cost(value: Any) -> str | None:
    from nas_hpo.cost import METRICS

    unknown = [m for m in value if m not in METRICS]
    return (f"unknown cost metric(s) {unknown!r}; known: {', '.join(METRICS)} "
            "([] for none)") if unknown else None


def _resources(value: Any) -> str | None:
    bad = [(k, v) for k, v in value.items() if not type_ok(v, float) or v < 0]
    return f"{bad[0][0]} must be a number >= 0, got {bad[0][1]!r}" if bad else None


# section -> key -> (type hint, StudySpec field, check of the value or None)
_Key = tuple[Any, str, Callable[[Any], str | None] | None]
_FIXED: dict[str, dict[str, _Key]] = {
    "study": {
        "name": (str, "study_name", _not_empty),
        "storage": (str, "storage", None),
        "directions": (list[str], "directions", _directions),
        "seed": (int, "seed", _at_least(0)),
        "cost": (list[str], "cost_metrics", _cost),
        "metric_names": (list[str], "metric_names", _names),
        "heartbeat_s": (int, "heartbeat_s", _at_least(0)),
    },
    "budget": {
        "n_trials": (int, "n_trials", _at_least(1)),
        "timeout_s": (float | None, "timeout_s", _positive),
        "max_epochs": (int, "max_epochs", _at_least(1)),
        "max_cost": (float, "max_cost", _positive),
        "max_failures": (int, "max_failures", _at_least(1)),
        "max_failures_in_a_row": (int, "max_failures_in_a_row", _at_least(1)),
    },
    "backend": {
        "name": (str, "backend", None),
        "workers": (int | str, "workers", _workers),
        "threads": (int, "threads", _between(1, 1024)),
        "address": (str, "address", None),
        "resources_per_trial": (dict, "resources_per_trial", _resources),
        "max_concurrent_trials": (int, "max_concurrent_trials", _at_least(1)),
        "max_failures": (int, "ray_max_failures", _at_least(0)),
        "scheduler": (str, "scheduler", None),
        "ray_dir": (str, "ray_dir", None),
    },
}
_NAMED = ("space", "objective", "strategy")
# Keys of the named sections that belong to the engine (any objective / strategy has them).
_ENGINE_KEYS: dict[str, dict[str, _Key]] = {
    "objective": {"also_score": (list[str], "also_score", None)},
    "strategy": {
        "warm_start": (int, "warm_start", _at_least(0)),
        "warm_start_by": (str, "warm_start_by", None),
        "warm_start_top": (int, "warm_start_top", _at_least(1)),
        "reevaluate": (bool, "reevaluate", None),
    },
}
SECTIONS = (*_FIXED, *_NAMED)

# Overrides accepted by run() and the CLI, and the section/key each replaces.
OVERRIDES: dict[str, tuple[str, str]] = {
    "study_name": ("study", "name"),
    "storage": ("study", "storage"),
    "directions": ("study", "directions"),
    "seed": ("study", "seed"),
    "cost": ("study", "cost"),
    "n_trials": ("budget", "n_trials"),
    "timeout_s": ("budget", "timeout_s"),
    "max_epochs": ("budget", "max_epochs"),
    "max_cost": ("budget", "max_cost"),
    "backend": ("backend", "name"),
    "workers": ("backend", "workers"),
    "threads": ("backend", "threads"),
    "address": ("backend", "address"),
    "max_concurrent_trials": ("backend", "max_concurrent_trials"),
    "space": ("space", "name"),
    "objective": ("objective", "name"),
    "strategy": ("strategy", "name"),
}


def read_toml(path: Path, what: str = "study file") -> dict[str, Any]:
    """The TOML file ``path`` (a study or benchmark file, ``what`` in messages) as a dict; a
    missing, unreadable or malformed file is a ``SpecError`` naming it."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SpecError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: a folder, not a {what}") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: cannot read the {what}: {e}") from None


def _take(values: dict[str, Any], body: dict[str, Any], keys: Mapping[str, _Key],
          place: Callable[[str], str]) -> None:
    """Check the ``keys`` of ``body`` (type, then value) into ``values``; the keys are removed
    from ``body``."""
    for key, (hint, attr, check) in keys.items():
        if key not in body:
            continue
        value = body.pop(key)
        if not type_ok(value, hint):
            raise SpecError(f"{place(key)}: expected {type_text(hint)}, got {value!r}")
        problem = check(value) if check else None
        if problem:
            raise SpecError(f"{place(key)}: {problem}")
        values[attr] = value


def _raw(spec: str | os.PathLike[str] | Mapping[str, Any] | None) -> tuple[str, dict]:
    if spec is None:
        return "<arguments>", {}
    if isinstance(spec, Mapping):
        return "<dict>", {k: dict(v) if isinstance(v, Mapping) else v for k, v in spec.items()}
    if not isinstance(spec, (str, os.PathLike)):
        raise SpecError(f"a study is a study file's path or a dict of sections, got "
                        f"{type(spec).__name__}")
    return str(spec), read_toml(Path(spec))


def load_spec(spec: str | os.PathLike[str] | Mapping[str, Any] | None,
              **overrides: Any) -> StudySpec:
    """Read a study file or dict, apply ``overrides`` (``None`` values are ignored) and check
    everything that can be checked before the study starts."""
    source, raw = _raw(spec)
    for section, body in raw.items():
        if section not in SECTIONS:
            raise SpecError(f"{source}: unknown section [{section}]; allowed: "
                            + ", ".join(f"[{s}]" for s in SECTIONS))
        if not isinstance(body, dict):
            raise SpecError(f"{source}: [{section}] must be a table, got {body!r}")
    raw = {k: dict(v) for k, v in raw.items()}

    objects: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in OVERRIDES:
            raise SpecError(f"unknown override {key!r}; allowed: {', '.join(OVERRIDES)}")
        section, skey = OVERRIDES[key]
        if section in _NAMED and not isinstance(value, str):
            objects[section] = value  # a SearchSpace or a callable given from Python
            continue
        if section in _NAMED and raw.get(section, {}).get("name") != value:
            # Another component: the file's options were meant for the old one.
            raw[section] = {}
        raw.setdefault(section, {})[skey] = value

    values: dict[str, Any] = {}
    for section, keys in _FIXED.items():
        body = dict(raw.get(section, {}))
        _take(values, body, keys, lambda key, s=section: _where(source, s, key))
        if body:
            key = next(iter(body))
            raise SpecError(f"{_where(source, section, key)}: unknown key; allowed: "
                            + ", ".join(keys))

    storage = values.get("storage", DEFAULT_STORAGE)
    from nas_hpo.study._storage import MEMORY, check_url

    problem = check_url(storage)
    if problem:
        raise SpecError(f"{_where(source, 'study', 'storage')}: {problem}")
    workers = values.get("workers", "auto")
    if values.get("backend") == "simulated" and workers == "auto":
        workers = 1  # simulated workers are the benchmark's choice, not the machine's
    if storage == MEMORY and workers != "auto" and workers > 1 \
            and values.get("backend") != "simulated":
        raise SpecError(f"{_where(source, 'backend', 'workers')}: {workers} worker processes "
                        f"cannot share the in-memory storage {MEMORY}; use a file or database")

    named: dict[str, Named] = {}
    defaults = {"strategy": "tpe"}
    for section in _NAMED:
        body = dict(raw.get(section, {}))
        if section in objects:
            obj = objects[section]
            label = getattr(obj, "name", None) or getattr(obj, "__name__", None)
            named[section] = Named(str(label or type(obj).__name__), {}, obj)
            continue
        name = body.pop("name", defaults.get(section))
        if name is None:
            article = "an" if section[0] in "aeiou" else "a"
            raise SpecError(f"{_where(source, section, 'name')}: missing; every study needs "
                            f"{article} {section}")
        if not isinstance(name, str):
            raise SpecError(f"{_where(source, section, 'name')}: expected a string, got {name!r}")
        # Keys the engine handles for every component, not options of the component.
        _take(values, body, _ENGINE_KEYS.get(section, {}),
              lambda key, s=section: _where(source, s, key))
        named[section] = Named(name, body)

    warm_start = values.get("warm_start", 0)
    warm_top = values.get("warm_start_top")
    if warm_top is not None and not warm_top <= max(warm_start, 1):
        raise SpecError(f"{_where(source, 'strategy', 'warm_start_top')}: must be between 1 and "
                        f"warm_start ({warm_start}), got {warm_top}")
    also_score = tuple(values.get("also_score", ()))
    warm_by = values.get("warm_start_by", "synflow")
    _check_proxies(source, also_score, warm_by if warm_start else None)
    timeout = values.get("timeout_s")
    if timeout is not None and not math.isfinite(timeout):
        raise SpecError(f"{_where(source, 'budget', 'timeout_s')}: must be finite, got {timeout}")
    max_cost = values.get("max_cost")
    if max_cost is not None and not math.isfinite(max_cost):
        raise SpecError(f"{_where(source, 'budget', 'max_cost')}: must be finite, got {max_cost}")
    directions = values.get("directions")
    result = StudySpec(
        source=source,
        study_name=values.get("study_name", "nas-hpo"),
        storage=storage,
        directions=None if directions is None else tuple(directions),
        seed=values.get("seed", 0),
        space=named["space"],
        objective=named["objective"],
        strategy=named["strategy"],
        n_trials=values.get("n_trials", 30),
        timeout_s=None if timeout is None else float(timeout),
        backend=values.get("backend", "optuna"),
        workers=workers,
        cost_metrics=tuple(values.get("cost_metrics", DEFAULT_COST)),
        metric_names=(tuple(values["metric_names"]) if "metric_names" in values else None),
        heartbeat_s=values.get("heartbeat_s"),
        also_score=also_score,
        warm_start=warm_start,
        warm_start_by=warm_by,
        warm_start_top=warm_top,
        reevaluate=values.get("reevaluate", False),
        max_epochs=values.get("max_epochs"),
        max_cost=None if values.get("max_cost") is None else float(values["max_cost"]),
        max_failures=values.get("max_failures"),
        max_failures_in_a_row=values.get("max_failures_in_a_row"),
        threads=values.get("threads"),
        address=values.get("address"),
        resources_per_trial={str(k): float(v) for k, v in
                             values.get("resources_per_trial", {"cpu": 1}).items()},
        max_concurrent_trials=values.get("max_concurrent_trials"),
        ray_max_failures=values.get("ray_max_failures", 1),
        scheduler=values.get("scheduler"),
        ray_dir=values.get("ray_dir"),
    )
    _check_names(result)
    return result


def _check_proxies(source: str, also_score: tuple[str, ...], warm_by: str | None) -> None:
    from nas_hpo import proxies

    # "vote" ranks a population, not one network: it cannot score a single trial.
    known = proxies.names()
    for section, key, names in (("objective", "also_score", also_score),
                                ("strategy", "warm_start_by", (warm_by,) if warm_by else ())):
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SpecError(f"{_where(source, section, key)}: unknown proxy {unknown[0]!r}; "
                            f"known: {', '.join(known)}")


def _check_names(spec: StudySpec) -> None:
    from nas_hpo import backends, objectives, spaces, strategies

    for section, registry, skip in (("space", spaces, 0), ("objective", objectives, 0),
                                    ("strategy", strategies, 1)):
        item: Named = getattr(spec, section)
        if item.obj is not None:
            continue
        if section != "strategy" and ":" in item.name:
            fn = import_callable(item.name, spec.where(section, "name"))
            if section == "space":
                check_options(fn, item.options, spec.where(section))
            elif item.options:
                key = next(iter(item.options))
                raise SpecError(f"{spec.where(section, key)}: a Python callable objective "
                                f"({item.name}) takes no options")
            continue
        try:
            fn = registry.factory(item.name)
        except UnknownNameError as e:
            raise SpecError(f"{spec.where(section, 'name')}: {e}") from None
        check_options(fn, item.options, spec.where(section), skip=skip)
    if spec.backend not in backends.names():
        raise SpecError(f"{spec.where('backend', 'name')}: unknown backend {spec.backend!r}; "
                        f"registered: {', '.join(backends.names())}")
