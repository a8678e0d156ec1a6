"""How well does a cheap estimator rank architectures? Spearman ρ and Kendall τ against ground
truth, with bootstrap confidence intervals, a table and a scatter plot per estimator.

Ground truth is a finished study (each architecture's mean value over its COMPLETE trials) or
a CSV with one row per architecture. Estimators are trial attributes already stored (``params``,
``flops``, ``latency_ms``, ``zc_synflow`` from ``also_score``, ...) or zero-cost proxies
computed here on the study's space (``synflow``, ``nwot``, ... see
``nas_hpo.objectives.zero_cost``). ``nas-hpo correlate`` is the command line of this module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Correlation", "GroundTruth", "correlate", "from_csv", "from_study", "rank_correlation",
           "table"]


@dataclass(frozen=True)
class Correlation:
    """Rank correlations of one estimator with the ground truth over ``n`` architectures."""

    estimator: str
    n: int
    spearman: float
    spearman_ci: tuple[float, float]
    kendall: float
    kendall_ci: tuple[float, float]


@dataclass
class GroundTruth:
    """One row per architecture: its key, its config (when known), its true value, and the
    attributes its trials stored (the estimators that need no computation)."""

    keys: list[str]
    values: list[float]
    configs: list[dict[str, Any] | None]
    attrs: list[dict[str, Any]] = field(default_factory=list)
    label: str = "value"


def from_study(study: Any, *, objective: int = 0) -> GroundTruth:
    """Each architecture (``arch`` user attribute) of ``study``'s COMPLETE trials with the mean
    of its values (``objective``-th value of a multi-objective study) and the params of its
    first trial as its config."""
    import optuna

    rows: dict[str, dict[str, Any]] = {}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        key = t.user_attrs.get("arch") or json.dumps(t.params, sort_keys=True)
        row = rows.setdefault(key, {"values": [], "config": dict(t.params), "attrs": {}})
        row["values"].append(float(t.values[objective]))
        for k, v in t.user_attrs.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                row["attrs"].setdefault(k, []).append(float(v))
    keys = sorted(rows)
    return GroundTruth(
        keys=keys,
        values=[float(np.mean(rows[k]["values"])) for k in keys],
        configs=[rows[k]["config"] for k in keys],
        attrs=[{a: float(np.mean(v)) for a, v in rows[k]["attrs"].items()} for k in keys],
        label=(study.metric_names or ["value"])[objective] if study.metric_names else "value",
    )


def from_csv(path: str | Path, *, key: str = "arch", value: str = "accuracy") -> GroundTruth:
    """A CSV with one row per architecture: ``key`` column, ``value`` column, an optional
    ``config`` column (JSON of the config, needed for proxies computed here), and any other
    numeric columns usable as estimators."""
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: a folder, not a CSV file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a CSV file pandas can read ({e})") from None
    for column in (key, value):
        if column not in frame.columns:
            raise ValueError(f"{path}: no column {column!r}; columns: {', '.join(frame.columns)}")
    try:
        configs = ([json.loads(c) if isinstance(c, str) else None for c in frame["config"]]
                   if "config" in frame.columns else [None] * len(frame))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: a value of the config column is not JSON ({e})") from None
    numeric = [c for c in frame.columns if c not in (key, value, "config")
               and frame[c].dtype.kind in "if"]
    attrs = [{c: float(row[c]) for c in numeric if not math.isnan(row[c])}
             for _, row in frame.iterrows()]
    return GroundTruth([str(k) for k in frame[key]], [float(v) for v in frame[value]],
                       configs, attrs, label=value)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def _kendall(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def rank_correlation(truth: Sequence[float], estimate: Sequence[float], *, name: str = "",
                     n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Correlation:
    """Spearman ρ and Kendall τ (tau-b) with percentile bootstrap intervals over ``n_boot``
    resamples of the architectures. A resample in which either side is constant has no rank
    correlation and is left out; an estimator constant over all architectures is an error."""
    t = np.asarray(truth, dtype=float)
    e = np.asarray(estimate, dtype=float)
    if t.shape != e.shape or t.ndim != 1:
        raise ValueError(f"{name}: {t.shape} true values against {e.shape} estimates")
    if len(t) < 3:
        raise ValueError(f"{name}: {len(t)} architecture(s); rank correlation needs >= 3")
    if not (np.isfinite(t).all() and np.isfinite(e).all()):
        raise ValueError(f"{name}: non-finite values among the estimates or the ground truth")
    if np.ptp(e) == 0 or np.ptp(t) == 0:
        raise ValueError(f"{name}: the {'estimate' if np.ptp(e) == 0 else 'ground truth'} is "
                         f"the same for all {len(t)} architectures; no ranking to compare")
    rng = np.random.default_rng(seed)
    rhos, taus = [], []
    for _ in range(n_boot):
        idx = rng.integers(0, len(t), len(t))
        if np.ptp(t[idx]) == 0 or np.ptp(e[idx]) == 0:
            continue
        rhos.append(_spearman(t[idx], e[idx]))
        taus.append(_kendall(t[idx], e[idx]))
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100

    def ci(xs: list[float]) -> tuple[float, float]:
        return (float(np.percentile(xs, lo)), float(np.percentile(xs, hi))) if xs else (
            math.nan, math.nan)

    return Correlation(name, len(t), _spearman(t, e), ci(rhos), _kendall(t, e), ci(taus))


Estimator = Callable[[dict[str, Any]], float]


def correlate(truth: GroundTruth, estimators: Sequence[str], *,
              compute: Mapping[str, Estimator] | None = None, n_boot: int = 1000,
              seed: int = 0) -> tuple[list[Correlation], dict[str, list[float]]]:
    """The correlation of each estimator with ``truth``. An estimator is a stored attribute of
    every architecture, or a function of the config in ``compute``. Returns the correlations
    and the estimates (for plots)."""
    compute = dict(compute or {})
    results, estimates = [], {}
    for name in estimators:
        if all(name in a for a in truth.attrs) and truth.attrs:
            values = [a[name] for a in truth.attrs]
        elif name in compute:
            missing = [k for k, c in zip(truth.keys, truth.configs, strict=True) if c is None]
            if missing:
                raise ValueError(f"{name}: needs each architecture's config; none for "
                                 f"{missing[0]!r} (a CSV needs a 'config' column)")
            values = [compute[name](c) for c in truth.configs]  # type: ignore[arg-type]
        else:
            known = sorted(set().union(*truth.attrs) if truth.attrs else set()) + sorted(compute)
            raise ValueError(f"unknown estimator {name!r}: not stored on every architecture nor "
                             f"computable; known: {', '.join(known)}")
        estimates[name] = values
        results.append(rank_correlation(truth.values, values, name=name, n_boot=n_boot,
                                        seed=seed))
    return results, estimates


def table(results: Sequence[Correlation], *, level: float = 0.95) -> str:
    """The correlations as a text table, best Spearman first."""
    pct = f"{level:.0%}"
    header = (f"{'estimator':<16} {'n':>5}  {'Spearman ρ':>10}  {pct + ' CI':>16}  "
              f"{'Kendall τ':>9}  {pct + ' CI':>16}")
    lines = [header, "-" * len(header)]
    for r in sorted(results, key=lambda r: -r.spearman):
        lines.append(
            f"{r.estimator:<16} {r.n:>5}  {r.spearman:>10.3f}  "
            f"[{r.spearman_ci[0]:>6.3f}, {r.spearman_ci[1]:>6.3f}]  {r.kendall:>9.3f}  "
            f"[{r.kendall_ci[0]:>6.3f}, {r.kendall_ci[1]:>6.3f}]"
        )
    return "\n".join(lines)


def scatter(truth: GroundTruth, estimates: Mapping[str, list[float]],
            results: Sequence[Correlation], out_dir: str | Path) -> dict[str, str]:
    """One PNG per estimator: estimate against true value, ρ and τ in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nas_hpo.report import output_folder

    out = output_folder(out_dir)
    by_name = {r.estimator: r for r in results}
    written = {}
    for name, values in estimates.items():
        r = by_name[name]
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.scatter(values, truth.values, s=10, alpha=0.7)
        ax.set_xlabel(name)
        ax.set_ylabel(truth.label)
        ax.set_title(f"{name}: ρ={r.spearman:.3f}, τ={r.kendall:.3f} (n={r.n})")
        if min(values) > 0 and max(values) / min(values) > 100:
            ax.set_xscale("log")
        fig.tight_layout()
        path = out / f"scatter_{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written[name] = str(path)
    return written
