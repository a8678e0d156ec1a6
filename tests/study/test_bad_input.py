"""Bad input that is not a study file: what an objective returns, what a user enqueues, the
read-only commands' arguments, and storage URLs with passwords. Each is a clear error (exit 2,
no traceback) or a failed trial with its reason in a study that goes on; nothing is accepted
silently, no password is printed, and reading a study never changes a database."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import nas_hpo
from nas_hpo import Categorical, GreaterThan, Integer, SearchSpace
from nas_hpo.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).parent / "nas-hpo")
TOY = "tests.toy_objectives:"


def depth_space() -> SearchSpace:
    params = [Integer("depth", 1, 3)] + [
        Categorical(f"op_{k}", ["conv", "pool", "skip"]) for k in range(1, 4)
    ]
    return SearchSpace(params, {f"op_{k}": GreaterThan("depth", k - 1) for k in (2, 3)})


@pytest.mark.parametrize("value", [("a", "b"), "0.5", True, None, [1.0, "x"]],
                         ids=["tuple of text", "text", "bool", "none", "list with text"])
def test_a_value_that_is_not_a_number_fails_the_trial_and_the_study_goes_on(value, storage):
    calls = []

    def objective(config: dict):
        calls.append(config)
        return value if len(calls) == 2 else 1.0

    study = nas_hpo.run({"strategy": {"name": "random", "reevaluate": True}},
                        space=depth_space(), objective=objective, n_trials=4, storage=storage,
                        study_name="v")
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    reason = study.trials[1].user_attrs["fail_reason"]
    assert "expected a number or a tuple of numbers" in reason and "fail_traceback" not in \
        study.trials[1].user_attrs


@pytest.mark.parametrize("enqueued, why", [
    ({"depth": 1, "op_1": "maxpool"}, "'maxpool'"),
    ({"depth": 99, "op_1": "conv"}, "value 99 of parameter 'depth' is outside its domain"),
])
def test_an_enqueued_config_outside_the_space_fails_with_its_reason(enqueued, why, storage):
    """(A partial config is Optuna's enqueue: the sampler draws the rest, and it is valid.)"""
    study = optuna.create_study(study_name="q", storage=storage, direction="maximize")
    study.enqueue_trial(enqueued)
    seen = []
    study = nas_hpo.run(space=depth_space(), objective=lambda c: seen.append(c) or 1.0,
                        strategy="random", n_trials=3, storage=storage, study_name="q")
    trials = study.trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    reason = trials[0].user_attrs["fail_reason"]
    assert reason.startswith("the enqueued configuration ") and why in reason
    assert len(seen) == 2 and all(depth_space().is_valid(c) for c in seen)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reading_commands_never_create_or_change_a_database(tmp_path, capsys):
    other = tmp_path / "other.db"  # a SQLite file that is not an Optuna storage
    with sqlite3.connect(other) as connection:
        connection.execute("create table notes (text)")
        connection.execute("insert into notes values ('mine')")
    before = _digest(other)
    url = f"sqlite:///{other}"
    for args in (["report", "--storage", url, "--out", str(tmp_path / "r")],
                 ["correlate", "x", "--storage", url, "--estimators", "params"],
                 ["dashboard", "--storage", url, "--port", "8791"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"'{other}' is not an Optuna storage (no 'studies' table); nothing was changed" \
            in err and "Traceback" not in err
        assert _digest(other) == before
    with sqlite3.connect(other) as connection:
        assert [r[0] for r in connection.execute("select name from sqlite_master")] == ["notes"]
    # An Optuna storage (as plain Optuna leaves it) is read without a byte changed: no WAL
    # switch, no table created, no row written.
    optuna_file = tmp_path / "study.db"
    plain = optuna.storages.RDBStorage(f"sqlite:///{optuna_file}")
    optuna.create_study(storage=plain, study_name="s").optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    plain.engine.dispose()
    before = _digest(optuna_file)
    assert main(["report", "s", "--storage", f"sqlite:///{optuna_file}",
                 "--out", str(tmp_path / "rep"), "--format", "csv"]) == 0
    assert _digest(optuna_file) == before and (tmp_path / "rep" / "trials.csv").exists()


def test_read_only_commands_name_what_is_wrong(tmp_path, capsys, storage):
    nas_hpo.run(space="resnet_blocks", objective=TOY + "kernel_sum", n_trials=1, cost=[],
                storage=storage, study_name="one")
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder\n")
    bad_journal = tmp_path / "bad.log"
    bad_journal.write_text("this is not json\n")
    cases = [
        (["report", "one", "--storage", storage, "--out", str(a_file)],
         f"--out {a_file}: {a_file} is a file, not a folder"),
        (["correlate", str(tmp_path / "missing.csv"), "--estimators", "params"],
         f"{tmp_path / 'missing.csv'}: no such file"),
        (["report", "--storage", f"journal:{tmp_path}"], "is a folder, not a storage file"),
        (["report", "--storage", f"journal:{bad_journal}"],
         f"'{bad_journal}' is not a journal file Optuna can read (ValueError: line 1: "),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    with pytest.raises(SystemExit) as info:
        main(["dashboard", "--storage", storage, "--port", "99999"])
    assert info.value.code == 2
    assert "99999 is not a port: give 1 to 65535" in capsys.readouterr().err


def test_no_password_in_any_output_of_a_failing_postgresql_run(postgres_url, tmp_path):
    """A real PostgreSQL (trust authentication: the password in the URL is not needed, and
    must never be printed) and an unreachable one."""
    secret = "s3cretPW"
    with_password = postgres_url.replace("postgres:@", f"postgres:{secret}@", 1)
    assert secret in with_password
    common = ["--space", "resnet_blocks", "--objective", TOY + "kernel_sum", "--cost", "none",
              "--study-name", "pw", "--n-trials", "1"]
    first = subprocess.run([EXE, "run", *common, "--storage", with_password], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    runs = [first]
    # The same study name for another space, then with other directions: errors that name
    # the storage.
    for extra in (["--space", "chain"], []):
        args = [*common, "--storage", with_password, *extra]
        if not extra:
            study_file = tmp_path / "dirs.toml"
            study_file.write_text('[study]\ndirections = ["minimize"]\n')
            args = [str(study_file), *args]
        runs.append(subprocess.run([EXE, "run", *args], cwd=ROOT, capture_output=True,
                                   text=True, timeout=300))
    unreachable = f"postgresql://nas:{secret}@127.0.0.1:1/nas?password={secret}"
    runs.append(subprocess.run([EXE, "run", *common, "--storage", unreachable], cwd=ROOT,
                               capture_output=True, text=True, timeout=300))
    runs.append(subprocess.run([EXE, "report", "pw", "--storage", unreachable], cwd=ROOT,
                               capture_output=True, text=True, timeout=300))
    assert [r.returncode for r in runs] == [0, 2, 2, 2, 2]
    assert "was run on space 'resnet_blocks', not 'chain'" in runs[1].stderr
    assert "has directions ['maximize'], not ['minimize']" in runs[2].stderr
    assert "cannot open the storage" in runs[3].stderr
    for run in runs:
        assert secret not in run.stdout + run.stderr
        assert "Traceback" not in run.stderr
    assert "postgres:***@" in runs[0].stdout  # the dashboard hint, masked
