"""The ``tabular`` objective on a NAS-Bench-201-shaped table the tests write: every one of the
15,625 cells by its official string, at three epochs, two seeds at the last."""

from __future__ import annotations

import itertools
import math

import numpy as np
import optuna
import pandas as pd
import pytest

import nas_hpo
from nas_hpo import objectives, spaces
from nas_hpo.objectives import Context, TrialFailure
from nas_hpo.spaces.nb201 import EDGE_NAMES, OPS, arch_str

EPOCHS = (4, 12, 200)


def _accuracy(config: dict, epoch: int, seed: int) -> float:
    convs = sum(v == "nor_conv_3x3" for v in config.values())
    ones = sum(v == "nor_conv_1x1" for v in config.values())
    final = 0.5 + 0.06 * convs + 0.03 * ones
    return round(final * (1 - 0.5 / math.sqrt(epoch)) + 0.002 * seed, 6)


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> pd.DataFrame:
    rows = []
    for ops in itertools.product(OPS, repeat=len(EDGE_NAMES)):
        config = dict(zip(EDGE_NAMES, ops, strict=True))
        s = arch_str(config)
        latency = 1.0 + sum(v.startswith("nor_conv") for v in ops) * 0.5
        for epoch in EPOCHS:
            for seed in ((0, 1) if epoch == 200 else (0,)):
                rows.append({"arch": s, "epoch": epoch, "seed": seed,
                             "accuracy": _accuracy(config, epoch, seed),
                             "latency": latency, "train_time": epoch * 2.5,
                             "flops_m": latency * 10})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def files(table, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    table.to_csv(folder / "nb201.csv", index=False)
    table.to_parquet(folder / "nb201.parquet")
    table.to_json(folder / "nb201.jsonl", orient="records", lines=True)
    return folder


@pytest.mark.parametrize("name", ["nb201.csv", "nb201.parquet", "nb201.jsonl"])
def test_a_row_is_looked_up_by_the_official_string_and_repeats_are_averaged(files, name):
    space = spaces.get("nb201")
    objective = objectives.get("tabular", path=str(files / name), fidelity="epoch",
                               cost="train_time", attrs=["flops_m"])
    config = space.sample(seed=3)
    result = objective(config, space=space, ctx=Context())
    expected = (_accuracy(config, 200, 0) + _accuracy(config, 200, 1)) / 2
    assert result.values[0] == pytest.approx(expected)
    attrs = result.user_attrs
    assert attrs["table_rows"] == 2 and attrs["accuracy_std"] == pytest.approx(0.002 / math.sqrt(2))
    assert attrs["fidelity"] == {"epoch": 200} and attrs["simulated_cost"] == 500.0
    assert attrs["flops_m"] > 0
    # A budget between two epochs gets the rows of the lower one.
    low = objective(config, space=space, ctx=Context(fidelity={"epoch": 20.5}))
    assert low.values[0] == pytest.approx(_accuracy(config, 12, 0))
    assert low.user_attrs["fidelity"] == {"epoch": 12} and low.user_attrs["table_rows"] == 1
    with pytest.raises(TrialFailure,
                       match=r"has no row at epoch <= 2 .* \(it has \[4, 12, 200\]\)"):
        objective(config, space=space, ctx=Context(fidelity={"epoch": 2}))


def test_a_study_searches_the_table_and_a_missing_architecture_fails_its_trial(files, tmp_path):
    """TPE on the table: every trial's value is the table's; one row removed from the table is
    a failed trial with the reason, and the study goes on."""
    frame = pd.read_csv(files / "nb201.csv")
    space = spaces.get("nb201")
    gone = arch_str(space.sample(seed=0))
    frame[frame.arch != gone].to_csv(tmp_path / "partial.csv", index=False)
    storage = f"sqlite:///{tmp_path / 't.db'}"
    study = nas_hpo.run({"objective": {"name": "tabular", "path": str(tmp_path / "partial.csv"),
                                       "fidelity": "epoch"}},
                        space="nb201", strategy="tpe", n_trials=30, storage=storage,
                        study_name="tab", seed=0)
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            expected = np.mean([_accuracy(t.params, 200, s) for s in (0, 1)])
            assert t.value == pytest.approx(expected)
    # The removed cell, asked for: a failed trial with the reason, then the study goes on.
    enq = optuna.load_study(study_name="tab", storage=storage)
    enq.enqueue_trial(space.sample(seed=0))
    again = nas_hpo.run({"objective": {"name": "tabular", "path": str(tmp_path / "partial.csv"),
                                       "fidelity": "epoch"}},
                        space="nb201", strategy="tpe", n_trials=32, storage=storage,
                        study_name="tab", seed=0)
    failed = [t for t in again.trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["arch"] == gone
    assert f"architecture {gone} is not in the table" in failed[0].user_attrs["fail_reason"]
    assert len(again.trials) == 32


def test_multi_objective_and_hyperband_on_the_table(files, tmp_path):
    path = str(files / "nb201.parquet")
    study = nas_hpo.run(
        {"study": {"directions": ["maximize", "minimize"]},
         "objective": {"name": "tabular", "path": path, "metrics": ["accuracy", "latency"]}},
        space="nb201", strategy="nsga2", n_trials=12, storage=":memory:", seed=1)
    assert all(len(t.values) == 2 for t in study.trials)
    assert {tuple(t.values) for t in study.best_trials} <= {tuple(t.values) for t in study.trials}
    hb = nas_hpo.run(
        {"objective": {"name": "tabular", "path": path, "fidelity": "epoch"},
         "strategy": {"name": "smac_hyperband", "fidelity": "epoch", "min_budget": 4,
                      "max_budget": 200, "eta": 3, "n_initial": 3}},
        space="nb201", n_trials=8, storage=":memory:", seed=0)
    for t in hb.trials:
        budget = t.user_attrs["budget"]["epoch"]
        assert t.user_attrs["fidelity"]["epoch"] <= budget
        assert t.value == pytest.approx(
            np.mean([_accuracy(t.params, t.user_attrs["fidelity"]["epoch"], s)
                     for s in ((0, 1) if t.user_attrs["fidelity"]["epoch"] == 200 else (0,))]))


def test_a_wrong_table_is_an_error_before_the_study(files, tmp_path):
    with pytest.raises(nas_hpo.SpecError, match=r"\[objective\]: .*nb201.csv has no column "
                       r"'acc'; its columns: arch, epoch, seed, accuracy"):
        nas_hpo.run({"objective": {"name": "tabular", "path": str(files / "nb201.csv"),
                                   "metrics": ["acc"]}}, space="nb201", n_trials=1,
                    storage=":memory:")
    with pytest.raises(nas_hpo.SpecError, match="path: no such file"):
        nas_hpo.run({"objective": {"name": "tabular", "path": str(tmp_path / "none.csv")}},
                    space="nb201", n_trials=1, storage=":memory:")
    with pytest.raises(nas_hpo.SpecError, match="path: .*nb201.txt is not a table this reads"):
        nas_hpo.run({"objective": {"name": "tabular", "path": str(tmp_path / "nb201.txt")}},
                    space="nb201", n_trials=1, storage=":memory:")
    (tmp_path / "bad.csv").write_text("arch,accuracy\n\"unclosed,1\n")
    with pytest.raises(nas_hpo.SpecError, match="cannot read .*bad.csv as csv"):
        nas_hpo.run({"objective": {"name": "tabular", "path": str(tmp_path / "bad.csv")}},
                    space="nb201", n_trials=1, storage=":memory:")
    (tmp_path / "text.csv").write_text("arch,accuracy\na,high\n")
    with pytest.raises(nas_hpo.SpecError, match="text.csv: column 'accuracy' is not numeric"):
        nas_hpo.run({"objective": {"name": "tabular", "path": str(tmp_path / "text.csv")}},
                    space="nb201", n_trials=1, storage=":memory:")
    with pytest.raises(nas_hpo.SpecError, match="path: the table's file is required"):
        nas_hpo.run({"objective": {"name": "tabular"}}, space="nb201", n_trials=1,
                    storage=":memory:")
