"""``nas-hpo bench``: a benchmark file runs strategies × seeds on the simulated clock into one
storage, a rerun adds only the missing runs, and the aggregated numbers equal a hand
computation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import optuna
import pandas as pd
import pytest

import nas_hpo
from nas_hpo import benchmarking
from nas_hpo.benchmarking._results import Run, _markdown, mean_interval, summary, trace
from nas_hpo.cli import main
from nas_hpo.spaces.nb201 import EDGE_NAMES, OPS, arch_str
from nas_hpo.study import SpecError


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> str:
    """Every nb201 cell, 3 epochs, 2 seeds: accuracy grows with its 3×3 convolutions."""
    rows = []
    for ops in itertools.product(OPS, repeat=len(EDGE_NAMES)):
        quality = sum(o == "nor_conv_3x3" for o in ops) / 6
        for seed, epoch in itertools.product((0, 1), (1, 2, 3)):
            val = quality * epoch / 3 + 0.001 * seed
            rows.append({"arch": arch_str(dict(zip(EDGE_NAMES, ops, strict=True))),
                         "seed": seed, "epoch": epoch, "val_accuracy": val,
                         "test_accuracy": val - 0.01, "time": epoch * (1 + quality)})
    path = tmp_path_factory.mktemp("table") / "t.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return str(path)


def _bench(table: str, tmp_path, **bench) -> dict:
    return {"bench": {"name": "t", "output": str(tmp_path / "out"), "seeds": 2,
                      "report": "test_accuracy", **bench},
            "strategies": {"random": {}, "re": {"population_size": 4, "sample_size": 2}},
            "space": {"name": "nb201"},
            "objective": {"name": "tabular", "path": table, "metrics": ["val_accuracy"],
                          "fidelity": "epoch", "cost": "time", "attrs": ["test_accuracy"]},
            "budget": {"n_trials": 12, "max_cost": 60.0},
            "backend": {"workers": 2}}


def test_a_benchmark_writes_every_run_as_a_study_and_a_rerun_adds_only_missing_ones(
        table, tmp_path):
    ran = []
    paths = nas_hpo.bench(_bench(table, tmp_path), on_run=lambda *a: ran.append(a[:2]))
    assert sorted(ran) == [("random", 0), ("random", 1), ("re", 0), ("re", 1)]
    storage = f"sqlite:///{tmp_path / 'out' / 'bench.db'}"
    names = optuna.study.get_all_study_names(storage)
    assert sorted(names) == ["bench/t/random/0", "bench/t/random/1", "bench/t/re/0",
                             "bench/t/re/1"]
    study = optuna.load_study(study_name="bench/t/re/1", storage=storage)
    trials = study.get_trials()
    assert all("sim_start" in t.user_attrs and "sim_end" in t.user_attrs for t in trials)
    assert study.user_attrs["bench_complete"] is True
    for kind in ("png", "md", "csv"):
        assert paths[kind].stat().st_size > 0
    # A third seed: only its two runs; a run left without its completion mark is redone.
    optuna.create_study(study_name="bench/t/random/2", storage=storage)
    ran.clear()
    nas_hpo.bench(_bench(table, tmp_path, seeds=3), on_run=lambda *a: ran.append(a[:2]))
    assert sorted(ran) == [("random", 2), ("re", 2)]
    ran.clear()
    nas_hpo.bench(_bench(table, tmp_path, seeds=3), on_run=lambda *a: ran.append(a[:2]))
    assert ran == []
    frame = pd.read_csv(paths["csv"])
    assert list(frame.strategy) == ["random", "re"] and list(frame.runs) == [3, 3]


def _trial(number, value, end, test, state=optuna.trial.TrialState.COMPLETE):
    return optuna.trial.create_trial(
        state=state, value=value if state == optuna.trial.TrialState.COMPLETE else None,
        params={}, distributions={},
        user_attrs={"sim_end": end, "test_accuracy": test})


def test_the_incumbent_is_chosen_by_value_in_simulated_time_order_and_reports_its_test():
    trials = [_trial(0, 0.5, 9.0, 0.45), _trial(1, 0.7, 2.0, 0.60),
              _trial(2, None, 3.0, 0.0, optuna.trial.TrialState.PRUNED),
              _trial(3, 0.6, 5.0, 0.99)]
    for i, t in enumerate(trials):
        t.number = i
    ends, reports = trace(trials, maximize=True, report="test_accuracy")
    assert list(ends) == [2.0, 3.0, 5.0, 9.0]
    assert list(reports) == [0.60, 0.60, 0.60, 0.60]  # 0.7 stays the best by value
    ends, reports = trace(trials, maximize=False, report="test_accuracy")
    assert list(reports) == [0.60, 0.60, 0.99, 0.45]


def test_the_table_numbers_equal_a_hand_computation():
    spec = benchmarking.BenchSpec("<hand>", "h", None, "", (0, 1, 2), 1, "test",
                                  {"a": {}, "b": {}}, {})
    runs = [Run("a", 0, np.array([1.0, 2, 3, 4]), np.array([0.1, 0.2, 0.2, 0.5])),
            Run("a", 1, np.array([1.0, 5, 6, 7]), np.array([0.3, 0.3, 0.4, 0.4])),
            Run("a", 2, np.array([2.0, 3, 4, 5]), np.array([0.2, 0.2, 0.2, 0.6])),
            Run("b", 0, np.array([1.0, 2, 3, 4]), np.array([0.4, 0.4, 0.4, 0.4])),
            Run("b", 1, np.array([1.0, 2, 3, 4]), np.array([0.1, 0.5, 0.5, 0.5])),
            Run("b", 2, np.array([1.0, 2, 3, 4]), np.array([0.6, 0.6, 0.6, 0.6]))]
    rows = {r["strategy"]: r for r in summary(spec, runs, True, 0.7, 4, 8.0)}
    a = np.array([0.5, 0.4, 0.6])
    assert rows["a"]["final"] == pytest.approx(a.mean())
    assert rows["a"]["final_std"] == pytest.approx(a.std(ddof=1))
    assert rows["a"]["regret"] == pytest.approx(0.7 - a.mean())
    # 25% of 4 evaluations = after the first: 0.1, 0.3, 0.2.
    assert rows["a"]["eval@25%"] == pytest.approx(0.2)
    # 50% of 8 simulated seconds = at t=4: 0.5, 0.3 (only its first trial had ended), 0.2.
    assert rows["a"]["time@50%"] == pytest.approx((0.5 + 0.3 + 0.2) / 3)
    # Ranks per seed (1 = best): seed 0 a, seed 1 b, seed 2 a vs b 0.6 = 0.6 (tie: 1.5).
    assert rows["a"]["avg_rank"] == pytest.approx((1 + 2 + 1.5) / 3)
    assert rows["b"]["avg_rank"] == pytest.approx((2 + 1 + 1.5) / 3)
    mean, lo, hi = mean_interval(a)
    half = 4.302652729911275 * a.std(ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert (mean, lo, hi) == pytest.approx((a.mean(), a.mean() - half, a.mean() + half))


def test_the_searched_value_and_the_share_of_runs_that_found_the_best_are_reported():
    trials = [_trial(0, 0.5, 1.0, 0.45), _trial(1, 0.7, 2.0, 0.60), _trial(2, 0.6, 3.0, 0.99)]
    for i, t in enumerate(trials):
        t.number = i
    ends, reports, values = trace(trials, maximize=True, report="test_accuracy", values=True)
    assert list(values) == [0.5, 0.7, 0.7] and list(reports) == [0.45, 0.60, 0.60]
    spec = benchmarking.BenchSpec("<hand>", "h", None, "", (0, 1), 1, "test", {"a": {}}, {})
    runs = [Run("a", 0, np.array([1.0, 2]), np.array([0.4, 0.5]), np.array([0.8, 0.9])),
            Run("a", 1, np.array([1.0, 2]), np.array([0.3, 0.3]), np.array([0.7, 0.7]))]
    row = summary(spec, runs, True, 0.5, 2, None, best_value=0.9)[0]
    assert row["value"] == pytest.approx(0.8) and row["found"] == 0.5
    assert row["value_std"] == pytest.approx(np.std([0.9, 0.7], ddof=1))
    text = _markdown([row], spec, 0.5)
    assert "| value | found best |" in text and "| 0.8000 ± 0.1414 | 0.50 |" in text


def test_the_cli_runs_a_benchmark_file_and_prints_its_table(table, tmp_path, capsys):
    path = tmp_path / "b.toml"
    path.write_text(f"""
