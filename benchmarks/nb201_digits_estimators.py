"""NB201-digits estimator report: how well each cheap estimator ranks NAS-Bench-201 cells against
the table's ground truth (the seeds' mean final validation accuracy), and what it costs.

``--cells`` isomorphism classes (one representative each) are drawn from the table; each
estimator family scores them: ``size`` (the table's params and FLOPs), ``proxies`` (every
zero-cost proxy and ``vote``), ``supernet`` (spos and fairnas, ``--supernet-epochs``) and
``curves`` (the table's validation curve at 25% of its epochs: extrapolated, and its last
value). Prints a markdown table of Spearman ρ and Kendall τ with 95% bootstrap intervals, the
seconds each estimator took and their ratio to training the same cells (the table's time).

    python benchmarks/nb201_digits_estimators.py --cells 300 --out estimators.csv
    python benchmarks/nb201_digits_estimators.py --table T.parquet --cells 20 --supernet-epochs 2 --skip supernet
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_hpo import Context, objectives, proxies, spaces
from nas_hpo.correlate import rank_correlation
from nas_hpo.curves import extrapolate

HERE = Path(__file__).resolve().parent
COLUMNS = ("arch", "unique", "seed", "epoch", "val_accuracy", "time", "params", "flops")
FIELDS = ("estimator", "n", "spearman", "spearman_lo", "spearman_hi", "kendall", "kendall_lo",
          "kendall_hi", "seconds", "x_training", "note")


def _table_module() -> Any:
    """``benchmarks/nb201_digits.py``: the table's recipe and default path."""
    sys.path.insert(0, str(HERE))
    import nb201_digits

    return nb201_digits


@dataclass(frozen=True)
class Cell:
    """A sampled class representative: its config, the table's truth and curve, its costs."""

    arch: str
    config: dict[str, str]
    truth: float
    curve: list[float]
    seed_finals: tuple[float, ...]
    params: float
    flops: float
    train_seconds: float


@dataclass(frozen=True)
class Estimate:
    """One estimator's values over the cells (NaN where it gave none), its seconds in all and
    a note (why values are missing, what it spent apart)."""

    name: str
    values: list[float]
    seconds: float
    note: str = ""


def load_cells(path: Path, n: int, seed: int) -> tuple[list[Cell], int]:
    import pandas as pd

    from nas_hpo.spaces import nb201

    try:
        frame = pd.read_parquet(path, columns=list(COLUMNS))
    except FileNotFoundError:
        raise SystemExit(f"--table: {path}: no such file") from None
    except (ValueError, KeyError, OSError) as e:  # pyarrow: not Parquet, or a column missing
        raise SystemExit(f"--table: {path}: not a table with columns {', '.join(COLUMNS)} ({e})"
                         ) from None
    reps = frame[frame.arch == frame.unique]
    classes = sorted(reps.unique.unique())
    chosen = sorted(random.Random(seed).sample(classes, min(n, len(classes))))
    sub = reps[reps.arch.isin(chosen)]
    epochs = int(sub.epoch.max())
    curves = sub.groupby(["arch", "epoch"]).val_accuracy.mean().unstack()
    finals = sub[sub.epoch == epochs].groupby(["arch", "seed"]).val_accuracy.mean().unstack()
    last = sub[sub.epoch == epochs].groupby("arch")
    times, sizes = last.time.mean(), last[["params", "flops"]].first()
    incomplete = curves.index[curves.isna().any(axis=1)].tolist()
    if incomplete:
        raise SystemExit(f"--table: {path}: {incomplete[0]!r} lacks epochs of 1..{epochs}")
    cells = [Cell(a, nb201.from_arch_str(a), float(finals.loc[a].mean()),
                  [float(v) for v in curves.loc[a]], tuple(float(v) for v in finals.loc[a]),
                  float(sizes.params[a]), float(sizes.flops[a]), float(times[a]))
             for a in chosen]
    return cells, epochs


# ------------------------------------------------------------------------------ families


