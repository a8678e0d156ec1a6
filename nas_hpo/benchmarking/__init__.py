"""Multi-fidelity benchmarking: strategies × seeds against one study template on a simulated
clock, every run an Optuna study in one storage, and the results a researcher can publish.

    nas-hpo bench studies/bench_nb201_digits.toml
    nas_hpo.bench("studies/bench_nb201_digits.toml", seeds=3)

``load_bench`` reads a benchmark file (``_spec``), ``run_bench`` runs what the storage lacks
(``_runner``), ``results`` writes the anytime plot and the tables (``_results``); ``convert``
turns NAS-Bench-201 / NATS-Bench files into the tabular format (``importers``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas_hpo.benchmarking._results import Run, at_evaluations, load_runs, searched_at, write
from nas_hpo.benchmarking._runner import missing_runs, open_bench_storage, run_bench
from nas_hpo.benchmarking._spec import BenchSpec, load_bench

__all__ = ["BenchSpec", "Run", "at_evaluations", "bench", "load_bench", "load_runs",
           "missing_runs", "open_bench_storage", "optimum_of", "results", "run_bench",
           "searched_at"]


def table_best(spec: BenchSpec, maximize: bool) -> tuple[float, float | None] | None:
    """The table's best architecture by validation: its value and what it reports (None:
    the objective is not a table; the report None where the table has no such column)."""
    from nas_hpo.study import load_spec, resolve_objective

    study = load_spec(spec.study(next(iter(spec.strategies)), spec.seeds[0]))
    if study.objective.name != "tabular":
        return None
    _, value, shown = resolve_objective(study).best(spec.report, maximize)
    chosen = shown if spec.report else value
    return float(value), None if chosen is None or math.isnan(chosen) else float(chosen)


def optimum_of(spec: BenchSpec, maximize: bool) -> float | None:
    """What the table's best architecture by validation reports (None: the objective is not
    a table, or has no such column)."""
    best = table_best(spec, maximize)
    return None if best is None else best[1]


def results(spec: BenchSpec) -> dict[str, Path]:
    """Write the benchmark's plot and tables from the runs its storage holds."""
    runs, maximize = load_runs(spec, open_bench_storage(spec))
    if not runs:
        raise ValueError(f"{spec.storage} holds no complete run of benchmark {spec.name!r}")
    budget = spec.template.get("budget", {})
    n_trials = min(int(budget.get("n_trials", 10**9)), max(len(r.reports) for r in runs))
    max_cost = budget.get("max_cost")
    best = table_best(spec, maximize)
    return write(spec, runs, maximize, None if best is None else best[1], n_trials,
                 None if max_cost is None else float(max_cost),
                 None if best is None else best[0])


def bench(source: dict[str, Any] | str | Path, *,
          on_run: Callable[[str, int, float], None] | None = None,
          only: list[str] | None = None, **overrides: Any) -> dict[str, Path]:
    """Run a benchmark (only the runs its storage lacks) and write its results; returns the
    paths of the plot (``png``) and tables (``md``, ``csv``). ``overrides`` replace keys of
    ``[bench]`` (``seeds``, ``processes``, ``output``, ``storage``, ``name``, ``report``);
    ``only`` keeps these strategy labels of the file."""
    spec = load_bench(source, only=only, **overrides)
    run_bench(spec, on_run=on_run)
    return results(spec)