[bench]
name = "t"
output = "{tmp_path / 'out'}"
seeds = 1
report = "test_accuracy"
[strategies.random]
[strategies.re]
population_size = 4
sample_size = 2
[space]
name = "nb201"
[objective]
name = "tabular"
path = "{table}"
metrics = ["val_accuracy"]
fidelity = "epoch"
cost = "time"
attrs = ["test_accuracy"]
[budget]
n_trials = 12
""")
    assert main(["bench", str(path), "-q"]) == 0
    out = capsys.readouterr().out
    assert "| random | 1 |" in out and "| re | 1 |" in out
    assert (tmp_path / "out" / "t.png").is_file()


@pytest.mark.parametrize("change, message", [
    (lambda b: b["bench"].update(sedes=3), "[bench] sedes: unknown key"),
    (lambda b: b.pop("strategies"), "[strategies] must name at least one strategy"),
    (lambda b: b["bench"].update(seeds=[1, 1]), "[bench] seeds: at least one seed, distinct"),
    (lambda b: b["strategies"].update(tpe={"n_startup": 3}), "(of [strategies.tpe])"),
    (lambda b: b["budget"].pop("n_trials") and b["budget"].pop("max_cost"),
     "[budget]: a benchmark needs n_trials and/or max_cost"),
])
def test_a_bad_benchmark_file_is_an_error_naming_the_key(table, tmp_path, change, message):
    bench = _bench(table, tmp_path)
    change(bench)
    with pytest.raises(SpecError) as e:
        benchmarking.load_bench(bench)
    assert message in str(e.value)


def test_only_some_strategies_of_a_file(table, tmp_path):
    spec = benchmarking.load_bench(_bench(table, tmp_path), only=["re"])
    assert list(spec.strategies) == ["re"]
    with pytest.raises(SpecError, match="no strategy 'tpe' in \\[strategies\\]; it has: random, re"):
        benchmarking.load_bench(_bench(table, tmp_path), only=["tpe"])


def _script(name: str):
    """``benchmarks/<name>.py`` as a module (the folder is not a package)."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[2] / "benchmarks" / f"{name}.py"
    loaded = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


