"""Differentiable one-shot search on NB201-digits: what each method derives, looked up in the
table, against the table's best and regularized evolution at equal compute.

Each method (DARTS first and second order, GDAS, PC-DARTS, β-DARTS) searches nas-hpo's
``nb201`` supernet at the table's network size (C = 16, N = 1) on digits' training split for
``--epochs`` epochs, ``--seeds`` seeds, each run in its own process with one torch thread
(time per epoch, peak resident memory). The architecture it derives is looked up in the
shipped table (mean over the table's seeds of the final validation and test accuracy).
Regularized evolution runs on the table with the simulated clock, 20 seeds, and its incumbent
is taken at each method's mean search time (the table's training times were measured on the
same kind of machine): equal compute. Prints a markdown table; ratios of time and memory per
epoch against first-order DARTS measured in the same run.

    python benchmarks/oneshot_nb201_digits.py --epochs 50 --seeds 5
    python benchmarks/oneshot_nb201_digits.py --epochs 2 --seeds 1 --methods darts gdas
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

METHODS = {
    "darts (1st)": {"method": "darts", "order": 1},
    "darts (2nd)": {"method": "darts", "order": 2},
    "gdas": {"method": "gdas"},
    "pc_darts": {"method": "pc_darts", "partial_channels": 4},
    "beta_darts": {"method": "beta_darts"},
}


def search_once(label: str, seed: int, epochs: int) -> dict[str, Any]:
    """One search in this (fresh) process."""
    import torch

    torch.set_num_threads(1)
    from nas_hpo import data, spaces
    from nas_hpo.oneshot import OneShotSearch

    space = spaces.get("nb201", C=16, N=1)
    splits = data.load("digits")
    search = OneShotSearch(space, epochs=epochs, seed=seed, **METHODS[label])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    history = search.run(splits.x_train, splits.y_train, splits.x_val, splits.y_val,
                         num_classes=splits.num_classes)
    seconds = time.perf_counter() - start
    return {
        "label": label, "seed": seed, "seconds": seconds,
        "epoch_seconds": statistics.mean(e.seconds for e in history),
        # What the search added to the process's peak (torch, data and the table loaded).
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before,
        "arch": space.arch_key(history[-1].config),
        "one_shot_val": history[-1].val_accuracy,
        "free_share": history[-1].parameter_free_share,
        "collapsed_epochs": sum(e.collapsed for e in history),
    }


def _worker(args: tuple[str, int, int]) -> dict[str, Any]:
    return search_once(*args)


def table_finals() -> Any:
    import pandas as pd

    from nas_hpo import objectives

    df = pd.read_parquet(objectives.get("tabular", path="nb201_digits",
                                        metrics=["val_accuracy"]).path)
    last = df[df.epoch == df.epoch.max()]
    return last.groupby("arch")[["val_accuracy", "test_accuracy", "time"]].mean()


def evolution_runs(seconds: float, seeds: int) -> list[list[tuple[float, float, float]]]:
    """Regularized evolution on the table with the simulated clock for ``seconds`` of
    simulated training, per seed: each trial's (end time, validation, test accuracy). One
    worker, so a seed's trajectory does not depend on the budget: the incumbent at any
    shorter time is read from the same run."""
    import nas_hpo

    out = []
    for seed in range(seeds):
        study = nas_hpo.run({
            "space": {"name": "nb201"},
            "objective": {"name": "tabular", "path": "nb201_digits", "metrics": ["val_accuracy"],
                          "fidelity": "epoch", "cost": "time", "attrs": ["test_accuracy"]},
            "strategy": {"name": "re"},
            "budget": {"n_trials": 100_000, "max_cost": seconds},
            "backend": {"name": "simulated"},
        }, seed=seed, storage=":memory:", study_name="re")
        out.append([(t.user_attrs["sim_end"], t.value, t.user_attrs["test_accuracy"])
                    for t in study.trials if t.value is not None])
    return out


def incumbent_tests(runs: list[list[tuple[float, float, float]]], seconds: float
                    ) -> list[float]:
    """The test accuracy of each run's incumbent (by validation) among the trials ended by
    ``seconds`` of simulated time."""
    tests = []
    for trials in runs:
        done = [t for t in trials if t[0] <= seconds] or trials[:1]
        tests.append(max(done, key=lambda t: t[1])[2])
    return tests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", nargs="+", default=list(METHODS),
                        choices=list(METHODS))
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--re-seeds", type=int, default=20)
    parser.add_argument("--out", help="write every search's result to this JSON file")
    args = parser.parse_args()
    import optuna
    import torch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    jobs = [(m, s, args.epochs) for m in args.methods for s in range(args.seeds)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(args.processes, maxtasksperchild=1) as pool:
        runs = pool.map(_worker, jobs, chunksize=1)
    if args.out:
        Path(args.out).write_text(json.dumps(runs, indent=1))
    finals = table_finals()
    by_val = finals.val_accuracy.idxmax()
    print(f"# One-shot search on NB201-digits ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, 1 thread per search, torch {torch.__version__}; "
          f"{args.epochs} epochs, {args.seeds} seeds)\n")
    print(f"table: best by validation {by_val} tests {finals.test_accuracy[by_val]:.4f}; "
          f"best test {finals.test_accuracy.max():.4f}; "
          f"mean {finals.test_accuracy.mean():.4f}\n")
    longest = max(statistics.mean(r["seconds"] for r in runs if r["label"] == m)
                  for m in args.methods)
    evolution = evolution_runs(longest, args.re_seeds)
    base = [r for r in runs if r["label"] == args.methods[0]]
    base_epoch = statistics.mean(r["epoch_seconds"] for r in base)
    base_mem = statistics.mean(r["max_rss_mb"] for r in base)
    print("| method | derived test acc. | one-shot val | param-free share | collapsed epochs "
          "| s / epoch (× first) | peak MB added (× first) | RE test acc. at equal time |")
    print("|---|---|---|---|---|---|---|---|")
    for label in args.methods:
        rs = [r for r in runs if r["label"] == label]
        tests = [float(finals.test_accuracy.get(r["arch"], np.nan)) for r in rs]
        secs = statistics.mean(r["seconds"] for r in rs)
        re = incumbent_tests(evolution, secs)
        ep = statistics.mean(r["epoch_seconds"] for r in rs)
        mem = statistics.mean(r["max_rss_mb"] for r in rs)
        print(f"| {label} | {np.mean(tests):.4f} ± {np.std(tests, ddof=1) if len(tests) > 1 else 0:.4f} "
              f"| {np.mean([r['one_shot_val'] for r in rs]):.3f} "
              f"| {np.mean([r['free_share'] for r in rs]):.2f} "
              f"| {np.mean([r['collapsed_epochs'] for r in rs]):.1f} "
              f"| {ep:.2f} ({ep / base_epoch:.2f}) | {mem:.0f} ({mem / base_mem:.2f}) "
              f"| {np.mean(re):.4f} ± {np.std(re, ddof=1):.4f} ({secs:.0f} s) |")
    print("\nderived architectures:")
    for r in runs:
        print(f"  {r['label']} seed {r['seed']}: {r['arch']} "
              f"test {finals.test_accuracy.get(r['arch'], float('nan')):.4f} ({r['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