def size(cells: list[Cell], args: argparse.Namespace) -> list[Estimate]:
    """The table's params and FLOPs: the baselines every estimator should beat."""
    return [Estimate("params (table)", [c.params for c in cells], 0.0),
            Estimate("flops (table)", [c.flops for c in cells], 0.0)]


def zero_cost(cells: list[Cell], args: argparse.Namespace) -> list[Estimate]:
    """Each proxy scored on its own (its seconds are its own, no passes shared); ``vote`` over
    the sampled population, costing its members' seconds."""
    space = spaces.get("nb201", C=args.recipe["C"], N=args.recipe["N"])
    names = [p for p in proxies.PROXIES if p != "vote"]
    # Untimed warm-up: the dataset's first load and torch's first passes.
    proxies.score_config(space, cells[0].config, names, dataset="digits", seed=0)
    out, scores, seconds = [], {}, {}
    for name in names:
        start = time.perf_counter()
        got = [proxies.score_config(space, c.config, [name], dataset="digits", seed=0)
               for c in cells]
        seconds[name] = time.perf_counter() - start
        scores[name] = [s[name] for s in got]
        floored = sum(name in s.worst for s in got)
        out.append(Estimate(name, scores[name], seconds[name],
                            f"{floored} at the floor" if floored else ""))
    rows = [{m: scores[m][i] for m in proxies.VOTE_DEFAULT} for i in range(len(cells))]
    out.append(Estimate("vote", proxies.vote(rows),
                        sum(seconds[m] for m in proxies.VOTE_DEFAULT),
                        "rank mean of " + ", ".join(proxies.VOTE_DEFAULT)))
    return out


def supernet(cells: list[Cell], args: argparse.Namespace) -> list[Estimate]:
    """One supernet per method on digits with the table's C, N, batch and lr (it trains on the
    whole training split: the objective has no ``data_fraction``)."""
    space = spaces.get("nb201", C=args.recipe["C"], N=args.recipe["N"])
    out = []
    for method in ("spos", "fairnas"):
        with tempfile.TemporaryDirectory() as folder:
            objective = objectives.get(
                "supernet", method=method, dataset="digits", epochs=args.supernet_epochs,
                batch_size=args.recipe["batch_size"], lr=args.recipe["lr"], cache_dir=folder)
            start = time.perf_counter()
            results = [objective(c.config, space=space, ctx=Context(seed=0)) for c in cells]
            seconds = time.perf_counter() - start
        trained = results[0].user_attrs["supernet"].get("train_seconds", math.nan)
        out.append(Estimate(f"supernet {method}", [r.values[0] for r in results], seconds,
                            f"{args.supernet_epochs} epochs, training {trained:.1f} s"))
    return out


def curves(cells: list[Cell], args: argparse.Namespace) -> list[Estimate]:
    """The first max(2, round(``--lce-fraction`` of E)) epochs of each cell's mean validation
    curve: extrapolated to epoch E, and their last value as the baseline. (The curve families
    need 4 points at least: on NB201-digits' 5 epochs, ``--lce-fraction 0.8``.)"""
    epochs = len(cells[0].curve)
    seen = max(2, round(args.lce_fraction * epochs))
    start = time.perf_counter()
    predictions, failed = [], []
    for c in cells:
        try:
            predictions.append(extrapolate(c.curve[:seen], epochs).prediction)
        except ValueError as e:  # no curve model fits this few points
            predictions.append(math.nan)
            failed.append(str(e))
    seconds = time.perf_counter() - start
    # The first reason, without its list of values: the same for every cell when too short.
    note = f"{len(failed)} not extrapolated: {failed[0].split(' [')[0]}" if failed else ""
    return [Estimate(f"lce @ {seen}/{epochs} epochs", predictions, seconds, note),
            Estimate(f"last @ {seen}/{epochs} epochs", [c.curve[seen - 1] for c in cells], 0.0)]


FAMILIES: dict[str, Callable[[list[Cell], argparse.Namespace], list[Estimate]]] = {
    "size": size, "proxies": zero_cost, "supernet": supernet, "curves": curves}


# ------------------------------------------------------------------------------ report