def test_the_margins_script_compares_each_strategy_with_the_baseline_in_seed_spreads(
        table, tmp_path):
    """``benchmarks/bench_margins.py``: the finals it reads are each run's best trial (its value
    and its test accuracy), and its margins and spread ratios equal a hand computation."""
    from scipy.stats import levene, mannwhitneyu

    margins = _script("bench_margins")
    spec = _bench(table, tmp_path, seeds=4)
    spec["budget"] = {"n_trials": 12}
    nas_hpo.bench(spec)
    data, seeds = margins.finals(spec, None)
    assert seeds == 4 and list(data) == ["random", "re"]
    storage = f"sqlite:///{tmp_path / 'out' / 'bench.db'}"
    for label in ("random", "re"):
        best = [optuna.load_study(study_name=f"bench/t/{label}/{s}", storage=storage).best_trial
                for s in range(4)]
        assert list(data[label]["value"]) == [t.value for t in best]
        assert list(data[label]["report"]) == [t.user_attrs["test_accuracy"] for t in best]
    ours, base = data["re"]["value"], data["random"]["value"]
    row = margins.margins(data, "random")[3].split(" | ")
    assert row[0] == "| re" and row[2] == f"{(ours.mean() - base.mean()) / base.std(ddof=1):+.2f}"
    assert row[3] == f"{mannwhitneyu(ours, base, alternative='greater').pvalue:.3f}"
    spread = margins.spreads(data, "re")[2].split(" | ")
    assert spread[1] == f"{ours.std(ddof=1) / base.std(ddof=1):.2f}"
    assert spread[2] == f"{levene(ours, base, center='median').pvalue:.3f}"


