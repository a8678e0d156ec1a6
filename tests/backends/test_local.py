"""Scaling out on one machine and on shared storages: worker processes, PostgreSQL, journal
files, interrupted and killed workers, the progress line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psutil
import pytest

import nas_hpo
from nas_hpo._progress import Progress
from nas_hpo.study import WORKER_ATTR, epochs_spent, open_storage, recover_stale, trial_seed

TOY = "tests.toy_objectives:slow_kernel_sum"
ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).parent / "nas-hpo")


def _rows(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=open_storage(storage)).get_trials()


def _check_exact(trials, n: int) -> None:
    assert len(trials) == n
    assert sorted(t.number for t in trials) == list(range(n))  # no gap, no duplicate
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_workers_run_exactly_n_times_m_trials_on_file_storages(tmp_path, kind):
    storage = (f"sqlite:///{tmp_path / 'w.db'}" if kind == "sqlite"
               else f"journal:{tmp_path / 'w.log'}")
    study = nas_hpo.run(space="resnet_blocks", objective=TOY, strategy="random", n_trials=9,
                        workers=3, storage=storage, study_name="w", seed=1)
    trials = study.get_trials()
    _check_exact(trials, 9)
    pids = {t.system_attrs[WORKER_ATTR].split(":")[1] for t in trials}
    assert len(pids) == 3 and str(os.getpid()) not in pids  # three worker processes did it
    # The workers' samplers are seeded differently: random search does not repeat itself.
    assert len({t.user_attrs["arch"] for t in trials}) == 9
    # A finished study is not run again; a larger n_trials resumes it.
    again = nas_hpo.run(space="resnet_blocks", objective=TOY, strategy="random", n_trials=11,
                        workers=2, storage=storage, study_name="w", seed=1)
    _check_exact(again.get_trials(), 11)


def test_workers_draw_again_for_forbidden_configs_and_stop_at_n_trials(tmp_path, capsys):
    """Random draws on ``chain`` are mostly forbidden (an mlp layer before a conv): each worker
    draws again, and the study ends with exactly n_trials evaluations."""
    storage = f"sqlite:///{tmp_path / 'f.db'}"
    study = nas_hpo.run(space="chain", objective="tests.toy_objectives:chain_depth",
                        strategy="random", n_trials=10, workers=2, storage=storage,
                        study_name="f", seed=2, progress=True)
    trials = study.get_trials()
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    forbidden = [t for t in trials if "forbidden" in t.user_attrs]
    assert len(done) == 10 and len(forbidden) >= 5
    assert len(trials) == len(done) + len(forbidden)
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in forbidden)
    assert len({t.system_attrs[WORKER_ATTR] for t in done}) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[nas-hpo]")]
    assert lines[-1].startswith("[nas-hpo] 10/10 trials · ")
    assert f" · {len(forbidden)} forbidden draws · " in lines[-1]


def test_workers_on_postgresql_and_two_separate_runs_join_one_study(postgres_url):
    study = nas_hpo.run(space="resnet_blocks", objective=TOY, strategy="tpe", n_trials=6,
                        workers=2, storage=postgres_url, study_name="pg-workers")
    _check_exact(study.get_trials(), 6)
    # Seed and architecture went in the finishing transaction's upsert, on PostgreSQL too.
    space = nas_hpo.spaces.get("resnet_blocks")
    assert all(t.user_attrs["seed"] == trial_seed(0, t.number)
               and t.user_attrs["arch"] == space.arch_key(t.params) for t in study.get_trials())
    # Two `nas-hpo run` processes, as on two machines, with the same URL and study name.
    cmd = [EXE, "run", "--space", "resnet_blocks", "--objective", TOY, "--strategy", "random",
           "--n-trials", "8", "--storage", postgres_url, "--study-name", "pg-join", "-q"]
    procs = [subprocess.Popen([*cmd, "--seed", str(i)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    trials = _rows(postgres_url, "pg-join")
    # Each process stops once the study holds n_trials trials, its own and the other's.
    assert 8 <= len(trials) <= 9
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({t.system_attrs[WORKER_ATTR] for t in trials}) == 2


def test_unreachable_database_is_a_clear_error(tmp_path):
    with pytest.raises(nas_hpo.SpecError, match=r"\[study\] storage: postgresql://nas:\*\*\*@"
                       r"127.0.0.1:9/x: cannot open the storage"):
        nas_hpo.run(space="resnet_blocks", objective=TOY, n_trials=1,
                    storage="postgresql://nas:secret@127.0.0.1:9/x")
    with pytest.raises(nas_hpo.SpecError, match="not a storage URL"):
        nas_hpo.run(space="resnet_blocks", objective=TOY, n_trials=1, storage="nas.db")
    with pytest.raises(nas_hpo.SpecError, match=r"\[backend\] workers: 2 worker processes "
                       "cannot share the in-memory storage"):
        nas_hpo.run(space="resnet_blocks", objective=TOY, n_trials=1, storage=":memory:",
                    workers=2)


def _wait_running(storage: str, name: str, n: int = 1, timeout: float = 120.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            trials = _rows(storage, name)
        except KeyError:  # study not created yet
            trials = []
        running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        if len(running) >= n:
            return running
        time.sleep(0.3)
    raise AssertionError(f"{n} trial(s) did not start")


def _start_hanging_run(storage: str, name: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [EXE, "run", "--space", "resnet_blocks", "--objective", "tests.toy_objectives:hang",
         "--strategy", "random", "--n-trials", "3", "--storage", storage, "--study-name", name,
         "-q", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # SIGABRT then prints every thread's Python stack (see _communicate).
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )


def _communicate(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """``proc.communicate``; a process still running after ``timeout`` is aborted and the test
    fails with where it was (faulthandler's dump) rather than with a bare TimeoutExpired."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate(timeout=30)
        stacks = err.split("\nExtension modules:")[0]
        raise AssertionError(
            f"still running {timeout:.0f} s later; its stderr:\n{stacks[-6000:]}") from None


@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_loses_only_the_running_trials_and_the_next_run_continues(tmp_path, workers):
    storage = f"sqlite:///{tmp_path / 'k.db'}"
    proc = _start_hanging_run(storage, "k", "--workers", str(workers))
    running = _wait_running(storage, "k", n=workers)
    if workers == 1:
        proc.kill()
        proc.wait(timeout=30)
    else:
        # kill -9 one worker process: the other goes on (here: hangs), the parent waits for it.
        victim = int(running[0].system_attrs[WORKER_ATTR].split(":")[1])
        os.kill(victim, signal.SIGKILL)
        time.sleep(2)
        assert proc.poll() is None
        parent = psutil.Process(proc.pid)
        for p in [*parent.children(recursive=True), parent]:
            p.kill()
        proc.wait(timeout=30)
    running = [t for t in _rows(storage, "k") if t.state == optuna.trial.TrialState.RUNNING]
    assert running  # what kill -9 leaves behind
    # The next run of the same study fails the orphans with a reason, then goes on.
    study = nas_hpo.run(space="resnet_blocks", objective=TOY, strategy="random", n_trials=3,
                        storage=storage, study_name="k")
    trials = study.get_trials()
    assert len(trials) == 3 and not [t for t in trials if t.state.name == "RUNNING"]
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert {t.number for t in failed} == {t.number for t in running}
    assert all("died while the trial ran" in t.user_attrs["fail_reason"] for t in failed)
    # What the killed process held for the end of its trial is given back by the next run
    # (the architecture where the kill came after all its parameters were drawn: it can land
    # before the first, or between two).
    space = nas_hpo.spaces.get("resnet_blocks")
    for t in failed:
        assert t.user_attrs["seed"] == trial_seed(0, t.number)
        if space.is_valid(t.params):
            assert t.user_attrs["arch"] == space.arch_key(t.params)
        else:
            assert "arch" not in t.user_attrs
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 3 - len(failed)


def test_ctrl_c_fails_the_running_trial_with_a_reason_and_exits_130(tmp_path):
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    proc = _start_hanging_run(storage, "c")
    _wait_running(storage, "c")
    proc.send_signal(signal.SIGINT)
    out, err = _communicate(proc, timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run again to resume" in err
    (trial,) = _rows(storage, "c")
    assert trial.state == optuna.trial.TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == "interrupted (Ctrl-C / SIGINT)"


def test_a_trial_of_another_machine_without_heartbeat_is_failed_after_the_grace_period(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'h.db'}", heartbeat_s=1)
    study = optuna.create_study(storage=storage, study_name="h")
    lost, alive = study.ask(), study.ask()
    for t in (lost, alive):
        storage.set_trial_system_attr(t._trial_id, WORKER_ATTR, "elsewhere:123:1.0")
        storage.record_heartbeat(t._trial_id)
    assert recover_stale(study) == []  # fresh heartbeats: left alone
    time.sleep(3.5)  # > the 2 s grace even where SQLite's now() is truncated to the second
    storage.record_heartbeat(alive._trial_id)
    assert recover_stale(study) == [lost.number]
    frozen = study.get_trials()
    assert frozen[0].state.name == "FAIL" and "no heartbeat" in frozen[0].user_attrs["fail_reason"]
    assert frozen[1].state.name == "RUNNING"


def test_progress_line_counts_trials_best_and_eta(tmp_path, capsys):
    nas_hpo.run(space="resnet_blocks", objective="tests.toy_objectives:kernel_sum",
                strategy="random", n_trials=3, storage=":memory:", progress=True)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[nas-hpo]")]
    assert len(lines) == 3
    assert lines[0].startswith("[nas-hpo] 1/3 trials · best ") and "ETA" in lines[0]
    assert lines[-1].startswith("[nas-hpo] 3/3 trials · best ") and "ETA" not in lines[-1]
    study = optuna.create_study()
    assert Progress(5, study).line().startswith("[nas-hpo] 0/5 trials · best -")


def test_budget_by_epochs_spent_stops_cleanly(tmp_path):
    storage = f"sqlite:///{tmp_path / 'e.db'}"
    study = nas_hpo.run({"budget": {"n_trials": 50, "max_epochs": 5}}, space="resnet_blocks",
                        objective="tests.toy_objectives:two_epochs", strategy="random",
                        storage=storage, study_name="epochs")
    # 2 epochs per trial: after 3 trials 6 >= 5 epochs are spent, and no new trial starts.
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert epochs_spent(study) == 6
    again = nas_hpo.run({"budget": {"n_trials": 50, "max_epochs": 5}}, space="resnet_blocks",
                        objective="tests.toy_objectives:two_epochs", strategy="random",
                        storage=storage, study_name="epochs")
    assert len(again.trials) == 3  # resuming a spent budget runs nothing
    with pytest.raises(nas_hpo.SpecError, match=r"\[budget\] max_epochs: must be >= 1"):
        nas_hpo.run({"budget": {"max_epochs": 0}}, space="resnet_blocks",
                    objective="tests.toy_objectives:kernel_sum")
