"""The study description: a TOML file, a dict with the same sections, plus overrides.

Every mistake is reported as a ``SpecError`` that names the file, the section and the key, and
says what is allowed. Names (space, objective, strategy, backend) are checked against the
registries and the options of each named component against the component's own signature, so
that the study fails before its first trial rather than in the middle of it.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from nas_hpo._registry import UnknownNameError

DEFAULT_STORAGE = "sqlite:///nas_hpo.db"
DIRECTIONS = ("maximize", "minimize")


class SpecError(ValueError):
    """A study description that cannot run, with the place of the mistake in its message."""


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
    workers: int
    cost_metrics: tuple[str, ...] = ("params", "flops", "latency")
    #: Optuna heartbeat interval of RDB storages (0: off; None: 30 s on database servers, off
    #: on SQLite, whose workers share one machine); see ``nas_hpo._storage``.
    heartbeat_s: int | None = None
    #: Zero-cost proxies scored on every trial's network (``zc_<name>`` user attributes).
    also_score: tuple[str, ...] = ()
    #: Warm start: score this many random architectures with ``warm_start_by`` (a zero-cost
    #: proxy) and enqueue the ``warm_start_top`` best as the first trials of a new study.
    warm_start: int = 0
    warm_start_by: str = "synflow"
    warm_start_top: int | None = None
    #: Budget by fidelity spent: stop once the study's trials trained this many epochs in all.
    max_epochs: int | None = None
    #: Ray backend: cluster address (``None``: start a local Ray instance), resources of one
    #: trial, concurrency cap, retries of a trial whose worker died, Ray scheduler.
    address: str | None = None
    resources_per_trial: dict[str, float] = field(default_factory=lambda: {"cpu": 1.0})
    max_concurrent_trials: int | None = None
    max_failures: int = 1
    scheduler: str | None = None
    ray_dir: str | None = None

    def where(self, section: str, key: str | None = None) -> str:
        return _where(self.source, section, key)


def _where(source: str, section: str, key: str | None = None) -> str:
    return f"{source}: [{section}]" + (f" {key}" if key else "")


# (section, key) -> (type check, description, StudySpec field)
_FIXED: dict[str, dict[str, tuple[Any, str]]] = {
    "study": {
        "name": (str, "study_name"),
        "storage": (str, "storage"),
        "directions": (list[str], "directions"),
        "seed": (int, "seed"),
        "cost": (list[str], "cost_metrics"),
        "heartbeat_s": (int, "heartbeat_s"),
    },
    "budget": {
        "n_trials": (int, "n_trials"),
        "timeout_s": (float | None, "timeout_s"),
        "max_epochs": (int, "max_epochs"),
    },
    "backend": {
        "name": (str, "backend"),
        "workers": (int, "workers"),
        "address": (str, "address"),
        "resources_per_trial": (dict, "resources_per_trial"),
        "max_concurrent_trials": (int, "max_concurrent_trials"),
        "max_failures": (int, "max_failures"),
        "scheduler": (str, "scheduler"),
        "ray_dir": (str, "ray_dir"),
    },
}
_NAMED = ("space", "objective", "strategy")
# Keys of the named sections that belong to the runner (any objective / strategy has them).
_RUNNER_KEYS: dict[str, dict[str, tuple[Any, str]]] = {
    "objective": {"also_score": (list[str], "also_score")},
    "strategy": {
        "warm_start": (int, "warm_start"),
        "warm_start_by": (str, "warm_start_by"),
        "warm_start_top": (int, "warm_start_top"),
    },
}
SECTIONS = (*_FIXED, *_NAMED)

# Overrides accepted by run() and the CLI, and the section/key each replaces.
OVERRIDES: dict[str, tuple[str, str]] = {
    "study_name": ("study", "name"),
    "storage": ("study", "storage"),
    "directions": ("study", "directions"),
    "seed": ("study", "seed"),
    "n_trials": ("budget", "n_trials"),
    "timeout_s": ("budget", "timeout_s"),
    "max_epochs": ("budget", "max_epochs"),
    "backend": ("backend", "name"),
    "workers": ("backend", "workers"),
    "address": ("backend", "address"),
    "max_concurrent_trials": ("backend", "max_concurrent_trials"),
    "space": ("space", "name"),
    "objective": ("objective", "name"),
    "strategy": ("strategy", "name"),
}


def type_ok(value: Any, hint: Any) -> bool:
    """Whether a TOML / Python value fits a type hint (ints are accepted for floats, bools are
    not accepted for numbers)."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None) or hint is None:
        return value is None
    if origin in (list, tuple, typing.Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = typing.get_args(hint)
        if not args:
            return True
        inner = args[0]
        return all(type_ok(v, inner) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _type_text(hint: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        hint, str(hint).replace("typing.", "")
    )


def check_options(fn: Callable[..., Any], options: Mapping[str, Any], where: str,
                  skip: int = 0) -> None:
    """Check ``options`` against ``fn``'s keyword parameters: unknown keys and wrong types are
    ``SpecError``s naming the key and what is allowed. ``skip`` leading positional parameters
    are the ones the framework passes."""
    target = fn.__init__ if inspect.isclass(fn) else fn  # type: ignore[misc]
    sig = inspect.signature(target)
    params = list(sig.parameters.values())
    if inspect.isclass(fn):
        params = params[1:]  # self
    params = params[skip:]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    allowed = {p.name: p for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: check names only
        hints = {}
    for key, value in options.items():
        if key not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            raise SpecError(f"{where} {key}: unknown key; allowed: {names}")
        hint = hints.get(key, allowed[key].annotation)
        if isinstance(hint, str):
            continue
        if not type_ok(value, hint):
            raise SpecError(f"{where} {key}: expected {_type_text(hint)}, got {value!r}")


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SpecError(f"{path}: no such study file") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML: {e}") from None


def load_spec(spec: str | os.PathLike[str] | Mapping[str, Any] | None,
              **overrides: Any) -> StudySpec:
    """Read a study file or dict, apply ``overrides`` (``None`` values are ignored) and check
    everything that can be checked before the study starts."""
    if spec is None:
        raw: dict[str, Any] = {}
        source = "<arguments>"
    elif isinstance(spec, Mapping):
        raw = {k: dict(v) if isinstance(v, Mapping) else v for k, v in spec.items()}
        source = "<dict>"
    else:
        source = str(spec)
        raw = _read(Path(spec))
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
        body = raw.get(section, {})
        for key, value in body.items():
            if key not in keys:
                raise SpecError(f"{_where(source, section, key)}: unknown key; allowed: "
                                + ", ".join(keys))
            hint, attr = keys[key]
            if not type_ok(value, hint):
                raise SpecError(
                    f"{_where(source, section, key)}: expected {_type_text(hint)}, got {value!r}"
                )
            values[attr] = value

    directions = values.get("directions")
    if directions is not None:
        directions = tuple(directions)
        bad = [d for d in directions if d not in DIRECTIONS]
        if bad or not directions:
            raise SpecError(f"{_where(source, 'study', 'directions')}: each direction must be "
                            f"'maximize' or 'minimize', got {list(directions)!r}")
    n_trials = values.get("n_trials", 30)
    if n_trials < 1:
        raise SpecError(f"{_where(source, 'budget', 'n_trials')}: must be >= 1, got {n_trials}")
    timeout = values.get("timeout_s")
    if timeout is not None and timeout <= 0:
        raise SpecError(f"{_where(source, 'budget', 'timeout_s')}: must be > 0, got {timeout}")
    max_epochs = values.get("max_epochs")
    if max_epochs is not None and max_epochs < 1:
        raise SpecError(f"{_where(source, 'budget', 'max_epochs')}: must be >= 1, got {max_epochs}")
    workers = values.get("workers", 1)
    if workers < 1:
        raise SpecError(f"{_where(source, 'backend', 'workers')}: must be >= 1, got {workers}")

    storage = values.get("storage", DEFAULT_STORAGE)
    from nas_hpo._storage import MEMORY, StorageError, journal_path

    try:
        journal_path(storage)
    except StorageError as e:
        raise SpecError(f"{_where(source, 'study', 'storage')}: {e}") from None
    if storage != MEMORY and not storage.startswith("journal:") and "://" not in storage:
        raise SpecError(f"{_where(source, 'study', 'storage')}: {storage!r} is not a storage URL; "
                        "use sqlite:///file.db, postgresql://user@host/db, journal:file.log or "
                        f"{MEMORY}")
    if storage == MEMORY and workers > 1:
        raise SpecError(f"{_where(source, 'backend', 'workers')}: {workers} worker processes "
                        f"cannot share the in-memory storage {MEMORY}; use a file or database")
    heartbeat_s = values.get("heartbeat_s")
    if heartbeat_s is not None and heartbeat_s < 0:
        raise SpecError(f"{_where(source, 'study', 'heartbeat_s')}: must be >= 0 (0: off), "
                        f"got {heartbeat_s}")
    resources = values.get("resources_per_trial", {"cpu": 1})
    for key, amount in resources.items():
        if not type_ok(amount, float) or amount < 0:
            raise SpecError(f"{_where(source, 'backend', 'resources_per_trial')}: {key} must be "
                            f"a number >= 0, got {amount!r}")
    resources = {str(k): float(v) for k, v in resources.items()}
    for key in ("max_concurrent_trials", "max_failures"):
        value = values.get(key)
        if value is not None and value < (1 if key == "max_concurrent_trials" else 0):
            raise SpecError(f"{_where(source, 'backend', key)}: must be >= "
                            f"{1 if key == 'max_concurrent_trials' else 0}, got {value}")

    cost_metrics = tuple(values.get("cost_metrics", ("params", "flops", "latency")))
    from nas_hpo.cost import METRICS

    unknown = [m for m in cost_metrics if m not in METRICS]
    if unknown:
        raise SpecError(f"{_where(source, 'study', 'cost')}: unknown cost metric(s) "
                        f"{unknown!r}; known: {', '.join(METRICS)}")

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
        for key, (hint, attr) in _RUNNER_KEYS.get(section, {}).items():
            # Keys the runner handles for every component, not options of the component.
            if key in body:
                value = body.pop(key)
                if not type_ok(value, hint):
                    raise SpecError(f"{_where(source, section, key)}: expected "
                                    f"{_type_text(hint)}, got {value!r}")
                values[attr] = value
        named[section] = Named(name, body)

    also_score = tuple(values.get("also_score", ()))
    warm_start = values.get("warm_start", 0)
    if warm_start < 0:
        raise SpecError(f"{_where(source, 'strategy', 'warm_start')}: must be >= 0, got "
                        f"{warm_start}")
    warm_top = values.get("warm_start_top")
    if warm_top is not None and not 1 <= warm_top <= max(warm_start, 1):
        raise SpecError(f"{_where(source, 'strategy', 'warm_start_top')}: must be between 1 and "
                        f"warm_start ({warm_start}), got {warm_top}")
    warm_by = values.get("warm_start_by", "synflow")
    if also_score or warm_start:
        from nas_hpo.objectives import zero_cost

        for key, names in (("also_score", also_score), ("warm_start_by", (warm_by,))):
            section = "objective" if key == "also_score" else "strategy"
            # "vote" ranks a population, not one network: it cannot score a single trial.
            known = [n for n in zero_cost.PROXIES if n != "vote"]
            unknown = [n for n in names if n not in known]
            if unknown:
                raise SpecError(f"{_where(source, section, key)}: unknown proxy "
                                f"{unknown[0]!r}; known: {', '.join(known)}")
    result = StudySpec(
        source=source,
        study_name=values.get("study_name", "nas-hpo"),
        storage=storage,
        directions=directions,
        seed=values.get("seed", 0),
        space=named["space"],
        objective=named["objective"],
        strategy=named["strategy"],
        n_trials=n_trials,
        timeout_s=None if timeout is None else float(timeout),
        backend=values.get("backend", "optuna"),
        workers=workers,
        cost_metrics=cost_metrics,
        heartbeat_s=heartbeat_s,
        max_epochs=max_epochs,
        also_score=also_score,
        warm_start=warm_start,
        warm_start_by=warm_by,
        warm_start_top=warm_top,
        address=values.get("address"),
        resources_per_trial=resources,
        max_concurrent_trials=values.get("max_concurrent_trials"),
        max_failures=values.get("max_failures", 1),
        scheduler=values.get("scheduler"),
        ray_dir=values.get("ray_dir"),
    )
    _check_names(result)
    return result


def _check_names(spec: StudySpec) -> None:
    from nas_hpo import objectives, spaces, strategies
    from nas_hpo._runner import BACKENDS

    for section, registry, skip in (("space", spaces, 0), ("objective", objectives, 0),
                                    ("strategy", strategies, 1)):
        item: Named = getattr(spec, section)
        if item.obj is not None:
            continue
        if section == "objective" and ":" in item.name:
            if item.options:
                key = next(iter(item.options))
                raise SpecError(f"{spec.where(section, key)}: a Python callable objective "
                                f"({item.name}) takes no options")
            continue
        try:
            fn = registry.factory(item.name)
        except UnknownNameError as e:
            raise SpecError(f"{spec.where(section, 'name')}: {e}") from None
        check_options(fn, item.options, spec.where(section), skip=skip)
    if spec.backend not in BACKENDS:
        raise SpecError(f"{spec.where('backend', 'name')}: unknown backend {spec.backend!r}; "
                        f"registered: {', '.join(BACKENDS.names())}")


def import_callable(ref: str, where: str) -> Callable[..., Any]:
    """``"package.module:function"`` → the function. As with ``uvicorn main:app``, modules in
    the current directory are importable (a console script's ``sys.path`` lacks it)."""
    module_name, _, attr = ref.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise SpecError(f"{where}: cannot import {module_name!r} ({e})") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SpecError(f"{where}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise SpecError(f"{where}: {ref!r} is not callable")
    return obj
