"""The ``ray`` backend for real: a local Ray instance, then a two-node Ray cluster whose worker
node is killed in the middle of a sweep. Every Ray trial must be an Optuna trial of the study."""

from __future__ import annotations

import threading
import time

import optuna
import pytest
import ray
from ray.cluster_utils import Cluster

import nas_hpo
from nas_hpo.study import open_storage

TOY = "tests.toy_objectives:"


def _trials(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=open_storage(storage)).get_trials()


def test_local_ray_sweep_is_recorded_in_the_optuna_study(tmp_path):
    assert not ray.is_initialized()
    storage = f"sqlite:///{tmp_path / 'ray.db'}"
    study = nas_hpo.run(
        {"space": {"name": "resnet_blocks", "base_width": 4},
         "objective": {"name": "train", "epochs": 2},
         "backend": {"name": "ray", "ray_dir": str(tmp_path / "ray"),
                     "resources_per_trial": {"cpu": 1}, "max_concurrent_trials": 2}},
        strategy="asha", n_trials=4, storage=storage, study_name="local-ray",
    )
    assert not ray.is_initialized()  # the local instance it started is shut down
    trials = _trials(storage, "local-ray")
    assert len(trials) == 4 and [t.number for t in trials] == [0, 1, 2, 3]
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert complete
    for t in trials:  # the same records as a local trial: arch, seed, costs, curves
        assert {"arch", "seed", "params", "flops", "ray_trial_id"} <= set(t.user_attrs)
        assert t.intermediate_values and set(t.intermediate_values) <= {1, 2}
    for t in complete:
        assert {"test_accuracy", "learning_curve"} <= set(t.user_attrs)
        assert t.value == t.intermediate_values[2]
    assert study.user_attrs["space"] == "resnet_blocks"
    # A Python callable objective runs on Ray too; the study name keeps studies apart, and a
    # failing objective is a FAIL with its message, not a lost trial.
    study = nas_hpo.run(space="resnet_blocks", objective=TOY + "kernel_sum", strategy="tpe",
                        n_trials=3, storage=storage, study_name="callable", backend="ray")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert all(t.value == sum(v for k, v in t.params.items() if k.endswith("_kernel"))
               for t in study.trials)
    # Resumed, the strategy is seeded from the trials so far: TPE's random start does not
    # propose the first run's architectures again.
    study = nas_hpo.run(space="resnet_blocks", objective=TOY + "kernel_sum", strategy="tpe",
                        n_trials=6, storage=storage, study_name="callable", backend="ray")
    archs = [t.user_attrs["arch"] for t in study.trials]
    assert len(archs) == 6 and not set(archs[3:]) & set(archs[:3])
    # On chain most random draws are forbidden: the searcher draws again, and neither Ray's
    # num_samples nor the resumed study's count spends anything on them.
    for n in (4, 7):
        study = nas_hpo.run(space="chain", objective=TOY + "chain_depth", strategy="random",
                            n_trials=n, storage=storage, study_name="chain", backend="ray")
        done = [t for t in study.trials if t.state.name == "COMPLETE"]
        forbidden = [t for t in study.trials if "forbidden" in t.user_attrs]
        assert len(done) == n and len(study.trials) == n + len(forbidden)
    assert forbidden
    study = nas_hpo.run(space="resnet_blocks", objective=TOY + "broken", strategy="random",
                        n_trials=2, storage=storage, study_name="broken", backend="ray")
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]
    assert all(t.user_attrs["fail_reason"] == "ZeroDivisionError: the user's objective divided "
               "by zero" for t in study.trials)


def test_unreachable_cluster_and_impossible_resources_are_clear_errors(tmp_path):
    storage = f"sqlite:///{tmp_path / 'e.db'}"
    with pytest.raises(nas_hpo.SpecError, match=r"\[backend\] address: cannot reach the Ray "
                       r"cluster at '127.0.0.1:1'"):
        nas_hpo.run(space="resnet_blocks", objective=TOY + "kernel_sum", n_trials=1,
                    storage=storage, backend="ray", address="127.0.0.1:1")
    with pytest.raises(nas_hpo.SpecError, match=r"resources_per_trial: a trial asks for 1 gpu, "
                       r"the Ray cluster has 0 in all"):
        nas_hpo.run({"backend": {"name": "ray", "resources_per_trial": {"cpu": 1, "gpu": 1}}},
                    space="resnet_blocks", objective=TOY + "kernel_sum", n_trials=1,
                    storage=storage)
    # lce has no Ray scheduler: refused before the study exists, rather than not pruning.
    with pytest.raises(nas_hpo.SpecError, match=r"\[strategy\] name: lce prunes on the "
                       "optuna backend only"):
        nas_hpo.run(space="resnet_blocks", objective=TOY + "kernel_sum", n_trials=1,
                    storage=storage, backend="ray", strategy="lce", study_name="lce")
    assert "lce" not in optuna.get_all_study_names(storage)
    assert not ray.is_initialized()


