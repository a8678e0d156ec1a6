"""Results for people: the text summary ``nas-hpo run`` prints, and ``nas-hpo report``'s
tables (CSV / Parquet through pandas) and plots (Optuna's matplotlib visualizations)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import optuna

from nas_hpo.space import FORBIDDEN_ATTR

__all__ = ["best_frame", "output_folder", "pareto_points", "summary", "trials_frame", "write"]

_STATES = ("COMPLETE", "PRUNED", "FAIL")


def _value(t: optuna.trial.FrozenTrial) -> str:
    return ", ".join(f"{v:.4f}" for v in t.values) if t.values else "-"


def _num(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "-" if v is None else str(v)


def summary(study: optuna.Study, *, top: int = 10) -> str:
    """The best architecture(s) and a table of the ``top`` trials."""
    trials = study.get_trials(deepcopy=False)
    counts = {s: sum(t.state.name == s for t in trials) for s in _STATES}
    forbidden = sum(FORBIDDEN_ATTR in t.user_attrs for t in trials)
    lines = [
        f"study {study.study_name!r}: {len(trials)} trials "
        f"({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed)"
        + (f"; {forbidden} of the pruned were forbidden draws, never evaluated and not counted "
           "against n_trials" if forbidden else "")
    ]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        lines.append("no completed trial yet")
        return "\n".join(lines)
    multi = len(study.directions) > 1
    if multi:
        best = study.best_trials
        lines.append(f"Pareto front: {len(best)} trial(s)")
    else:
        best = [study.best_trial]
        t = best[0]
        lines.append(f"best trial #{t.number}: value {_value(t)}")
        lines.append(f"  arch: {t.user_attrs.get('arch', t.params)}")
        for key in ("params", "test_accuracy", "flops", "latency_ms"):
            if key in t.user_attrs:
                lines.append(f"  {key}: {_num(t.user_attrs[key])}")
    sign = [1 if d == optuna.study.StudyDirection.MAXIMIZE else -1 for d in study.directions]
    ranked = sorted(best if multi else complete,
                    key=lambda t: tuple(-s * v for s, v in zip(sign, t.values, strict=True)))[:top]
    header = f"{'trial':>6}  {'value':>16}  {'params':>11}  {'test_acc':>8}  arch"
    lines += ["", header, "-" * len(header)]
    for t in ranked:
        lines.append(
            f"{t.number:>6}  {_value(t):>16}  {_num(t.user_attrs.get('params')):>11}  "
            f"{_num(t.user_attrs.get('test_accuracy')):>8}  {t.user_attrs.get('arch', '')}"
        )
    return "\n".join(lines)


def trials_frame(study: optuna.Study) -> Any:
    """All trials as a pandas DataFrame: Optuna's columns (number, state, values, params_*,
    user_attrs_*, durations) with nested user attributes (curves, budgets) as JSON text, so
    the frame writes to CSV and Parquet alike."""
    import json

    frame = study.trials_dataframe(multi_index=False)
    for column in frame.columns:
        if frame[column].dtype == object:
            values = frame[column]
            if values.map(lambda v: isinstance(v, (list, dict, tuple))).any():
                frame[column] = values.map(
                    lambda v: json.dumps(v) if isinstance(v, (list, dict, tuple)) else v)
            # Parquet needs one type per column: a column mixing numbers and text is text.
            kinds = {type(v) for v in frame[column].dropna()}
            if len(kinds) > 1:
                frame[column] = frame[column].map(lambda v: None if v is None else str(v))
    return frame


def best_frame(study: optuna.Study, *, top: int = 20) -> Any:
    """The best architectures: the Pareto front of a multi-objective study, else the ``top``
    completed trials by value; with the cost attributes next to the values."""
    import pandas as pd

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    sign = [1 if d == optuna.study.StudyDirection.MAXIMIZE else -1 for d in study.directions]
    chosen = study.best_trials if len(study.directions) > 1 else complete
    chosen = sorted(chosen, key=lambda t: tuple(-s * v for s, v in zip(sign, t.values,
                                                                        strict=True)))[:top]
    names = study.metric_names or (
        ["value"] if len(sign) == 1 else [f"value_{i}" for i in range(len(sign))])
    rows = []
    for t in chosen:
        row: dict[str, Any] = {"trial": t.number}
        row.update(dict(zip(names, t.values, strict=True)))
        for key in ("params", "flops", "latency_ms", "test_accuracy"):
            if key in t.user_attrs:
                row[key] = t.user_attrs[key]
        row["arch"] = t.user_attrs.get("arch", str(t.params))
        rows.append(row)
    return pd.DataFrame(rows)


def pareto_points(points: list[tuple[float, float]], maximize: tuple[bool, bool]
                  ) -> list[int]:
    """Indices of the non-dominated points of a 2-D cloud (for the accuracy-vs-cost plot of a
    single-objective study, whose trials carry a cost attribute)."""
    signs = [1 if m else -1 for m in maximize]
    keep = []
    for i, p in enumerate(points):
        dominated = any(
            all(s * q[k] >= s * p[k] for k, s in enumerate(signs))
            and any(s * q[k] > s * p[k] for k, s in enumerate(signs))
            for j, q in enumerate(points) if j != i
        )
        if not dominated:
            keep.append(i)
    return keep


def output_folder(path: str | os.PathLike[str]) -> Path:
    """The folder ``path`` (created): an existing file there, or one on the way, is a
    ``ValueError`` naming it."""
    out = Path(path)
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ValueError(f"--out {out}: {probe} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out {out}: cannot create the folder: {e.strerror or e}") from None
    return out


def write(study: optuna.Study, out_dir: str | os.PathLike[str], *,
          formats: tuple[str, ...] = ("csv", "parquet")) -> dict[str, str]:
    """Write the report of ``study`` into ``out_dir``: the trials table (CSV / Parquet), the
    best architectures table, and PNG plots (optimization history; Pareto front of the
    objectives, or of the value against FLOPs / parameters when the study has one objective;
    parameter importances where Optuna can compute them). Returns ``{what: path}``; a plot
    that cannot be drawn for this study is reported as ``{what: "skipped: why"}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm

    out = output_folder(out_dir)
    written: dict[str, str] = {}
    frame = trials_frame(study)
    for fmt in formats:
        path = out / f"trials.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        elif fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            raise ValueError(f"unknown format {fmt!r}; known: csv, parquet")
        written[f"trials.{fmt}"] = str(path)
    best = best_frame(study)
    best.to_csv(out / "best.csv", index=False)
    written["best.csv"] = str(out / "best.csv")

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    multi = len(study.directions) > 1

    def save(name: str, draw: Any) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna's "experimental" notices
                draw()
            plt.gcf().set_size_inches(8, 5)
            plt.tight_layout()
            plt.savefig(out / name, dpi=100)
            written[name] = str(out / name)
        except Exception as e:  # e.g. importances of a space no two trials share
            written[name] = f"skipped: {type(e).__name__}: {e}"
        finally:
            plt.close("all")

    if not complete:
        written["plots"] = "skipped: no completed trial"
        return written
    if multi:
        first = (study.metric_names or ["objective 0"])[0]
        save("history.png", lambda: ovm.plot_optimization_history(
            study, target=lambda t: t.values[0], target_name=first))
        save("pareto.png", lambda: ovm.plot_pareto_front(study))
    else:
        save("history.png", lambda: ovm.plot_optimization_history(study))
        cost = next((k for k in ("flops", "params") if all(k in t.user_attrs for t in complete)),
                    None)
        if cost is not None:
            save("pareto.png", lambda: _value_vs_cost(study, complete, cost))
    save("importances.png", lambda: ovm.plot_param_importances(
        study, target=(lambda t: t.values[0]) if multi else None))
    return written


def _value_vs_cost(study: optuna.Study, trials: list[optuna.trial.FrozenTrial],
                   cost: str) -> None:
    """The value of each trial against its cost, the Pareto front of the two drawn."""
    import matplotlib.pyplot as plt

    pts = [(float(t.user_attrs[cost]), float(t.value)) for t in trials]  # type: ignore[arg-type]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    front = sorted(pts[i] for i in pareto_points(pts, (False, maximize)))
    fig, ax = plt.subplots()
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, alpha=0.6, label="trials")
    ax.plot([p[0] for p in front], [p[1] for p in front], "r-o", ms=4, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel(cost)
    ax.set_ylabel("value")
    ax.set_title(f"{study.study_name}: value vs {cost}")
    ax.legend()
