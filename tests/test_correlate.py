"""Rank correlations with bootstrap intervals, against scipy on hand-made data."""

from __future__ import annotations

import numpy as np
import pytest

from nas_hpo import correlate


def test_perfect_reversed_and_known_rankings():
    truth = [0.1, 0.5, 0.3, 0.9, 0.7]
    same = correlate.rank_correlation(truth, [1, 5, 3, 9, 7], n_boot=200)
    assert same.spearman == pytest.approx(1.0) and same.kendall == pytest.approx(1.0)
    assert same.spearman_ci == pytest.approx((1.0, 1.0))
    rev = correlate.rank_correlation(truth, [-1, -5, -3, -9, -7], n_boot=200)
    assert rev.spearman == pytest.approx(-1.0) and rev.kendall == pytest.approx(-1.0)
    # one swapped adjacent pair among 5: rho = 1 - 6*2/(5*24) = 0.9, tau = (9-1)/10 = 0.8
    one_swap = correlate.rank_correlation([1, 2, 3, 4, 5], [1, 2, 4, 3, 5], n_boot=500)
    assert one_swap.spearman == pytest.approx(0.9) and one_swap.kendall == pytest.approx(0.8)
    lo, hi = one_swap.spearman_ci
    assert -1 <= lo <= 0.9 <= hi <= 1


def test_bootstrap_interval_covers_a_noisy_correlation_and_is_seeded():
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    y = x + rng.normal(scale=1.0, size=200)
    r = correlate.rank_correlation(x, y, n_boot=300, seed=3)
    assert r.spearman_ci[0] < r.spearman < r.spearman_ci[1]
    assert 0.5 < r.spearman < 0.85 and r.spearman_ci[1] - r.spearman_ci[0] < 0.25
    assert correlate.rank_correlation(x, y, n_boot=300, seed=3) == r


def test_bad_estimates_are_named_errors():
    with pytest.raises(ValueError, match="synflow: the estimate is the same for all 4"):
        correlate.rank_correlation([1, 2, 3, 4], [7, 7, 7, 7], name="synflow")
    with pytest.raises(ValueError, match="non-finite"):
        correlate.rank_correlation([1, 2, 3], [1, float("nan"), 2], name="x")


def test_correlate_uses_stored_attributes_and_computed_estimators(tmp_path):
    truth = correlate.GroundTruth(
        keys=["a", "b", "c", "d"], values=[0.1, 0.4, 0.2, 0.8],
        configs=[{"w": 1}, {"w": 4}, {"w": 2}, {"w": 8}],
        attrs=[{"params": 10}, {"params": 40}, {"params": 30}, {"params": 20}],
    )
    results, estimates = correlate.correlate(truth, ["params", "w"],
                                             compute={"w": lambda c: float(c["w"])}, n_boot=50)
    by = {r.estimator: r for r in results}
    assert by["w"].spearman == pytest.approx(1.0)
    # truth ranks 1,3,2,4 vs params ranks 1,4,3,2: d² = 0+1+1+4, rho = 1 - 6·6/(4·15) = 0.4
    assert by["params"].spearman == pytest.approx(0.4)
    text = correlate.table(results)
    assert text.splitlines()[2].startswith("w ") and "params" in text
    written = correlate.scatter(truth, estimates, results, tmp_path)
    assert all(open(p, "rb").read(4) == b"\x89PNG" for p in written.values())
    with pytest.raises(ValueError, match="unknown estimator 'zen'"):
        correlate.correlate(truth, ["zen"])


def test_cli_correlates_stored_costs_with_a_study_and_a_csv(tmp_path, storage, capsys):
    import pandas as pd

    import nas_hpo
    from nas_hpo.cli import main

    nas_hpo.run({"study": {"cost": ["params", "flops"]}}, space="resnet_blocks",
                objective="tests.toy_objectives:kernel_sum", strategy="random", n_trials=12,
                storage=storage, study_name="truth")
    out = tmp_path / "corr"
    assert main(["correlate", "truth", "--storage", storage, "--estimators", "flops,params",
                 "--n-boot", "200", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "12 architectures; ground truth: value" in printed
    table = pd.read_csv(out / "correlations.csv")
    assert set(table["estimator"]) == {"flops", "params"}
    assert table[["spearman", "spearman_lo", "spearman_hi", "kendall"]].notna().all().all()
    assert (out / "scatter_flops.png").exists()
    # The same ground truth as a CSV keyed by architecture.
    rows = [{"arch": f"a{i}", "accuracy": i / 10, "params": 100 - i} for i in range(6)]
    pd.DataFrame(rows).to_csv(tmp_path / "truth.csv", index=False)
    assert main(["correlate", str(tmp_path / "truth.csv"), "--estimators", "params",
                 "--n-boot", "50"]) == 0
    assert "-1.000" in capsys.readouterr().out
    assert main(["correlate", str(tmp_path / "truth.csv"), "--estimators", "params",
                 "--value", "acc"]) == 2
    assert "no column 'acc'" in capsys.readouterr().err


@pytest.mark.slow
def test_end_to_end_correlation_of_proxies_with_trained_nb201_on_digits(tmp_path, capsys):
    """A few dozen nb201 cells trained briefly on digits, proxies stored by also_score and
    computed by correlate itself: the table has a finite row per estimator."""
    import pandas as pd

    from nas_hpo.cli import main

    study_file = tmp_path / "corr.toml"
    study_file.write_text(f"""
[study]
name = "corr"
storage = "sqlite:///{tmp_path / 'corr.db'}"
cost = ["params", "flops"]
[space]
name = "nb201"
C = 4
N = 1
[objective]
name = "train"
dataset = "digits"
epochs = 2
also_score = ["synflow", "nwot", "snip", "jacob_cov"]
[strategy]
name = "random"
[budget]
n_trials = 24
""")
    assert main(["run", str(study_file), "-q"]) == 0
    out = tmp_path / "out"
    code = main(["correlate", str(study_file), "--estimators",
                 "params,flops,zc_synflow,zc_nwot,vote,grad_norm", "--n-boot", "200",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "architectures; ground truth: value" in printed
    table = pd.read_csv(out / "correlations.csv")
    assert list(table["estimator"]) == ["params", "flops", "zc_synflow", "zc_nwot", "vote",
                                        "grad_norm"]
    assert table.drop(columns="estimator").notna().all().all()
    assert ((table["spearman"] >= -1) & (table["spearman"] <= 1)).all()
    assert table["n"].min() >= 20  # distinct architectures among the 24 trials
