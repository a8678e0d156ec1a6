"""What the runner writes per trial and how SQLite files are opened: write-ahead log, heartbeat
defaults, the worker and seed stamped at a trial's creation."""

from __future__ import annotations

import sqlite3

import optuna

import nas_hpo
from nas_hpo import Categorical, Integer, SearchSpace
from nas_hpo._runner import _stamp_new_trials, trial_seed
from nas_hpo._spec import load_spec
from nas_hpo._storage import WORKER_ATTR, _on_network_fs, open_storage


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
    from nas_hpo._runner import open_study, prepare

    def heartbeat(**study):
        spec = load_spec({"space": {"name": "chain"}, "objective": {"name": "cost"},
                          "study": {"cost": [], **study}})
        return open_study(prepare(spec))._storage.get_heartbeat_interval()

    assert heartbeat(storage=f"sqlite:///{tmp_path / 'a.db'}") is None
    assert heartbeat(storage=f"sqlite:///{tmp_path / 'b.db'}", heartbeat_s=7) == 7
    spec = load_spec({"space": {"name": "chain"}, "objective": {"name": "cost"}})
    assert spec.heartbeat_s is None  # resolved per storage: 30 s on PostgreSQL / MySQL


def test_trials_carry_worker_and_seed_from_their_creation(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    run = dict(space=_space(), objective=_score, strategy="random", storage=url,
               study_name="c", seed=3)
    nas_hpo.run({"study": {"cost": []}}, n_trials=2, **run)
    # A queued trial is popped, not created: its worker and seed are written separately.
    optuna.load_study(study_name="c", storage=url).enqueue_trial({"x": 4, "op": "b"})
    study = nas_hpo.run({"study": {"cost": []}}, n_trials=5, **run)
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3, 4] and trials[2].params["x"] == 4
    for t in trials:
        assert t.system_attrs[WORKER_ATTR].count(":") == 2
        assert t.user_attrs["seed"] == trial_seed(3, t.number)


def test_a_trial_number_taken_by_another_process_gets_its_own_seed(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    study = optuna.create_study(study_name="d", storage=open_storage(url, heartbeat_s=0))
    numbered, undo = _stamp_new_trials(study, "me:1:1.0", study_seed=5)
    try:
        first = study.ask()
        assert numbered(first._trial_id, first.number)
        assert study._storage.get_trial(first._trial_id).user_attrs["seed"] == trial_seed(5, 0)
        # Another process creates trial 1 before this one asks its next.
        other = optuna.load_study(study_name="d", storage=open_storage(url, heartbeat_s=0))
        other.ask()
        second = study.ask()
        assert second.number == 2
        # The seed stamped at creation was the one of trial 1: the runner must write it again.
        assert not numbered(second._trial_id, second.number)
        third = study.ask()
        assert numbered(third._trial_id, third.number)
    finally:
        undo()
    assert "create_new_trial" not in vars(study._storage)


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