def row(cells: list[Cell], est: Estimate, train_seconds: float, seed: int) -> dict[str, Any]:
    values = np.asarray(est.values, dtype=float)
    keep = np.isfinite(values)
    out: dict[str, Any] = {"estimator": est.name, "n": int(keep.sum()),
                           "seconds": round(est.seconds, 3),
                           "x_training": round(est.seconds / train_seconds, 4),
                           "note": est.note}
    truth = np.array([c.truth for c in cells])[keep]
    try:
        r = rank_correlation(truth, values[keep], name=est.name, seed=seed)
    except ValueError as e:  # too few values, or a constant estimate: no ranking
        out.update(spearman=math.nan, spearman_lo=math.nan, spearman_hi=math.nan,
                   kendall=math.nan, kendall_lo=math.nan, kendall_hi=math.nan,
                   note="; ".join(filter(None, [est.note, str(e)])))
        return out
    out.update(spearman=r.spearman, spearman_lo=r.spearman_ci[0], spearman_hi=r.spearman_ci[1],
               kendall=r.kendall, kendall_lo=r.kendall_ci[0], kendall_hi=r.kendall_ci[1])
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| estimator | n | Spearman ρ | 95% CI | Kendall τ | 95% CI | seconds | × training "
             "| note |", "|---|--:|--:|---|--:|---|--:|--:|---|"]
    for r in rows:
        lines.append(
            f"| {r['estimator']} | {r['n']} | {r['spearman']:.3f} | "
            f"[{r['spearman_lo']:.3f}, {r['spearman_hi']:.3f}] | {r['kendall']:.3f} | "
            f"[{r['kendall_lo']:.3f}, {r['kendall_hi']:.3f}] | {r['seconds']:.2f} | "
            f"{r['x_training']:.3g} | {r['note'].replace('|', '/')} |")
    return "\n".join(lines)


def main() -> None:
    module = _table_module()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=module.TABLE)
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0, help="draws the cells")
    parser.add_argument("--supernet-epochs", type=int, default=30)
    parser.add_argument("--skip", default="", help=f"comma list of: {', '.join(FAMILIES)}")
    parser.add_argument("--out", type=Path, help="CSV of the table")
    parser.add_argument("--lce-fraction", type=float, default=0.25,
                        help="part of the curve the extrapolation sees")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if skip - set(FAMILIES):
        parser.error(f"--skip: unknown {', '.join(sorted(skip - set(FAMILIES)))}; "
                     f"known: {', '.join(FAMILIES)}")
    if skip == set(FAMILIES):
        parser.error("--skip: nothing left to measure")
    if args.cells < 3:
        parser.error("--cells: rank correlations need at least 3")
    args.recipe = module.RECIPE
    # The table trained each cell on one torch thread: the same here, so "× training" is fair.
    torch.set_num_threads(1)

    cells, epochs = load_cells(args.table, args.cells, args.seed)
    train_seconds = sum(c.train_seconds for c in cells)
    truth = [c.truth for c in cells]
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread")
    print(f"{len(cells)} classes of {args.table} (seed {args.seed}); recipe "
          + ", ".join(f"{k}={v}" for k, v in args.recipe.items())
          + f"; truth: mean final ({epochs} epochs) validation accuracy over seeds, "
          f"{min(truth):.3f}..{max(truth):.3f}; training them: {train_seconds:.1f} s (table)")
    seeds = np.array([c.seed_finals for c in cells])
    if seeds.shape[1] >= 2:
        try:
            r = rank_correlation(seeds[:, 0], seeds[:, 1], name="seeds", seed=args.seed)
            print(f"ceiling, seed 0 against seed 1: Spearman {r.spearman:.3f}, "
                  f"Kendall {r.kendall:.3f}")
        except ValueError as e:
            print(f"ceiling: {e}")

    rows = []
    for family, estimate in FAMILIES.items():
        if family not in skip:
            rows += [row(cells, est, train_seconds, args.seed) for est in estimate(cells, args)]
    print(markdown(rows))
    if args.out:
        with args.out.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()
