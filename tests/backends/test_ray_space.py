"""The Ray Tune adapter: a real local Ray runs ``tune.Tuner`` on a conditional space with a
forbidden clause, and the trainable only ever sees valid configs of exactly the active params."""

from __future__ import annotations

import importlib
import inspect
import json
import math
import subprocess
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import optuna
import pytest
import ray
import ray._private.ray_constants as ray_constants
from optuna.trial import TrialState
from ray import tune

import nas_hpo.backends._ray as ray_backend
from nas_hpo.backends import tune_search, valid_only
from nas_hpo.space import (
    Categorical,
    Float,
    ForbiddenAnd,
    ForbiddenEquals,
    ForbiddenIn,
    GreaterThan,
    Integer,
    SearchSpace,
)

OPS = ["conv", "pool", "skip"]


def make_space() -> SearchSpace:
    """Depth 1-3 with one op per active layer, and two clauses a random draw hits about one time
    in three: a shallow net may not start with a skip, and two pools may not follow each other
    (a clause on a conditional parameter). ``cell/act`` has a "/" in its name on purpose: Ray's
    stock OptunaSearch would nest it as ``{"cell": {"act": ...}}``."""
    return SearchSpace(
        [Integer("depth", 1, 3)]
        + [Categorical(f"op_{k}", OPS) for k in range(1, 4)]
        + [Categorical("cell/act", ["relu", "gelu"]), Float("lr", 1e-4, 1e-1, log=True)],
        {f"op_{k}": GreaterThan("depth", k - 1) for k in range(2, 4)},
        [
            ForbiddenAnd(ForbiddenIn("depth", [1, 2]), ForbiddenEquals("op_1", "skip")),
            ForbiddenAnd(ForbiddenEquals("op_1", "pool"), ForbiddenEquals("op_2", "pool")),
        ],
        name="toy_conditional",
    )


def score(config: dict[str, Any]) -> float:
    """A cheap deterministic objective with some signal for the sampler."""
    return config["depth"] + (config["op_1"] == "conv") - abs(math.log10(config["lr"]) + 2)


def active_names(space: SearchSpace, config: dict[str, Any]) -> set[str]:
    """The names active under ``config``, walked independently of ``validate``."""
    seen: dict[str, Any] = {}
    for name in space.order:
        if space.is_active(name, seen) and name in config:
            seen[name] = config[name]
    return {n for n in space.order if space.is_active(n, seen)}


def record_config(config: dict[str, Any]) -> dict[str, Any]:
    """Trainable: report the score and the config exactly as received (JSON keeps it flat and
    safe from Ray's flattening of nested result dicts)."""
    return {"score": score(config), "received": json.dumps(config, sort_keys=True)}


