"""A benchmark's results: anytime curves, regret, tables and a plot.

For each run, the incumbent after each finished trial is the complete trial with the best
value so far (the study's direction: chosen by validation), and what it reports is its
``[bench] report`` attribute (e.g. ``test_accuracy``; the value itself without one). The
regret is the distance from what the table's best architecture by validation reports
(``Tabular.best``) to the incumbent's report: 0 is where selecting by validation leads with
the whole table known (below 0 where a cell a little worse on validation tests better). Curves are taken against evaluations (finished trials, in the order they finished)
and against simulated time (``sim_end``), averaged over seeds with a 95% Student-t interval of
the mean. The table gives the final value and the values at 10/25/50/100% of the budget
(mean ± std over seeds) and each strategy's average rank over seeds (1 = best; ties share).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from nas_hpo.benchmarking._runner import COMPLETE_ATTR
from nas_hpo.benchmarking._spec import BenchSpec
from nas_hpo.space import FORBIDDEN_ATTR

__all__ = ["FRACTIONS", "Run", "anytime", "at_evaluations", "load_runs", "mean_interval",
           "searched_at", "summary", "write"]

FRACTIONS = (0.10, 0.25, 0.50, 1.00)
_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
             optuna.trial.TrialState.FAIL)


@dataclass
class Run:
    """One run's trace: after each finished trial (in the order they finished), its end time
    and the incumbent's report (NaN before the first complete trial)."""

    label: str
    seed: int
    ends: np.ndarray
    reports: np.ndarray
    #: The incumbent's own value (what the study optimizes, e.g. validation accuracy) after
    #: each finished trial; ``None`` where not loaded.
    values: np.ndarray | None = None


def trace(trials: list[optuna.trial.FrozenTrial], maximize: bool, report: str | None,
          *, values: bool = False) -> tuple[np.ndarray, ...]:
    """Ends and incumbent reports of the finished, counted trials of one run (and, with
    ``values``, the incumbent's own values)."""
    done = [t for t in trials if t.state in _FINISHED and FORBIDDEN_ATTR not in t.user_attrs]
    done.sort(key=lambda t: (t.user_attrs.get("sim_end", 0.0), t.number))
    best, shown = None, math.nan
    ends, reports, bests = [], [], []
    for t in done:
        if t.state == optuna.trial.TrialState.COMPLETE:
            value = t.values[0]
            if best is None or (value > best if maximize else value < best):
                best = value
                got = t.user_attrs.get(report, math.nan) if report else value
                shown = float(got) if isinstance(got, (int, float)) else math.nan
        ends.append(float(t.user_attrs.get("sim_end", len(ends) + 1)))
        reports.append(shown)
        bests.append(math.nan if best is None else float(best))
    if values:
        return np.asarray(ends), np.asarray(reports), np.asarray(bests)
    return np.asarray(ends), np.asarray(reports)


def load_runs(spec: BenchSpec, storage: optuna.storages.BaseStorage) -> tuple[list[Run], bool]:
    """The complete runs of the benchmark in ``storage`` and whether the study maximizes."""
    runs, maximize = [], True
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        attrs = summary.user_attrs
        if not attrs.get(COMPLETE_ATTR) or not summary.study_name.startswith(
                f"bench/{spec.name}/"):
            continue
        label, seed = attrs["bench_strategy"], attrs["bench_seed"]
        if label not in spec.strategies or seed not in spec.seeds:
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
        ends, reports, values = trace(study.get_trials(deepcopy=False), maximize, spec.report,
                                      values=True)
        runs.append(Run(label, seed, ends, reports, values))
    return runs, maximize


def at_evaluations(run: Run, n: int) -> float:
    """The incumbent's report after ``n`` evaluations (the last one if the run had fewer)."""
    if len(run.reports) == 0:
        return math.nan
    return float(run.reports[min(n, len(run.reports)) - 1])


def searched_at(run: Run, n: int) -> float:
    """The incumbent's own value after ``n`` evaluations (the last one if the run had fewer;
    NaN where the run carries no values)."""
    if run.values is None or len(run.values) == 0:
        return math.nan
    return float(run.values[min(n, len(run.values)) - 1])


