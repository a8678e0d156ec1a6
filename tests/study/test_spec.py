from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import nas_hpo
from nas_hpo import SpecError, load_spec

GOOD = """
[study]
name = "t"
storage = "sqlite:///x.db"
directions = ["maximize"]
seed = 1
[space]
name = "resnet_blocks"
base_width = 8
[objective]
name = "train"
epochs = 3
[strategy]
name = "tpe"
n_startup_trials = 4
[budget]
n_trials = 7
timeout_s = 60
[backend]
name = "optuna"
workers = 1
"""


def write(tmp_path, text: str):
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def test_good_file_is_read(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    assert spec.study_name == "t" and spec.seed == 1 and spec.n_trials == 7
    assert spec.space.name == "resnet_blocks" and spec.space.options == {"base_width": 8}
    assert spec.objective.options == {"epochs": 3}
    assert spec.strategy.options == {"n_startup_trials": 4}
    assert spec.timeout_s == 60.0 and spec.directions == ("maximize",)


def test_overrides_replace_values_and_drop_options_of_a_replaced_component(tmp_path):
    spec = load_spec(write(tmp_path, GOOD), n_trials=2, strategy="random", seed=5)
    assert spec.n_trials == 2 and spec.seed == 5
    assert spec.strategy.name == "random" and spec.strategy.options == {}


@pytest.mark.parametrize(
    "old, new, match",
    [
        ('[budget]', '[budgets]', r"unknown section \[budgets\]"),
        ('seed = 1', 'seeds = 1', r"\[study\] seeds: unknown key"),
        ('seed = 1', 'seed = "one"', r"\[study\] seed: expected an integer, got 'one'"),
        ('n_trials = 7', 'n_trials = 7.5', r"\[budget\] n_trials: expected an integer"),
        ('n_trials = 7', 'n_trials = 0', r"\[budget\] n_trials: must be >= 1"),
        ('name = "resnet_blocks"', 'name = "resnet_blox"',
         r"\[space\] name: unknown space 'resnet_blox'; registered: .*resnet_blocks"),
        ('base_width = 8', 'base_wdth = 8', r"\[space\] base_wdth: unknown key; allowed: base_width"),
        ('epochs = 3', 'epochs = "3"', r"\[objective\] epochs: expected an integer, got '3'"),
        ('epochs = 3', 'epoch = 3', r"\[objective\] epoch: unknown key; allowed: .*epochs"),
        ('name = "train"', 'name = "trian"', r"\[objective\] name: unknown objective 'trian'"),
        ('name = "tpe"', 'name = "tpee"', r"\[strategy\] name: unknown strategy 'tpee'"),
        ('n_startup_trials = 4', 'n_startup = 4', r"\[strategy\] n_startup: unknown key"),
        ('directions = ["maximize"]', 'directions = ["max"]', r"\[study\] directions: each"),
        ('name = "optuna"', 'name = "spark"', r"\[backend\] name: unknown backend 'spark'"),
    ],
)
def test_errors_name_file_section_and_key(tmp_path, old, new, match):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(SpecError, match=match) as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_bad_option_value_is_reported_before_any_trial(tmp_path):
    path = write(tmp_path, GOOD.replace("epochs = 3", "epochs = 0").replace(
        'storage = "sqlite:///x.db"', f'storage = "sqlite:///{tmp_path}/x.db"'))
    with pytest.raises(SpecError, match=r"\[objective\]: epochs must be >= 1"):
        nas_hpo.run(path)
    assert not (tmp_path / "x.db").exists()


def test_directions_must_match_the_objective(tmp_path):
    path = write(tmp_path, GOOD.replace('["maximize"]', '["maximize", "minimize"]'))
    with pytest.raises(SpecError, match=r"\[study\] directions: the objective 'train' gives 1"):
        nas_hpo.run(path)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(SpecError, match="no such study file"):
        load_spec(tmp_path / "nope.toml")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(write(tmp_path, "[study\nname="))


def test_missing_space_is_named():
    with pytest.raises(SpecError, match=r"\[space\] name: missing"):
        load_spec({"objective": {"name": "train"}})


def test_callable_objective_takes_no_options():
    with pytest.raises(SpecError, match=r"\[objective\] epochs: a Python callable"):
        load_spec({"space": {"name": "resnet_blocks"},
                   "objective": {"name": "tests.toy_objectives:kernel_sum", "epochs": 3}})


def test_unimportable_callable_is_named(storage):
    with pytest.raises(SpecError, match=r"\[objective\] name: cannot import 'no_such_mod'"):
        nas_hpo.run(space="resnet_blocks", objective="no_such_mod:f", storage=storage)


STUDIES = Path(__file__).resolve().parents[2] / "studies"


@pytest.mark.parametrize("name", sorted(p.name for p in STUDIES.glob("*.toml")))
def test_every_study_file_of_the_repository_resolves(name, tmp_path, monkeypatch):
    """Each example in studies/ reads, and its space, objective and strategy are built (the
    options of each are checked) without running a trial; a benchmark file (bench_*.toml)
    has every run's study checked so. A benchmark on a table the user supplies (a path that
    is neither shipped nor in the repository) is checked against a table in its layout: every
    nb201 cell with the columns the file names, written where the file looks for it."""
    import itertools

    from nas_hpo import benchmarking
    from nas_hpo.objectives.tabular import shipped_table
    from nas_hpo.spaces.nb201 import EDGE_NAMES, OPS, arch_str
    from nas_hpo.study import prepare, read_toml

    if name.startswith("bench_"):
        raw = read_toml(STUDIES / name)
        objective = raw["objective"]
        table = objective.get("path", "")
        if not (shipped_table(table).is_file() or Path(table).is_file()):
            assert raw["space"]["name"] == "nb201" and table.endswith(".csv"), (
                "a user's table is written here for nb201, as CSV, only")
            columns = [*objective["metrics"], *objective.get("attrs", ())]
            rows = [{objective["key"]: arch_str(dict(zip(EDGE_NAMES, ops, strict=True))),
                     **dict.fromkeys(columns, 50.0)}
                    for ops in itertools.product(OPS, repeat=len(EDGE_NAMES))]
            (tmp_path / table).parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(tmp_path / table, index=False)
            monkeypatch.chdir(tmp_path)
        spec = benchmarking.load_bench(STUDIES / name)
        assert spec.strategies and spec.seeds
        return
    plan = prepare(load_spec(STUDIES / name))
    assert plan.spec.n_trials >= 1 and plan.directions
