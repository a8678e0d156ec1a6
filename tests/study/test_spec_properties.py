"""Property tests of the study description: whatever malformed study a user writes — wrong
types, unknown keys and sections, numbers out of range, sections that are not tables — the
outcome is a ``SpecError`` naming a section and a key (or the study runs), never another
exception."""

from __future__ import annotations

import copy
import inspect
import math
import os
import tempfile

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import nas_hpo
from nas_hpo import objectives, strategies
from nas_hpo.study import SpecError, load_spec, prepare
from nas_hpo.study._spec import _ENGINE_KEYS, _FIXED

BASE = {
    "study": {"name": "h", "storage": ":memory:", "seed": 0, "cost": ["params"]},
    "space": {"name": "resnet_blocks", "base_width": 4},
    "objective": {"name": "cost", "metrics": ["params"]},
    "strategy": {"name": "tpe", "n_startup_trials": 2},
    "budget": {"n_trials": 2},
    "backend": {"name": "optuna"},
}
KEYS = {section: list(keys) for section, keys in _FIXED.items()}
KEYS["space"] = ["base_width", "width_mult"]
KEYS["objective"] = ["metrics", "dataset", "input_shape", "num_classes", "batch_size", "device",
                     "warmup", "repeats", *_ENGINE_KEYS["objective"]]
KEYS["strategy"] = [*inspect.signature(strategies.factory("tpe")).parameters][1:] + list(
    _ENGINE_KEYS["strategy"])
NAMES = ("study", "budget", "backend", "space", "objective", "strategy")

VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**15),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
    st.lists(st.one_of(st.integers(-5, 5), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(-3, 3), max_size=2),
)
OUT_OF_RANGE = st.one_of(st.integers(-10**6, 0), st.sampled_from([math.nan, math.inf, -math.inf,
                                                                   -1e300, 1e300]))


@st.composite
def mutation(draw: st.DrawFn):
    section = draw(st.sampled_from(NAMES))
    kind = draw(st.sampled_from(["wrong value", "unknown key", "out of range", "not a table",
                                 "unknown section"]))
    if kind == "unknown section":
        return (draw(st.text(min_size=1, max_size=6)), None, {"x": 1})
    if kind == "not a table":
        return (section, None, draw(VALUES))
    if kind == "unknown key":
        return (section, "zz_" + draw(st.text(max_size=4)), draw(VALUES))
    key = draw(st.sampled_from(KEYS[section]))
    if key in ("name", "storage", "ray_dir", "address"):  # nothing is started or written
        return (section, key, draw(st.sampled_from([3, "", None, [1], "ray_no_such"])))
    return (section, key, draw(OUT_OF_RANGE if kind == "out of range" else VALUES))


def _apply(spec: dict, changes) -> dict:
    spec = copy.deepcopy(spec)
    for section, key, value in changes:
        if key is None:
            spec[section] = value
        elif isinstance(spec.get(section), dict):
            spec[section][key] = value
    return spec


def _named_a_place(error: SpecError, spec: dict) -> bool:
    text = str(error)
    return any(f"[{s}]" in text for s in spec) or "unknown section" in text or "must be a table" in text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation(), min_size=1, max_size=3))
def test_a_malformed_study_is_a_spec_error_naming_a_key_or_it_runs(changes):
    spec = _apply(BASE, changes)
    folder = tempfile.mkdtemp()
    here = os.getcwd()
    os.chdir(folder)  # a storage path drawn relative to it lands here
    try:
        try:
            loaded = load_spec(spec)
            study = nas_hpo.run(spec, n_trials=min(loaded.n_trials, 2), timeout_s=60)
        except SpecError as e:
            assert _named_a_place(e, spec), str(e)
            event("refused")
            return
        event("accepted and run")
        # Accepted: then it ran, every trial recorded with its state (a warm start may
        # leave queued trials the budget did not reach).
        assert all(t.state.name in ("COMPLETE", "FAIL", "PRUNED", "WAITING")
                   for t in study.trials)
        assert all("fail_reason" in t.user_attrs for t in study.trials if t.state.name == "FAIL")
    finally:
        os.chdir(here)


OBJECTIVE_KEYS = {name: [p for p in inspect.signature(objectives.factory(name)).parameters]
                  for name in objectives.names()}


@st.composite
def objective_section(draw: st.DrawFn):
    name = draw(st.sampled_from(sorted(OBJECTIVE_KEYS)))
    section = {"name": name, **objectives.REGISTRY.meta(name).get("test_options", {})}
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()) and OBJECTIVE_KEYS[name]:
            key = draw(st.sampled_from(OBJECTIVE_KEYS[name]))
            if key in ("path", "data_dir", "cache_dir"):
                value = draw(st.sampled_from([3, "", "/no/such/file.csv", None]))
            else:
                value = draw(st.one_of(VALUES, OUT_OF_RANGE))
        else:
            key, value = "zz_" + draw(st.text(max_size=4)), draw(VALUES)
        section[key] = value
    return section


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objective_section())
def test_malformed_options_of_every_objective_are_a_spec_error_naming_the_key(section):
    spec = {**copy.deepcopy(BASE), "objective": section}
    try:
        prepare(load_spec(spec))
    except SpecError as e:
        assert "[objective]" in str(e), str(e)
        event("refused")
        return
    event("accepted")