def at_time(run: Run, t: float) -> float:
    """The incumbent's report at simulated time ``t``."""
    k = int(np.searchsorted(run.ends, t, side="right"))
    return float(run.reports[k - 1]) if k > 0 else math.nan


def mean_interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval of the mean over seeds (NaNs left out)."""
    from scipy import stats

    v = values[~np.isnan(values)]
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if len(v) == 1:
        return mean, mean, mean
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return mean, mean - half, mean + half


def anytime(runs: list[Run], labels: list[str], axis: str, grid: np.ndarray
            ) -> dict[str, np.ndarray]:
    """Per label, a (len(grid), n_seeds) array of incumbent reports along ``axis``."""
    at = at_evaluations if axis == "evaluations" else at_time
    out = {}
    for label in labels:
        mine = [r for r in runs if r.label == label]
        out[label] = np.array([[at(r, x) for r in mine] for x in grid]).reshape(len(grid), -1)
    return out


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation over seeds of the values there are (NaN: none / one)."""
    v = values[~np.isnan(values)]
    return (float(v.mean()) if len(v) else math.nan,
            float(v.std(ddof=1)) if len(v) > 1 else math.nan)


def _ranks(finals: dict[str, dict[int, float]], maximize: bool) -> dict[str, float]:
    """Average over seeds of each label's rank among the labels (1 = best, ties averaged)."""
    from scipy.stats import rankdata

    labels = list(finals)
    seeds = sorted(set.intersection(*(set(v) for v in finals.values()))) if finals else []
    ranks: dict[str, list[float]] = {label: [] for label in labels}
    for seed in seeds:
        values = np.array([finals[label][seed] for label in labels])
        values = np.where(np.isnan(values), -np.inf if maximize else np.inf, values)
        r = rankdata(-values if maximize else values)
        for label, rank in zip(labels, r, strict=True):
            ranks[label].append(float(rank))
    return {label: float(np.mean(v)) if v else math.nan for label, v in ranks.items()}


def summary(spec: BenchSpec, runs: list[Run], maximize: bool, optimum: float | None,
            n_trials: int, max_cost: float | None, best_value: float | None = None
            ) -> list[dict[str, Any]]:
    """One row per strategy: runs, final and anytime mean ± std (and regret), average rank;
    where the runs carry their values, the incumbent's final value (what was searched, e.g.
    validation accuracy) and, given the table's ``best_value``, the fraction of runs whose
    incumbent has it (found the best by validation)."""
    labels = list(spec.strategies)
    rows = []
    finals: dict[str, dict[int, float]] = {}
    for label in labels:
        mine = [r for r in runs if r.label == label]
        row: dict[str, Any] = {"strategy": label, "runs": len(mine)}
        final = np.array([at_evaluations(r, n_trials) for r in mine])
        finals[label] = {r.seed: v for r, v in zip(mine, final, strict=True)}
        axes = [("eval", n_trials, at_evaluations)]
        if max_cost is not None:
            axes.append(("time", max_cost, at_time))
        for axis, total, at in axes:
            for f in FRACTIONS:
                x = max(1, round(total * f)) if axis == "eval" else total * f
                v = np.array([at(r, x) for r in mine])
                row[f"{axis}@{int(f * 100)}%"], row[f"{axis}@{int(f * 100)}%_std"] = _mean_std(v)
        row["final"] = row["eval@100%"]
        row["final_std"] = row["eval@100%_std"]
        if optimum is not None:
            row["regret"], row["regret_std"] = _mean_std((optimum - final) if maximize
                                                         else (final - optimum))
        if mine and all(r.values is not None and len(r.values) for r in mine):
            searched = np.array([searched_at(r, n_trials) for r in mine])
            row["value"], row["value_std"] = _mean_std(searched)
            if best_value is not None:
                row["found"] = float(np.mean(np.isclose(searched, best_value, rtol=0,
                                                        atol=1e-12)))
        rows.append(row)
    ranks = _ranks(finals, maximize)
    for row in rows:
        row["avg_rank"] = ranks[row["strategy"]]
    return rows


