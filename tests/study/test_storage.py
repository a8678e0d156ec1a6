"""What the runner writes per trial and how SQLite files are opened: write-ahead log, heartbeat
defaults, the worker stamped at a trial's creation, user attributes written with its end."""

from __future__ import annotations

import sqlite3

import numpy as np
import optuna
import pytest
import sqlalchemy

import nas_hpo
from nas_hpo import Categorical, Integer, SearchSpace
from nas_hpo.study import WORKER_ATTR, load_spec, open_storage, trial_seed
from nas_hpo.study._internals import _attrs_at_finish
from nas_hpo.study._internals import stamp_new_trials as _stamp_new_trials
from nas_hpo.study._storage import _on_network_fs


def _space() -> SearchSpace:
    return SearchSpace([Integer("x", 0, 9), Categorical("op", ["a", "b"])], name="tiny")


def _score(config: dict) -> float:
    return config["x"] + (config["op"] == "a")


def test_sqlite_files_are_opened_in_wal_mode_and_stay_readable_by_plain_optuna(tmp_path):
    db = tmp_path / "s.db"
    nas_hpo.run({"study": {"cost": []}}, space=_space(), objective=_score, strategy="random",
                n_trials=5, storage=f"sqlite:///{db}", study_name="w")
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # Optuna's own storage (no nas-hpo code) reads every trial.
    plain = optuna.load_study(study_name="w", storage=f"sqlite:///{db}")
    assert len(plain.get_trials()) == 5


def test_network_file_systems_keep_the_rollback_journal():
    mounts = ("/dev/vda1 / ext4 rw 0 0\n"
              "server:/export /shared nfs4 rw 0 0\n"
              "/dev/vdb /shared/local ext4 rw 0 0\n"
              "//nas/x /mnt/my\\040share cifs rw 0 0\n")
    assert not _on_network_fs("/home/me/study.db", mounts)
    assert _on_network_fs("/shared/runs/study.db", mounts)
    assert not _on_network_fs("/shared/local/study.db", mounts)  # the deepest mount decides
    assert _on_network_fs("/mnt/my share/study.db", mounts)
    assert not _on_network_fs("/sharedx/study.db", mounts)  # a prefix is not a parent


def test_heartbeat_is_on_for_database_servers_and_off_for_sqlite_unless_asked(tmp_path):
    from nas_hpo.study import open_study, prepare

    def heartbeat(**study):
        spec = load_spec({"space": {"name": "chain"}, "objective": {"name": "cost"},
                          "study": {"cost": [], **study}})
        return open_study(prepare(spec))._storage.get_heartbeat_interval()

    assert heartbeat(storage=f"sqlite:///{tmp_path / 'a.db'}") is None
    assert heartbeat(storage=f"sqlite:///{tmp_path / 'b.db'}", heartbeat_s=7) == 7
    spec = load_spec({"space": {"name": "chain"}, "objective": {"name": "cost"}})
    assert spec.heartbeat_s is None  # resolved per storage: 30 s on PostgreSQL / MySQL


def test_trials_carry_worker_and_seed(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    run = dict(space=_space(), objective=_score, strategy="random", storage=url,
               study_name="c", seed=3)
    nas_hpo.run({"study": {"cost": []}}, n_trials=2, **run)
    # A queued trial is popped, not created: its worker is written separately.
    optuna.load_study(study_name="c", storage=url).enqueue_trial({"x": 4, "op": "b"})
    study = nas_hpo.run({"study": {"cost": []}}, n_trials=5, **run)
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3, 4] and trials[2].params["x"] == 4
    for t in trials:
        assert t.system_attrs[WORKER_ATTR].count(":") == 2
        assert t.user_attrs["seed"] == trial_seed(3, t.number)
        assert t.user_attrs["arch"] == _space().arch_key(t.params)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_new_trial_carries_its_worker_from_its_creation(tmp_path, kind):
    # On a database: one more INSERT in Optuna's creation transaction; elsewhere: a template.
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'w.db'}"
        storage = open_storage(url, heartbeat_s=0)
    else:
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "w.log")))
    study = optuna.create_study(storage=storage, study_name="w")
    backend = getattr(storage, "_backend", storage)
    commits = []
    if kind == "sqlite":
        sqlalchemy.event.listen(backend.engine, "commit", lambda conn: commits.append(1))
    study.ask()
    plain_commits, commits[:] = len(commits), []
    undo = _stamp_new_trials(study, "me:1:1.0")
    try:
        trial = study.ask()
        assert len(commits) == plain_commits  # no transaction of its own
        assert trial._cached_frozen_trial.system_attrs[WORKER_ATTR] == "me:1:1.0"
        assert storage.get_trial(trial._trial_id).system_attrs[WORKER_ATTR] == "me:1:1.0"
        # A trial made from a template (enqueue_trial) keeps Optuna's own path.
        study.enqueue_trial({"x": 1}, user_attrs={"from": "queue"})
        queued = study.get_trials(states=[optuna.trial.TrialState.WAITING])[0]
        assert WORKER_ATTR not in queued.system_attrs and queued.user_attrs == {"from": "queue"}
    finally:
        undo()
    if kind == "sqlite":  # what another process reads from the file
        fresh = optuna.load_study(study_name="w", storage=url)
        assert fresh.get_trials()[1].system_attrs[WORKER_ATTR] == "me:1:1.0"
    patched = {"create_new_trial", "_create_new_trial", "_get_prepared_new_trial"}
    assert not patched & set(vars(storage)) and not patched & set(vars(backend))
    assert WORKER_ATTR not in storage.get_trial(study.ask()._trial_id).system_attrs


