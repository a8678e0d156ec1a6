"""What the lifecycle promises beyond recording a trial: quiet runs, named values, the repair
of forbidden draws, user spaces given as ``module:function``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest

import nas_hpo
from nas_hpo import Categorical, ForbiddenEquals, SearchSpace, report, strategies

TOY = "tests.toy_objectives:"
ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).parent / "nas-hpo")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, "run", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_quiet_prints_no_info_lines_and_a_failure_as_one_line(tmp_path):
    common = ["--space", "resnet_blocks", "--objective", TOY + "sometimes_broken",
              "--strategy", "random", "--n-trials", "6", "--seed", "4", "--cost", "none"]
    quiet = _cli(*common, "-q", "--storage", f"sqlite:///{tmp_path / 'q.db'}")
    assert quiet.returncode == 0, quiet.stderr
    study = optuna.load_study(study_name="nas-hpo", storage=f"sqlite:///{tmp_path / 'q.db'}")
    failed = [t.number for t in study.trials if t.state.name == "FAIL"]
    assert failed  # kernel 3 in the first block: some of 6 random draws
    lines = quiet.stderr.strip().splitlines()
    assert "Traceback" not in quiet.stderr and not [ln for ln in lines if ln.startswith("[I ")]
    assert sorted(lines) == sorted(
        f"trial {n} failed: ZeroDivisionError: division by zero (traceback in its "
        "fail_traceback attribute)" for n in failed)
    loud = _cli(*common, "--storage", f"sqlite:///{tmp_path / 'l.db'}")
    assert loud.returncode == 0 and "Traceback" not in loud.stderr
    assert "Trial 0 finished with value(s)" in loud.stderr or 0 in failed


def test_a_multi_objective_study_names_its_values(tmp_path, storage):
    study = nas_hpo.run({"objective": {"name": "cost", "metrics": ["params", "latency"],
                                       "repeats": 2, "warmup": 0}},
                        space="resnet_blocks", strategy="nsga2", n_trials=4, storage=storage,
                        study_name="costs")
    assert study.metric_names == ["params", "latency_ms"]
    written = report.write(study, tmp_path / "rep", formats=("csv",))
    assert {"params", "latency_ms"} <= set(pd.read_csv(written["best.csv"]).columns)
    # A Python function's values are named in the study file.
    named = nas_hpo.run({"study": {"directions": ["maximize", "minimize"],
                                   "metric_names": ["kernels", "depth"]}},
                        space=TOY + "tiny_space", objective=TOY + "tiny_two",
                        strategy="random", n_trials=2, storage=storage, study_name="named")
    assert named.metric_names == ["kernels", "depth"]
    with pytest.raises(nas_hpo.SpecError, match=r"\[study\] metric_names: 1 name\(s\) for 2"):
        nas_hpo.run({"study": {"directions": ["maximize", "minimize"],
                               "metric_names": ["kernels"]}},
                    space=TOY + "tiny_space", objective=TOY + "tiny_two", storage=storage)
    # One value keeps Optuna's columns (``value``): nothing to name.
    single = nas_hpo.run(space="resnet_blocks", objective=TOY + "kernel_sum", n_trials=1,
                         storage=storage, study_name="one")
    assert single.metric_names is None


class _StuckOnZ(optuna.samplers.RandomSampler):
    """A sampler that cannot see the clause: it always proposes ``a = "z"``."""

    def sample_independent(self, study, trial, name, distribution):
        if name == "a":
            return "z"
        return super().sample_independent(study, trial, name, distribution)


def test_a_strategy_that_cannot_see_forbidden_clauses_gets_the_nearest_valid_config(storage):
    space = SearchSpace([Categorical("a", ["x", "y", "z"]), Categorical("b", [0, 1, 2])],
                        forbidden=[ForbiddenEquals("a", "z")])

    def stuck(setting, *, repair: bool = True):
        return strategies.Strategy("stuck", _StuckOnZ(seed=setting.seed),
                                   optuna.pruners.NopPruner(), repair_forbidden=repair)

    with strategies.REGISTRY.temporarily("stuck", stuck):
        study = nas_hpo.run({"strategy": {"name": "stuck", "reevaluate": True}}, space=space,
                            objective=lambda c: 1.0, n_trials=5, storage=storage,
                            study_name="stuck")
        trials = study.get_trials()
        done = [t for t in trials if t.state.name == "COMPLETE"]
        forbidden = {t.number: t for t in trials if "forbidden" in t.user_attrs}
        # Each forbidden draw is followed by its repair: 5 evaluations in 10 trials.
        assert len(done) == 5 and len(forbidden) == 5 and len(trials) == 10
        for t in done:
            source = forbidden[t.user_attrs["repaired_from"]]
            assert t.number == source.number + 1
            assert t.params["a"] != "z" and t.params["b"] == source.params["b"]
        # Without the repair the same strategy never gets anywhere.
        with pytest.raises(RuntimeError, match="draws in a row hit a forbidden clause"):
            nas_hpo.run({"strategy": {"name": "stuck", "repair": False}}, space=space,
                        objective=lambda c: 1.0, n_trials=1, storage=":memory:")
    assert strategies.get("gp", strategies.Setting(space, 0, ("maximize",))).repair_forbidden


def test_a_users_space_is_reachable_as_module_function(tmp_path, storage):
    study_file = tmp_path / "mine.toml"
    study_file.write_text(f"""
[study]
storage = "{storage}"
name = "mine"
cost = []
directions = ["maximize", "maximize"]
[space]
name = "{TOY}tiny_space"
choices = 2
[objective]
name = "{TOY}tiny_two"
""")
    study = nas_hpo.run(study_file, n_trials=3)
    assert study.user_attrs["space"] == TOY + "tiny_space"
    assert all(set(t.params.values()) <= {0, 1} for t in study.trials)
    bad = _cli("--space", TOY + "tiny_space", "--objective", TOY + "kernel_sum",
               "--storage", ":memory:")
    assert bad.returncode == 0, bad.stderr  # kernel_sum of a config without kernels: 0.0
    with pytest.raises(nas_hpo.SpecError, match=r"\[space\] colours: unknown key; allowed: "
                       "choices"):
        nas_hpo.run({"space": {"name": TOY + "tiny_space", "colours": 3}},
                    objective=TOY + "tiny_two", storage=":memory:")