def _markdown(rows: list[dict[str, Any]], spec: BenchSpec, optimum: float | None) -> str:
    axes = [k for k in rows[0] if "@" in k and not k.endswith("_std")]
    searched = all("value" in r for r in rows)
    found = searched and all("found" in r for r in rows)
    head = ["strategy", "runs", "final", *(["regret"] if optimum is not None else []),
            *(["value"] if searched else []), *(["found best"] if found else []), *axes,
            "avg rank"]
    lines = [f"# {spec.name}: {spec.report or 'value'} of the incumbent chosen by validation",
             "", "mean ± std over seeds; regret to the table's best by validation"
             + (f" ({optimum:.4f})" if optimum is not None else "") + "; value: the "
             "incumbent's own (searched) value; found best: the share of runs whose incumbent "
             "has the table's best value; rank 1 = best", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["strategy"], str(r["runs"]), f"{r['final']:.4f} ± {r['final_std']:.4f}"]
        if optimum is not None:
            cells.append(f"{r['regret']:.4f} ± {r['regret_std']:.4f}")
        if searched:
            cells.append(f"{r['value']:.4f} ± {r['value_std']:.4f}")
        if found:
            cells.append(f"{r['found']:.2f}")
        cells += [f"{r[a]:.4f} ± {r[a + '_std']:.4f}" for a in axes]
        cells.append(f"{r['avg_rank']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plot(path: Path, spec: BenchSpec, runs: list[Run], maximize: bool,
          optimum: float | None, n_trials: int, max_cost: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(spec.strategies)
    horizon = max_cost or max((float(r.ends[-1]) for r in runs if len(r.ends)), default=1.0)
    panels = [("evaluations", np.arange(1, n_trials + 1)),
              ("simulated seconds", np.linspace(0, horizon, 200))]
    rows = 2 if optimum is not None else 1
    fig, axes = plt.subplots(rows, 2, figsize=(11, 4 * rows), squeeze=False)
    for col, (axis, grid) in enumerate(panels):
        curves = anytime(runs, labels, "evaluations" if col == 0 else "time", grid)
        for label in labels:
            stats = np.array([mean_interval(v) for v in curves[label]])
            for row in range(rows):
                ax = axes[row][col]
                if row == 0:
                    y, lo, hi = stats[:, 0], stats[:, 1], stats[:, 2]
                else:
                    sign = 1 if maximize else -1
                    y, lo, hi = (sign * (optimum - stats[:, 0]), sign * (optimum - stats[:, 2]),
                                 sign * (optimum - stats[:, 1]))
                ax.plot(grid, y, label=label)
                ax.fill_between(grid, lo, hi, alpha=0.2)
        for row in range(rows):
            ax = axes[row][col]
            ax.set_xlabel(axis)
            ax.set_ylabel(spec.report or "value" if row == 0 else "regret")
            if row == 1:
                ax.set_yscale("symlog", linthresh=1e-3)
            ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.suptitle(f"{spec.name}: mean and 95% interval over {len(spec.seeds)} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(spec: BenchSpec, runs: list[Run], maximize: bool, optimum: float | None,
          n_trials: int, max_cost: float | None, best_value: float | None = None
          ) -> dict[str, Path]:
    """The table (markdown and CSV) and the plot into ``spec.output``."""
    import pandas as pd

    spec.output.mkdir(parents=True, exist_ok=True)
    rows = summary(spec, runs, maximize, optimum, n_trials, max_cost, best_value)
    paths = {"csv": spec.output / f"{spec.name}.csv", "md": spec.output / f"{spec.name}.md",
             "png": spec.output / f"{spec.name}.png"}
    pd.DataFrame(rows).to_csv(paths["csv"], index=False)
    paths["md"].write_text(_markdown(rows, spec, optimum))
    _plot(paths["png"], spec, runs, maximize, optimum, n_trials, max_cost)
    return paths