def test_user_attributes_are_written_in_the_transaction_that_finishes_the_trial(tmp_path):
    def two_trials(name: str, batched: bool):
        storage = open_storage(f"sqlite:///{tmp_path / name}", heartbeat_s=0)
        study = optuna.create_study(storage=storage)
        defer, undo = _attrs_at_finish(study) if batched else (None, lambda: None)
        commits = []
        sqlalchemy.event.listen(storage.engine, "commit", lambda conn: commits.append(1))

        def objective(trial):
            for i in range(5):
                value = np.float32(i) if i else i  # numpy scalars are made JSON
                if batched:
                    defer(trial._trial_id, f"a{i}", value)
                else:
                    trial.set_user_attr(f"a{i}", float(value) if i else value)
            held = storage.get_trial(trial._trial_id).user_attrs
            assert ("a0" in held) is not batched  # held until the trial ends
            if trial.number == 1:
                raise ValueError("broken")
            return 1.0

        try:
            study.optimize(objective, n_trials=2, catch=(ValueError,))
        finally:
            undo()
        assert "set_trial_state_values" not in vars(storage)
        return study.get_trials(), len(commits)

    (ok, failed), batched_commits = two_trials("f.db", batched=True)
    assert ok.state.name == "COMPLETE" and failed.state.name == "FAIL"
    assert ok.user_attrs == failed.user_attrs == {f"a{i}": i for i in range(5)}
    assert ok.datetime_complete is not None and ok.value == 1.0
    # Written one by one, each attribute was a transaction of its own: 5 per trial.
    _, one_by_one_commits = two_trials("g.db", batched=False)
    assert one_by_one_commits - batched_commits == 10


def test_a_resumed_study_does_not_replay_the_first_runs_draws(tmp_path):
    def two_legs(url: str) -> list[dict]:
        run = dict(space=_space(), objective=_score, strategy="random", storage=url,
                   study_name="r", seed=0)
        nas_hpo.run({"study": {"cost": []}}, n_trials=6, **run)
        return [t.params for t in nas_hpo.run({"study": {"cost": []}}, n_trials=12,
                                                  **run).get_trials()]

    params = two_legs(f"sqlite:///{tmp_path / 'r1.db'}")
    # Seeded with the study seed again, the second leg would propose trials 0-5 once more.
    assert params[6:] != params[:6]
    # Still reproducible: the same two runs give the same trials.
    assert two_legs(f"sqlite:///{tmp_path / 'r2.db'}") == params


def test_trial_seeds_are_numpy_seed_sequence_words():
    # trial_seed computes 1,024 trials' seeds at once; it must stay SeedSequence's value.
    rng = np.random.default_rng(0)
    pairs = [(0, n) for n in range(2100)] + [(2**32 - 1, 2**32 - 1), (2**32, 7), (3, 2**40)]
    pairs += [(int(a), int(b)) for a, b in rng.integers(0, 2**32, size=(500, 2))]
    for study_seed, number in pairs:
        expected = np.random.SeedSequence([study_seed, number]).generate_state(1)[0]
        assert trial_seed(study_seed, number) == int(expected)