def test_cluster_sweep_loses_nothing_when_a_worker_node_dies(tmp_path):
    """A head node without CPUs and two 1-CPU worker nodes, all real raylets on this machine;
    one worker node is killed while it runs a trial: Ray retries the trial on the other node
    (``max_failures``) and the study ends with every trial recorded."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    storage = f"sqlite:///{tmp_path / 'cluster.db'}"
    killed: list[str] = []

    def kill_a_node_under_a_running_trial() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            try:
                running = [t for t in _trials(storage, "cluster") if t.state.name == "RUNNING"]
            except Exception:  # the driver has not created the study yet
                running = []
            if len(running) == 2:  # both nodes busy: whichever we kill runs a trial
                time.sleep(1.5)
                cluster.remove_node(nodes[1], allow_graceful=False)
                killed.append("node")
            time.sleep(0.2)

    killer = threading.Thread(target=kill_a_node_under_a_running_trial, daemon=True)
    killer.start()
    try:
        nas_hpo.run({"backend": {"name": "ray", "address": cluster.address, "max_failures": 2,
                                 "ray_dir": str(tmp_path / "ray")}},
                    space="resnet_blocks", objective=TOY + "sleepy_kernel_sum",
                    strategy="random", n_trials=4, storage=storage, study_name="cluster")
        killer.join(timeout=5)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    assert killed
    trials = _trials(storage, "cluster")
    assert len(trials) == 4 and [t.number for t in trials] == [0, 1, 2, 3]
    # The trial on the dead node was retried on the live one: nothing failed, nothing is lost.
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4


def test_an_interrupted_sweep_is_restored_by_the_next_run(tmp_path):
    """kill -9 of the driver in the middle of a sweep; running the study again restores the Ray
    experiment (``Tuner.restore``): the trials that were running resume under their Optuna
    trial numbers instead of being written off."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    storage = f"sqlite:///{tmp_path / 'restore.db'}"
    study_file = tmp_path / "ray.toml"
    study_file.write_text(f"""
[study]
name = "restore"
storage = "{storage}"
[space]
name = "resnet_blocks"
[objective]
name = "{TOY}sleepy_kernel_sum"
[strategy]
name = "random"
[budget]
n_trials = 4
[backend]
name = "ray"
ray_dir = "{tmp_path / 'ray'}"
""")
    exe = str(Path(sys.executable).parent / "nas-hpo")
    root = Path(__file__).resolve().parents[2]
    cmd = [exe, "run", str(study_file), "-q"]
    first = subprocess.Popen(cmd, cwd=root, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            states = [t.state.name for t in _trials(storage, "restore")]
        except Exception:
            states = []
        if "COMPLETE" in states and "RUNNING" in states:
            break
        time.sleep(0.3)
    else:
        first.kill()
        raise AssertionError("the sweep did not get going")
    time.sleep(3)  # let Tune write its experiment checkpoint
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"],
                   capture_output=True, timeout=120)
    before = {t.number: t.state.name for t in _trials(storage, "restore")}
    assert "RUNNING" in before.values()
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = _trials(storage, "restore")
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") == 4 and "RUNNING" not in states, states
    # The trials running at Tune's last checkpoint were resumed and completed; one asked for
    # after that checkpoint (if any) is unknown to the restored sweep and failed with a reason.
    assert any(state == "RUNNING" and trials[n].state.name == "COMPLETE"
               for n, state in before.items())
    for t in trials:
        if t.state.name == "FAIL":
            assert "died while the trial ran" in t.user_attrs["fail_reason"]
    assert len(trials) - 4 == states.count("FAIL") <= 1
