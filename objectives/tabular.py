"""``tabular``: look an architecture's result up in a table instead of training it.

Tabular NAS benchmarks (NAS-Bench-101/201/301, NATS-Bench, HW-NAS-Bench) publish the trained
result of every architecture of a space, so that search strategies can be compared in seconds
on the same ground truth. This objective reads such a table from a file — CSV, Parquet or JSON
lines, one row per architecture (and per fidelity and seed where the table has them) — and
returns the row's metric(s) for the trial's architecture, found by the space's architecture
key (``space.arch_key(config)``: for ``nb201`` the official NAS-Bench-201 string, so a table
exported from NAS-Bench-201 / NATS-Bench joins as it is).

Rows of the same architecture (and fidelity) are repeated runs: the value is their mean, the
trial records how many there were and their standard deviation. With a ``fidelity`` column
(e.g. ``epoch``), a multi-fidelity strategy asks for ``{fidelity: budget}`` and gets the rows
at the largest fidelity not above the budget; without a budget, the largest. On the way, each
level up to it is reported as an intermediate value (``report_steps``), so pruners decide on
the table's curves as they would on a training's. ``cost`` names a column of what reaching a
row would have cost (e.g. cumulative training seconds at that epoch): it is spent level by
level (``Context.spend``: the ``simulated`` backend's clock waits for it) and recorded on the
trial as ``simulated_cost``, so that a benchmark can plot results against simulated time.
Numeric ``attrs`` are averaged over the repeated runs like the metrics.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from nas_hpo._objective import Context, Objective, Result, TrialFailure
from nas_hpo.objectives import register
from nas_hpo.space import SearchSpace

READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "json",
           ".json": "json"}


@dataclass(frozen=True)
class _Table:
    """The rows grouped for lookups: ``rows[arch][fidelity]`` -> (values per metric per row,
    costs, attribute values of the first row); ``fidelities[arch]`` sorted."""

    rows: dict[str, dict[Any, tuple[list[list[float]], list[float], dict[str, Any]]]]
    fidelities: dict[str, list[Any]]
    n_rows: int
    example: str


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime: float, key: str, metrics: tuple[str, ...], fidelity: str | None,
          cost: str | None, attrs: tuple[str, ...]) -> _Table:
    import pandas as pd

    kind = READERS[Path(path).suffix.lower()]
    try:
        if kind == "csv":
            frame = pd.read_csv(path)
        elif kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, lines=Path(path).suffix.lower() == ".jsonl")
    except Exception as e:
        raise ValueError(f"path: cannot read {path} as {kind}: {type(e).__name__}: {e}") from None
    needed = [key, *metrics, *([fidelity] if fidelity else []), *([cost] if cost else []),
              *attrs]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} has no column {', '.join(map(repr, missing))}; its columns: "
                         + ", ".join(map(str, frame.columns)))
    if frame.empty:
        raise ValueError(f"{path} has no rows")
    rows: dict[str, dict[Any, tuple[list[list[float]], list[float], dict[str, Any]]]] = {}
    for column in (*metrics, *([cost] if cost else [])):
        try:
            frame[column] = frame[column].astype(float)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: column {column!r} is not numeric ({e})") from None
    keys = frame[key].astype(str).tolist()
    values = frame[list(metrics)].to_numpy().tolist()
    levels = frame[fidelity].tolist() if fidelity else [None] * len(frame)
    costs = frame[cost].tolist() if cost else [math.nan] * len(frame)
    extra = frame[list(attrs)].to_dict("records") if attrs else [{}] * len(frame)
    seen: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for arch, vals, level, c, a in zip(keys, values, levels, costs, extra, strict=True):
        if hasattr(level, "item"):
            level = level.item()
        group = rows.setdefault(arch, {}).setdefault(level, ([], [], {}))
        group[0].append(vals)
        group[1].append(c)
        if attrs:
            seen.setdefault((arch, level), []).append(a)
    for (arch, level), found in seen.items():  # numbers averaged over the runs, else the first
        merged = rows[arch][level][2]
        for k in attrs:
            values_k = [_plain(r[k]) for r in found]
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                          for v in values_k)
            merged[k] = sum(values_k) / len(values_k) if numeric else values_k[0]
    fidelities = {arch: sorted(levels_) for arch, levels_ in rows.items()} if fidelity else {}
    return _Table(rows, fidelities, len(frame), keys[0])


def _tables() -> Path:
    """The folder of the tables nas-hpo ships (``nas_hpo/tables``)."""
    from importlib.resources import files

    return Path(str(files("nas_hpo"))) / "tables"


def shipped_table(name: str) -> Path:
    """Where the table nas-hpo ships as ``name`` is (whether or not it exists)."""
    return _tables() / f"{name}.parquet"


@register("tabular", needs="table")
@dataclass(frozen=True)
class Tabular(Objective):
    """``path`` (CSV / Parquet / JSON lines), ``key`` (the column of architecture keys),
    ``metrics`` (the value columns, one study direction each; maximized unless the study's
    ``directions`` say otherwise), ``fidelity`` (a column a multi-fidelity strategy selects
    rows by), ``cost`` (a column recorded as ``simulated_cost``), ``attrs`` (more columns to
    record on the trial)."""

    path: str = ""
    key: str = "arch"
    metrics: list[str] | tuple[str, ...] = ("accuracy",)
    fidelity: str | None = None
    cost: str | None = None
    attrs: list[str] | tuple[str, ...] = ()
    report_steps: bool = True

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("path: the table's file is required (CSV, Parquet or JSON lines)")
        path = Path(self.path).expanduser()
        if not path.suffix and (shipped_table(self.path)).is_file():
            object.__setattr__(self, "path", str(shipped_table(self.path)))
            path = Path(self.path)
        if path.suffix.lower() not in READERS:
            raise ValueError(f"path: {self.path} is not a table this reads (by its suffix: "
                             f"{', '.join(READERS)})")
        if not path.is_file():
            shipped = sorted(p.stem for p in _tables().glob("*.parquet"))
            raise ValueError(f"path: no such file {path} (tables nas-hpo ships, by name: "
                             f"{', '.join(shipped) or 'none'})")
        metrics = (self.metrics,) if isinstance(self.metrics, str) else tuple(self.metrics)
        if not metrics:
            raise ValueError("metrics: name at least one column")
        object.__setattr__(self, "metrics", metrics)
        object.__setattr__(self, "attrs", tuple(self.attrs))
        object.__setattr__(self, "directions", ("maximize",) * len(metrics))
        object.__setattr__(self, "fidelities", (self.fidelity,) if self.fidelity else ())
        self.table()  # read now: a wrong file or column is an error before the study

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(self.metrics)

    @property
    def max_steps(self) -> int | None:
        if not (self.fidelity and self.report_steps):
            return None
        return max(map(len, self.table().fidelities.values()))

    def best(self, report: str | None = None, maximize: bool = True
             ) -> tuple[str, float, float | None]:
        """The table's best architecture by the first metric (mean over its rows at its
        largest fidelity): its key, that mean, and the mean of ``report`` (an attribute
        column, e.g. the test accuracy) over the same rows — what a benchmark's regret is
        measured from."""
        table = self.table()
        chosen, best = "", math.nan
        for arch, levels in table.rows.items():
            top = table.fidelities[arch][-1] if self.fidelity else None
            value = fmean([r[0] for r in levels[top][0]])
            if math.isnan(best) or (value > best if maximize else value < best):
                chosen, best = arch, value
        if report is None:
            return chosen, best, None
        top = table.fidelities[chosen][-1] if self.fidelity else None
        shown = table.rows[chosen][top][2].get(report)
        if shown is None and report in self.metrics:
            shown = fmean([r[self.metrics.index(report)] for r in table.rows[chosen][top][0]])
        return chosen, best, None if shown is None else float(shown)

    def table(self) -> _Table:
        path = Path(self.path).expanduser().resolve()
        return _read(str(path), os.stat(path).st_mtime, self.key, self.metrics, self.fidelity,
                     self.cost, self.attrs)

    def __call__(self, config: Mapping[str, Any], *, space: SearchSpace, ctx: Context) -> Result:
        table = self.table()
        arch = space.arch_key(config)
        found = table.rows.get(arch)
        if found is None:
            raise TrialFailure(
                f"architecture {arch} is not in the table {self.path} ({table.n_rows} rows, "
                f"keys like {table.example!r})"
            )
        level = None
        if self.fidelity:
            levels = table.fidelities[arch]
            budget = ctx.fidelity.get(self.fidelity)
            below = levels if budget is None else [v for v in levels if v <= budget]
            if not below:
                raise TrialFailure(f"architecture {arch} has no row at {self.fidelity} <= "
                                   f"{budget} in {self.path} (it has {levels})")
            level = below[-1]
            spent = 0.0
            for i, step in enumerate(below):
                runs, costs, _ = found[step]
                cost = fmean(costs) if self.cost else math.nan
                if math.isfinite(cost):  # (a row without its cost costs nothing)
                    ctx.spend(max(cost - spent, 0.0))
                    spent = max(spent, cost)
                if self.report_steps:
                    whole = isinstance(step, (int, float)) and float(step).is_integer()
                    ctx.report(fmean([r[0] for r in runs]), int(step) if whole else i + 1)
        elif self.cost and math.isfinite(fmean(found[None][1])):
            ctx.spend(fmean(found[None][1]))
        runs, costs, attrs = found[level]
        n = len(runs)
        means = [fmean([r[i] for r in runs]) for i in range(len(self.metrics))]
        out: dict[str, Any] = {"table_rows": n}
        for i, name in enumerate(self.metrics):
            out[name] = means[i]
            if n > 1:
                out[f"{name}_std"] = math.sqrt(sum((r[i] - means[i]) ** 2 for r in runs)
                                               / (n - 1))
        if self.fidelity:
            out["fidelity"] = {self.fidelity: level}
        if self.cost:
            out["simulated_cost"] = fmean(costs)
        out.update(attrs)
        return Result(tuple(means), out)