def test_the_margins_script_counts_local_search_climbs_from_the_trials_roles(table, tmp_path):
    """``bench_margins.py --climbs``: a run's climbs are its start and each restart (trials
    recorded as a ``start`` with a center), and up to its first trial at the best value of the
    benchmark's runs, the climbs that ended there (the one holding that trial)."""
    margins = _script("bench_margins")
    spec = _bench(table, tmp_path, seeds=3)
    spec["strategies"] = {"random": {}, "local_search": {"n_initial": 2}}
    spec["budget"] = {"n_trials": 45}
    spec["backend"] = {"workers": 1}
    nas_hpo.bench(spec)
    got = margins.climbs(spec, None, "local_search")
    storage = f"sqlite:///{tmp_path / 'out' / 'bench.db'}"
    studies = {(label, s): optuna.load_study(study_name=f"bench/t/{label}/{s}", storage=storage)
               for label in ("random", "local_search") for s in range(3)}
    best = max(st.best_value for st in studies.values())
    assert got["best"] == best
    climbs = reached = counted = 0
    for s in range(3):
        trials = studies["local_search", s].trials
        starts = [t.number for t in trials if t.system_attrs.get("nas_hpo:ls:role") == "start"
                  and t.system_attrs.get("nas_hpo:ls:center") is not None]
        climbs += 1 + len(starts)
        at_best = [t.number for t in trials if t.value == best]
        if at_best:
            reached += 1
            counted += 1 + sum(n < at_best[0] for n in starts)
        else:
            counted += len(starts)
    assert climbs > 3  # the walks restarted (all-3x3 cell is the one local optimum)
    assert reached >= 1
    assert (got["runs"], got["climbs"], got["reached"], got["counted"]) == (
        3, climbs, reached, counted)


def test_the_nats_bench_file_runs_on_the_two_exports_it_joins(tmp_path):
    """``studies/bench_nats_cifar10.toml`` on files laid out as the two NATS-Bench CSV exports
    it names (one row per cell, accuracies in percent), joined as its comment says: every trial
    is its cell's validation row and records that cell's test accuracy."""
    import pathlib

    from nas_hpo.study import read_toml

    valid, test = [], []
    for k, ops in enumerate(itertools.product(OPS, repeat=len(EDGE_NAMES))):
        arch = arch_str(dict(zip(EDGE_NAMES, ops, strict=True)))
        acc = 80 + 2 * sum(o == "nor_conv_3x3" for o in ops) + k / 1e5
        valid.append({"arch_str": arch, "acc-cifar10": acc, "acc-cifar100": acc - 20,
                      "acc-ImageNet": acc - 45, "flops-cifar10": 1.0, "flops-cifar100": 1.0,
                      "flops-ImageNet": 1.0})
        test.append({"CIFAR10TestAccuracy200Epochs": acc + 3,
                     "CIFAR100TestAccuracy200Epochs": acc - 17,
                     "ImageNetTestAccuracy200Epochs": acc - 42,
                     "ArchitectureString": arch, "UniqueString": f"u{k}"})
    joined = pd.DataFrame(valid).merge(pd.DataFrame(test), left_on="arch_str",
                                       right_on="ArchitectureString", validate="one_to_one")
    joined.to_csv(tmp_path / "nats_cifar10.csv", index=False)
    path = pathlib.Path(__file__).parents[2] / "studies" / "bench_nats_cifar10.toml"
    assert "left_on='arch_str', right_on='ArchitectureString'" in path.read_text()
    spec = read_toml(path)
    spec["objective"]["path"] = str(tmp_path / "nats_cifar10.csv")
    spec["bench"].update(output=str(tmp_path / "out"), seeds=1, processes=1)
    spec["budget"]["n_trials"] = 15
    spec["strategies"] = {k: spec["strategies"][k] for k in ("random", "re_10_3", "smac")}
    nas_hpo.bench(spec)
    by_arch = {r["arch_str"]: r["acc-cifar10"] for r in valid}
    storage = f"sqlite:///{tmp_path / 'out' / 'bench.db'}"
    for label in ("random", "re_10_3", "smac"):
        study = optuna.load_study(study_name=f"bench/nats_cifar10/{label}/0", storage=storage)
        assert len(study.trials) == 15
        for t in study.trials:
            assert t.value == pytest.approx(by_arch[arch_str(t.params)])
            assert t.user_attrs["CIFAR10TestAccuracy200Epochs"] == pytest.approx(t.value + 3)
    table = (tmp_path / "out" / "nats_cifar10.md").read_text()
    assert "| re_10_3 | 1 |" in table and "| smac | 1 |" in table


def test_the_local_search_order_script_counts_evaluations_to_the_toy_tables_optimum():
    """``benchmarks/local_search_order.py``: the count is the number of the first trial at the
    optimum, the same for a seed run twice, and one more than the budget where the budget ends
    before it."""
    script = _script("local_search_order")
    n = script.evaluations_to_optimum("additive", 0, 120)
    assert 10 < n <= 120  # (the first ten trials are local search's random start)
    assert script.evaluations_to_optimum("additive", 0, n) == n
    assert script.evaluations_to_optimum("additive", 0, n - 1) == n
