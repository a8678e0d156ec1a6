"""The same semantics on every registered backend: each test runs once per entry of
``nas_hpo.backends`` (a new backend is tested without new test code), with the options its
registry entry gives for this machine. The Ray cases share one local Ray instance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch

import nas_hpo
from nas_hpo import backends, proxies, spaces
from nas_hpo.study import cores, trial_seed

TOY = "tests.toy_objectives:"
ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).parent / "nas-hpo")
BACKENDS = backends.names()


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray instance for the module's Ray cases (started here, so runs in this
    process use it and runs in other processes join it by its address)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> dict:
    """The ``[backend]`` section of a study on this entry."""
    name = request.param
    section = {"name": name, **backends.REGISTRY.meta(name).get("test_options", {})}
    if name == "ray":
        section["address"] = request.getfixturevalue("ray_address")
        section["ray_dir"] = str(tmp_path / "ray")
    return section


def _run(backend: dict, storage: str, name: str, **overrides):
    spec = {"backend": dict(backend)}
    for section in ("study", "budget", "strategy", "objective", "space"):
        if isinstance(overrides.get(section), dict):  # a whole section, options included
            spec[section] = overrides.pop(section)
    return nas_hpo.run(spec, storage=storage, study_name=name, **overrides)


def _states(study: optuna.Study) -> list[str]:
    return [t.state.name for t in study.get_trials()]


def test_an_exception_of_the_objective_fails_that_trial_and_the_study_goes_on(backend, storage):
    study = _run(backend, storage, "bug", space="resnet_blocks", strategy="random",
                 objective=TOY + "sometimes_broken", n_trials=10, seed=4, cost=[])
    trials = study.get_trials()
    assert len(trials) == 10 and set(_states(study)) == {"COMPLETE", "FAIL"}
    for t in trials:
        if t.params["b1_kernel"] == 3:
            assert t.state.name == "FAIL"
            assert t.user_attrs["fail_reason"] == "ZeroDivisionError: division by zero"
            trace = t.user_attrs["fail_traceback"]
            assert trace.startswith("Traceback") and "in sometimes_broken" in trace
        else:
            assert t.state.name == "COMPLETE" and "fail_reason" not in t.user_attrs


@pytest.mark.parametrize("limit", ["max_failures_in_a_row", "max_failures"])
def test_max_failures_stop_a_broken_objective_with_its_last_reason(backend, storage, limit):
    with pytest.raises(nas_hpo.StudyAborted, match=r"\[budget\] "
                       + limit + r" = 3\); the last failure: ZeroDivisionError: the user's "
                       "objective divided by zero"):
        _run(backend, storage, "broken", space="resnet_blocks", strategy="random",
             objective=TOY + "broken", n_trials=20, cost=[], budget={limit: 3})
    states = _states(optuna.load_study(study_name="broken", storage=storage))
    # Trials that were running when the limit tripped finish (Ray runs two at once).
    at_once = backend.get("max_concurrent_trials") or (
        backend.get("workers", 1) if backend["name"] == "simulated" else 1)
    assert set(states) == {"FAIL"} and 3 <= len(states) <= 3 + at_once - 1


def test_cost_none_measures_no_cost(backend, storage):
    study = _run(backend, storage, "nocost", space="resnet_blocks", strategy="random",
                 objective=TOY + "kernel_sum", n_trials=3, cost=[])
    assert _states(study) == ["COMPLETE"] * 3
    costs = {"params", "flops", "latency_ms", "cost_input_shape", "cost_error"}
    assert all(not costs & set(t.user_attrs) for t in study.get_trials())
    # The default measures them (the same study, resumed with the cost switched back on).
    more = _run(backend, storage, "nocost", space="resnet_blocks", strategy="random",
                objective=TOY + "kernel_sum", n_trials=4)
    assert {"params", "flops", "latency_ms"} <= set(more.get_trials()[-1].user_attrs)


def test_nsga2_evaluates_no_architecture_twice(backend, storage):
    """32 NSGA-II trials on a space of 27 architectures: repeats are certain, and each is
    answered from the trial that evaluated the architecture."""
    study = _run(backend, storage, "nsga", space=TOY + "tiny_space", objective=TOY + "tiny_two",
                 strategy={"name": "nsga2", "population_size": 6},
                 study={"directions": ["maximize", "minimize"]}, n_trials=32, cost=[])
    trials = study.get_trials()
    assert len(trials) == 32 and set(_states(study)) == {"COMPLETE"}
    evaluated = [t for t in trials if "duplicate_of" not in t.user_attrs]
    repeats = [t for t in trials if "duplicate_of" in t.user_attrs]
    assert len({t.user_attrs["arch"] for t in evaluated}) == len(evaluated)
    assert len(repeats) >= 32 - 27
    by_number = {t.number: t for t in trials}
    for t in repeats:
        original = by_number[t.user_attrs["duplicate_of"]]
        assert "duplicate_of" not in original.user_attrs
        assert original.user_attrs["arch"] == t.user_attrs["arch"]
        assert original.values == t.values
        assert t.user_attrs["seed"] == trial_seed(0, t.number)  # its own seed all the same


def test_two_runs_joining_one_study_use_distinct_seeds_and_evaluate_no_architecture_twice(
        backend, tmp_path):
    """Two ``nas-hpo run`` processes on one SQLite study (the README's recipe for several
    machines), started together: 40 trials, 40 distinct seeds, and no architecture evaluated
    twice (a repeat is answered from the record)."""
    storage = f"sqlite:///{tmp_path / 'joined.db'}"
    command = [EXE, "run", "--space", "nb201", "--objective", TOY + "nb201_convs",
               "--strategy", "random", "--n-trials", "40", "--storage", storage,
               "--study-name", "joined", "--cost", "none", "-q", "--backend", backend["name"]]
    if backend["name"] == "ray":
        command += ["--address", backend["address"], "--max-concurrent-trials", "1"]
    runs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err[-3000:]
    trials = optuna.load_study(study_name="joined", storage=storage).get_trials()
    assert len(trials) == 40 and {t.state.name for t in trials} == {"COMPLETE"}
    assert len({t.user_attrs["seed"] for t in trials}) == 40
    evaluated = [t.user_attrs["arch"] for t in trials if "duplicate_of" not in t.user_attrs]
    assert len(set(evaluated)) == len(evaluated)
    # Both runs added trials, and their strategies were seeded apart: a second random
    # search from the same seed would have proposed the first one's architectures again.
    workers = {t.system_attrs["nas_hpo:worker"] for t in trials}
    assert len(workers) == 2
    assert len(evaluated) >= 38


def test_each_trial_gets_its_share_of_the_cores(backend, storage):
    if backend["name"] == "optuna":
        backend = {**backend, "workers": 2}
        share = max(1, cores() // 2)
    elif backend["name"] == "simulated":  # one process: its torch threads
        share = torch.get_num_threads()
    else:  # a Ray trial gets the CPUs it reserves
        share = int(backend["resources_per_trial"]["cpu"])
    study = _run(backend, storage, "threads", space="resnet_blocks", strategy="random",
                 objective=TOY + "threads_used", n_trials=4, cost=[])
    assert {t.user_attrs["torch_threads"] for t in study.get_trials()} == {share}
    study = _run({**backend, "threads": 3}, storage, "threads3", space="resnet_blocks",
                 strategy="random", objective=TOY + "threads_used", n_trials=2, cost=[])
    assert {t.user_attrs["torch_threads"] for t in study.get_trials()} == {3}


def test_the_population_reaches_the_objective_on_every_backend(backend, storage):
    """``vote`` ranks each architecture among the study's completed trials, read through the
    context on every backend: one trial at a time, trial k among trials 0..k."""
    section = ({**backend, "max_concurrent_trials": 1} if backend["name"] == "ray"
               else {**backend, "workers": 1} if backend["name"] == "simulated" else backend)
    study = _run(section, storage, "vote", space={"name": "nb201", "C": 4, "N": 1},
                 objective={"name": "zero_cost", "proxy": ["synflow", "vote"],
                            "batch_size": 16},
                 strategy="random", n_trials=4, cost=[])
    trials = study.get_trials()
    assert _states(study) == ["COMPLETE"] * 4
    rows = [{m: t.user_attrs[f"zc_{m}"] for m in proxies.VOTE_DEFAULT} for t in trials]
    for k, t in enumerate(trials):
        assert t.values[1] == pytest.approx(proxies.vote(rows[: k + 1])[-1])
    assert spaces.get("nb201").name == study.user_attrs["space"]


def test_nsga2_constraints_reach_optuna(backend, storage):
    """Bounds on what a trial records become its Optuna constraints, wherever it ran."""
    study = _run(backend, storage, "constrained", space={"name": "resnet_blocks",
                                                          "base_width": 4},
                 objective=TOY + "tiny_two_kernels", study={"directions": ["maximize",
                                                                          "minimize"],
                                                           "cost": ["params"]},
                 strategy={"name": "nsga2", "population_size": 4,
                           "constraints": {"params": 50_000}}, n_trials=4)
    for t in study.get_trials():
        assert t.constraints == {"params": pytest.approx(t.user_attrs["params"] - 50_000)}