def as_keys(configs: Iterable[dict[str, Any]]) -> list[str]:
    """Configs as a sorted list of canonical strings, to compare collections of dicts."""
    return sorted(json.dumps(c, sort_keys=True) for c in configs)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A 2-CPU Ray on loopback only, shut down after the module.

    On Linux Ray replaces 127.0.0.1 (even an explicit ``_node_ip_address``) by the address that
    routes outwards and binds its gRPC servers there; with Ray's single-machine mode (the one it
    uses on macOS / Windows) the node address, and with it every listener, is 127.0.0.1. The
    constant is read when ``ray`` is imported, hence the attribute patch as well as the
    environment for the processes Ray spawns.
    """
    assert not ray.is_initialized(), "another test left Ray running"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        mp.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
            yield
        finally:
            ray.shutdown()


def test_tuner_only_passes_valid_configs_to_the_trainable(local_ray: None, tmp_path) -> None:
    space = make_space()
    num_samples = 24
    searcher = tune_search(space, metric="score", mode="max", seed=0)
    tuner = tune.Tuner(
        valid_only(record_config, space),
        param_space={},
        tune_config=tune.TuneConfig(
            search_alg=searcher, num_samples=num_samples, reuse_actors=True
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="valid_only", verbose=0),
    )
    results = tuner.fit()

    assert results.errors == []
    received = [json.loads(r.metrics["received"]) for r in results]
    assert len(received) == num_samples
    for config in received:
        space.validate(config)  # raises, naming the parameter, on any invalid config
        assert set(config) == active_names(space, config), config
        assert "cell/act" in config  # flat, not nested under "cell"

    # The forbidden path ran: those draws are PRUNED Optuna trials that never became Ray trials.
    trials = searcher.study.get_trials(deepcopy=False)
    forbidden = [t for t in trials if "forbidden" in t.user_attrs]
    assert forbidden, "the run never drew a forbidden config; the test space is too easy"
    print(f"{len(forbidden)} forbidden draws pruned, {num_samples} Ray trials")
    assert all(t.state == TrialState.PRUNED and space.is_forbidden(t.params) for t in forbidden)
    assert not any(space.is_forbidden(c) for c in received)
    # Every other Optuna trial is one Ray trial, told the score its config earned.
    done = [t for t in trials if "forbidden" not in t.user_attrs]
    assert len(done) == num_samples and all(t.state == TrialState.COMPLETE for t in done)
    assert as_keys(t.params for t in done) == as_keys(received)
    assert all(t.value == pytest.approx(score(t.params)) for t in done)


def test_valid_only_fails_the_ray_trial_naming_the_parameter(local_ray: None, tmp_path) -> None:
    space = make_space()
    # op_2 is inactive at depth 1: the guard must stop the trial before the trainable runs.
    bad = {"depth": 1, "op_1": "conv", "op_2": "pool", "cell/act": "relu", "lr": 0.01}
    tuner = tune.Tuner(
        valid_only(record_config, space),
        param_space=bad,
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="invalid", verbose=0),
    )
    results = tuner.fit()

    assert len(results.errors) == 1
    assert "'op_2'" in str(results.errors[0]) and "inactive" in str(results.errors[0])
    assert results[0].metrics.get("score") is None  # nothing was reported


def test_searcher_prunes_forbidden_draws_and_keeps_the_optuna_record() -> None:
    """Without a cluster: drive the searcher as Tune does (suggest, then complete) and check the
    round trip space -> Ray config -> Optuna trial."""
    space = make_space()
    searcher = tune_search(
        space, metric="score", mode="max", sampler=optuna.samplers.RandomSampler(seed=1)
    )
    configs = {}
    for i in range(60):
        trial_id = f"t{i}"
        config = searcher.suggest(trial_id)
        space.validate(config)
        assert set(config) == active_names(space, config)
        configs[trial_id] = config
        searcher.on_trial_complete(trial_id, {"score": score(config)})

    trials = searcher.study.get_trials(deepcopy=False)
    forbidden = [t for t in trials if "forbidden" in t.user_attrs]
    assert len(forbidden) >= 10  # about a third of random draws are forbidden
    assert all(t.state == TrialState.PRUNED for t in forbidden)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert [t.params for t in done] == list(configs.values())


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_sampler_stuck_on_a_forbidden_point_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # PartialFixedSampler pinned to a forbidden combination: every draw is forbidden.
    monkeypatch.setattr(ray_backend, "_MAX_FORBIDDEN_DRAWS", 5)
    stuck = optuna.samplers.PartialFixedSampler(
        {"depth": 1, "op_1": "skip"}, optuna.samplers.RandomSampler(seed=0)
    )
    searcher = tune_search(make_space(), metric="score", mode="max", sampler=stuck)
    with pytest.raises(RuntimeError, match="5 draws in a row hit a forbidden clause"):
        searcher.suggest("t0")
    assert [t.state for t in searcher.study.trials] == [TrialState.PRUNED] * 5


def test_tune_search_passes_metric_lists_and_refuses_an_ignored_seed() -> None:
    space = make_space()
    multi = tune_search(space, metric=("score", "cost"), mode=("max", "min"), seed=0)
    assert multi.metric == ["score", "cost"]
    assert [d.name for d in multi.study.directions] == ["MAXIMIZE", "MINIMIZE"]
    with pytest.raises(ValueError, match="not both"):
        tune_search(
            space, metric="score", mode="max", sampler=optuna.samplers.RandomSampler(), seed=0
        )


@pytest.mark.parametrize(
    ("config", "name"),
    [
        ({"depth": 1, "op_1": "conv", "op_2": "pool", "cell/act": "relu", "lr": 0.01}, "op_2"),
        ({"depth": 2, "op_1": "conv", "cell/act": "relu", "lr": 0.01}, "op_2"),
        ({"depth": 1, "op_1": "conv", "cell/act": "relu", "lr": 5.0}, "lr"),
        ({"depth": 1, "op_1": "skip", "cell/act": "relu", "lr": 0.01}, "op_1"),
    ],
    ids=["inactive-set", "active-missing", "out-of-domain", "forbidden"],
)
def test_valid_only_rejects_invalid_configs_naming_the_parameter(
    config: dict[str, Any], name: str
) -> None:
    space = make_space()
    calls: list[dict[str, Any]] = []

    def train(config: dict[str, Any]) -> dict[str, float]:
        calls.append(config)
        return {"score": 1.0}

    def train_steps(config: dict[str, Any]) -> Iterator[dict[str, float]]:
        calls.append(config)
        yield {"score": 1.0}

    for wrapped in (valid_only(train, space), valid_only(train_steps, space)):
        with pytest.raises(ValueError, match=f"'{name}'") as info:
            result = wrapped(config)
            if not isinstance(result, dict):
                next(result)
        assert "toy_conditional" in str(info.value)
    assert calls == []


def test_valid_only_keeps_what_ray_inspects() -> None:
    space = make_space()
    ok = {"depth": 1, "op_1": "conv", "cell/act": "gelu", "lr": 0.01}

    def train(config: dict[str, Any], *, factor: float = 1.0) -> dict[str, float]:
        return {"score": factor * config["lr"]}

    def train_steps(config: dict[str, Any]) -> Iterator[dict[str, float]]:
        yield {"score": 1.0}
        yield {"score": 2.0}

    train._resources = {"cpu": 1}  # type: ignore[attr-defined]  # as tune.with_resources sets
    wrapped = valid_only(train, space)
    assert wrapped(ok) == {"score": 0.01}
    assert wrapped(ok, factor=2.0) == {"score": 0.02}  # tune.with_parameters passes kwargs
    assert wrapped.__name__ == "train" and wrapped._resources == {"cpu": 1}
    steps = valid_only(train_steps, space)
    assert inspect.isgeneratorfunction(steps)
    assert list(steps(ok)) == [{"score": 1.0}, {"score": 2.0}]
    with pytest.raises(TypeError, match="function trainable"):
        valid_only(tune.Trainable, space)


def test_backends_import_ray_only_on_use() -> None:
    code = (
        "import sys, nas_hpo.backends as b\n"
        "assert 'ray' not in sys.modules, 'ray imported eagerly'\n"
        "b.tune_search\n"
        "assert 'ray.tune' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_missing_ray_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "nas_hpo.backends._ray", raising=False)
    monkeypatch.setitem(sys.modules, "ray.tune.search.optuna", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'ray\[tune\]"):
        importlib.import_module("nas_hpo.backends._ray")
