"""The simulated clock on hand-made tables whose answer is known: which trial finishes first
with two workers, when the next one starts, which trials a pruner stops at which simulated
moment, the ``max_cost`` budget, and a resumed study continuing the clock."""

from __future__ import annotations

import optuna
import pandas as pd
import pytest

import nas_hpo
from nas_hpo.spaces.nb201 import EDGE_NAMES, arch_str

OPS = ("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect", "none")


def _cell(i: int) -> dict[str, str]:
    """Distinct cells: the first edge names the cell's index."""
    return {name: OPS[i % 5] if k == 0 else OPS[(i // 5) % 5] if k == 1 else "nor_conv_3x3"
            for k, name in enumerate(EDGE_NAMES)}


def _table(tmp_path, cells: dict[int, tuple[float, list[float]]]) -> str:
    """``cells[i] = (seconds per epoch, accuracy per epoch)`` → a CSV of cumulative times."""
    rows = []
    for i, (per_epoch, accs) in cells.items():
        for epoch, acc in enumerate(accs, start=1):
            rows.append({"arch": arch_str(_cell(i)), "epoch": epoch, "val": acc,
                         "test": acc - 0.01, "time": per_epoch * epoch})
    path = tmp_path / "table.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def _run(tmp_path, table, order, *, workers=2, strategy=None, n_trials=None, **budget):
    storage = f"sqlite:///{tmp_path / 'sim.db'}"
    study = optuna.create_study(study_name="sim", storage=storage, direction="maximize",
                                load_if_exists=True)
    for i in order:
        study.enqueue_trial(_cell(i))
    spec = {"study": {"name": "sim", "storage": storage, "cost": []},
            "space": {"name": "nb201"},
            "objective": {"name": "tabular", "path": table, "metrics": ["val"],
                          "fidelity": "epoch", "cost": "time", "attrs": ["test"]},
            "strategy": strategy or {"name": "random"},
            "budget": {"n_trials": n_trials or len(order), **budget},
            "backend": {"name": "simulated", "workers": workers}}
    return nas_hpo.run(spec)


def _times(study):
    return {t.number: (t.user_attrs["sim_start"], t.user_attrs["sim_end"])
            for t in study.trials}


def test_two_workers_finish_in_simulated_time_order_and_a_free_worker_starts_the_next(tmp_path):
    table = _table(tmp_path, {0: (10.0, [0.5, 0.6, 0.7]), 1: (1.0, [0.4, 0.5, 0.6]),
                              2: (5.0, [0.3, 0.4, 0.5])})
    study = _run(tmp_path, table, [0, 1, 2])
    # Trials 0 and 1 start at 0; 1 ends at 3, when trial 2 starts (ends 3 + 15 = 18); 0 at 30.
    assert _times(study) == {0: (0.0, 30.0), 1: (0.0, 3.0), 2: (3.0, 18.0)}
    finished = sorted(study.trials, key=lambda t: t.datetime_complete)
    assert [t.number for t in finished] == [1, 2, 0]  # recorded in simulated-time order
    assert [t.value for t in finished] == [0.6, 0.5, 0.7]
    assert study.trials[0].user_attrs["test"] == pytest.approx(0.69)
    assert study.trials[0].intermediate_values == {1: 0.5, 2: 0.6, 3: 0.7}
    assert study.user_attrs["sim_time"] == 30.0


def test_one_worker_runs_the_trials_back_to_back(tmp_path):
    table = _table(tmp_path, {0: (10.0, [0.5, 0.6]), 1: (1.0, [0.4, 0.5])})
    study = _run(tmp_path, table, [0, 1], workers=1)
    assert _times(study) == {0: (0.0, 20.0), 1: (20.0, 22.0)}


def test_the_pruner_decides_at_the_simulated_moment_with_what_was_reported_by_then(tmp_path):
    # Median pruning from the first epoch on, after one finished trial. Trial 0 is slow and
    # good; trial 1 is fast and poor; trial 2 (started when 1 ends, at t=3) is poor too.
    # At t=4 trial 2 reports epoch 1 (0.1): trial 0 has reported its epoch 1 (0.9, at t=10)?
    # No — not before t=10; trial 1 has (0.2 at t=1), so the median of epoch 1 is 0.2 and
    # trial 2 (0.1 < 0.2) is pruned at t=4, before trial 0 ever reported.
    table = _table(tmp_path, {0: (10.0, [0.9, 0.95, 0.97]), 1: (1.0, [0.2, 0.3, 0.4]),
                              2: (1.0, [0.1, 0.2, 0.3])})
    strategy = {"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0}
    study = _run(tmp_path, table, [0, 1, 2], strategy=strategy)
    states = {t.number: t.state.name for t in study.trials}
    assert states == {0: "COMPLETE", 1: "COMPLETE", 2: "PRUNED"}
    assert _times(study)[2] == (3.0, 4.0)
    assert study.trials[2].intermediate_values == {1: 0.1}


def test_no_trial_starts_after_max_cost(tmp_path):
    table = _table(tmp_path, {i: (5.0, [0.1 * i + 0.1, 0.1 * i + 0.2]) for i in range(6)})
    study = _run(tmp_path, table, list(range(6)), workers=1, max_cost=25.0)
    # Each trial costs 10 s: trials start at 0, 10, 20; at 30 the budget (25 s) is spent.
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert [t.user_attrs["sim_start"] for t in done] == [0.0, 10.0, 20.0]
    assert len(study.trials) == 6  # the other three are still queued for a later run


def test_a_resumed_study_continues_the_clock(tmp_path):
    table = _table(tmp_path, {0: (2.0, [0.5]), 1: (3.0, [0.6]), 2: (4.0, [0.7])})
    _run(tmp_path, table, [0, 1], workers=1)
    study = _run(tmp_path, table, [2], workers=1, n_trials=3)
    assert _times(study) == {0: (0.0, 2.0), 1: (2.0, 5.0), 2: (5.0, 9.0)}


def test_asha_promotes_by_what_each_rung_held_at_the_simulated_moment(tmp_path):
    # Successive halving, rungs at epochs 1, 2, 4 (reduction factor 2). Trial 0 is slow and
    # the best; at t=1 trial 1 is alone at rung 0 (trial 0 reports there only at t=10), so it
    # is promoted although it is worse than trial 0 will be. Trial 2 (t=4..) beats it at rung
    # 0 but not at rung 1: pruned at epoch 2 (t=6). Trial 3 (t=6..) is second of three at
    # rung 0, below the top half: pruned at epoch 1 (t=7).
    table = _table(tmp_path, {0: (10.0, [0.9, 0.92, 0.93, 0.95]),
                              1: (1.0, [0.5, 0.6, 0.65, 0.7]),
                              2: (1.0, [0.7, 0.55, 0.6, 0.6]),
                              3: (1.0, [0.6, 0.7, 0.8, 0.9])})
    strategy = {"name": "asha", "sampler": "random", "min_resource": 1, "reduction_factor": 2}
    study = _run(tmp_path, table, [0, 1, 2, 3], strategy=strategy)
    states = {t.number: t.state.name for t in study.trials}
    assert states == {0: "COMPLETE", 1: "COMPLETE", 2: "PRUNED", 3: "PRUNED"}
    times = _times(study)
    assert times == {0: (0.0, 40.0), 1: (0.0, 4.0), 2: (4.0, 6.0), 3: (6.0, 7.0)}
    assert max(study.trials[2].intermediate_values) == 2
    assert max(study.trials[3].intermediate_values) == 1


def test_max_cost_on_the_optuna_backend_counts_the_trials_simulated_cost(tmp_path):
    table = _table(tmp_path, {i: (5.0, [0.1 * i + 0.1, 0.1 * i + 0.2]) for i in range(6)})
    storage = f"sqlite:///{tmp_path / 'real.db'}"
    study = optuna.create_study(study_name="real", storage=storage, direction="maximize")
    for i in range(6):
        study.enqueue_trial(_cell(i))
    study = nas_hpo.run({"study": {"name": "real", "storage": storage, "cost": []},
                         "space": {"name": "nb201"},
                         "objective": {"name": "tabular", "path": table, "metrics": ["val"],
                                       "fidelity": "epoch", "cost": "time"},
                         "strategy": {"name": "random"},
                         "budget": {"n_trials": 6, "max_cost": 25.0}})
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    # 10 simulated seconds per trial: after three, 30 >= 25 and no fourth starts.
    assert [t.user_attrs["simulated_cost"] for t in done] == [10.0, 10.0, 10.0]
