"""NB201-digits: NAS-Bench-201's cells trained on scikit-learn's digits, a tabular benchmark that
ships with nas-hpo (``nas_hpo/tables/nb201_digits.parquet``, card: ``benchmarks/nb201_digits.md``).

Three steps, each resumable:

    python benchmarks/nb201_digits.py pilot --cells 200 --recipe C=8,N=1,epochs=5,data_fraction=0.15,lr=0.1
    python benchmarks/nb201_digits.py generate --workers 2
    python benchmarks/nb201_digits.py build

``generate --device cuda --raw DIR`` trains on a GPU instead (``build --raw DIR --table FILE``
makes that run's table; benchmarks/README.md compares it with the shipped one).

``pilot`` trains random cells with two training seeds under a recipe and prints how well the
seeds agree (Kendall's tau of the final validation accuracy, over all cells and over the better
half) — the recipe of the table is the one whose seeds agree. ``generate`` trains one cell of
every isomorphism class (``nb201.canonical``: 5,273 classes of the 15,625 cells) with each seed,
in worker processes of one torch thread each, appending to ``benchmarks/.nb201_digits/``;
killed, it goes on where it stopped. ``build`` writes the table: one row per cell × seed ×
epoch (a cell answered by the rows of its class's representative, its own params and FLOPs),
Parquet with zstd, and its SHA-256 next to it.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import multiprocessing
import os
import platform
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RAW = HERE / ".nb201_digits"
TABLE = HERE.parent / "nas_hpo" / "tables" / "nb201_digits.parquet"

#: The recipe of the shipped table (chosen by the pilot; see the card).
RECIPE = {"C": 16, "N": 1, "epochs": 5, "batch_size": 64, "data_fraction": 0.15, "lr": 0.1}
SEEDS = (0, 1)
COLUMNS = ("train_accuracy", "train_loss", "val_accuracy", "val_loss", "test_accuracy",
           "test_loss", "epoch_time")


def parse_recipe(text: str) -> dict:
    recipe = dict(RECIPE)
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key not in RECIPE and key not in ("resolution", "weight_decay", "label_smoothing"):
            raise SystemExit(f"--recipe: unknown key {key!r}; known: {', '.join(RECIPE)}, "
                             "resolution, weight_decay, label_smoothing")
        recipe[key] = float(value) if "." in value else int(value)
    return recipe


def all_cells() -> list[str]:
    from nas_hpo.spaces import nb201

    return [nb201.arch_str(dict(zip(nb201.EDGE_NAMES, ops, strict=True)))
            for ops in itertools.product(nb201.OPS, repeat=len(nb201.EDGE_NAMES))]


def classes() -> dict[str, str]:
    """Each cell's representative: the first cell (in NAS-Bench-201's order) of its class."""
    from nas_hpo.spaces import nb201

    first: dict[str, str] = {}
    out = {}
    for arch in all_cells():
        key = nb201.canonical(nb201.from_arch_str(arch))
        out[arch] = first.setdefault(key, arch)
    return out


def train_cell(arch: str, seed: int, recipe: dict, device: str = "cpu") -> list[dict]:
    """One training of the cell on ``device`` (the train objective's defaults there): a row
    per epoch."""
    from nas_hpo import objectives, spaces
    from nas_hpo._objective import Context
    from nas_hpo.spaces import nb201

    space = spaces.get("nb201", C=recipe["C"], N=recipe["N"])
    options = {k: v for k, v in recipe.items() if k not in ("C", "N")}
    objective = objectives.get("train", dataset="digits", test_every_epoch=True, device=device,
                               **options)
    result = objective(nb201.from_arch_str(arch), space=space, ctx=Context(seed=seed))
    a = result.user_attrs
    return [{"train_accuracy": a["train_accuracy_curve"][e], "train_loss": a["train_loss_curve"][e],
             "val_accuracy": a["learning_curve"][e], "val_loss": a["val_loss_curve"][e],
             "test_accuracy": a["test_accuracy_curve"][e], "test_loss": a["test_loss_curve"][e],
             "epoch_time": a["epoch_seconds"][e]} for e in range(len(a["learning_curve"]))]


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _job(job: tuple[str, int, dict, str]) -> dict:
    arch, seed, recipe, device = job
    try:
        return {"arch": arch, "seed": seed, "epochs": train_cell(arch, seed, recipe, device)}
    except Exception as e:  # a cell whose training fails is a row with its reason
        return {"arch": arch, "seed": seed, "error": f"{type(e).__name__}: {e}"}


def _run(jobs: list, workers: int, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    start, done = time.perf_counter(), 0
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker) as pool, \
            out.open("a") as f:
        for row in pool.imap_unordered(_job, jobs, chunksize=4):
            f.write(json.dumps(row) + "\n")
            f.flush()
            done += 1
            if done % 200 == 0 or done == len(jobs):
                rate = done / (time.perf_counter() - start)
                print(f"{done}/{len(jobs)} trainings, {rate:.2f}/s, "
                      f"{(len(jobs) - done) / rate / 60:.1f} min left", flush=True)


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # the last line of a killed run
            pass
    return rows


def pilot(args: argparse.Namespace) -> None:
    from scipy.stats import kendalltau

    recipe = parse_recipe(args.recipe)
    name = ",".join(f"{k}={v}" for k, v in recipe.items())
    out = RAW / "pilot" / (hashlib.sha1(name.encode()).hexdigest()[:10] + ".jsonl")
    cells = random.Random(args.seed).sample(all_cells(), args.cells)
    have = {(r["arch"], r["seed"]) for r in _read(out)}
    jobs = [(a, s, recipe, "cpu") for a in cells for s in SEEDS if (a, s) not in have]
    _run(jobs, args.workers, out)
    rows = [r for r in _read(out) if "epochs" in r and r["arch"] in set(cells)]
    final = {(r["arch"], r["seed"]): r["epochs"][-1]["val_accuracy"] for r in rows}
    both = [a for a in cells if all((a, s) in final for s in SEEDS)]
    a0 = [final[a, SEEDS[0]] for a in both]
    a1 = [final[a, SEEDS[1]] for a in both]
    tau = kendalltau(a0, a1).statistic
    mean = sorted(both, key=lambda a: -(final[a, 0] + final[a, 1]))[: len(both) // 2]
    tau_top = kendalltau([final[a, 0] for a in mean], [final[a, 1] for a in mean]).statistic
    seconds = [sum(e["epoch_time"] for e in r["epochs"]) for r in rows]
    print(json.dumps({"recipe": name, "cells": len(both), "kendall_tau": round(tau, 3),
                      "kendall_tau_better_half": round(tau_top, 3),
                      "val_accuracy_range": [round(min(a0 + a1), 3), round(max(a0 + a1), 3)],
                      "train_seconds_median": round(sorted(seconds)[len(seconds) // 2], 3)}))


def generate(args: argparse.Namespace) -> None:
    reps = sorted(set(classes().values()))
    out = args.raw / "runs.jsonl"
    have = {(r["arch"], r["seed"]) for r in _read(out)}
    jobs = [(a, s, RECIPE, args.device) for s in SEEDS for a in reps if (a, s) not in have]
    print(f"{len(reps)} classes x {len(SEEDS)} seeds; {len(jobs)} trainings to go", flush=True)
    _run(jobs, args.workers, out)


def _costs(arch: str) -> tuple[str, int, int]:
    import torch

    from nas_hpo import cost, spaces
    from nas_hpo.spaces import nb201

    space = spaces.get("nb201", C=RECIPE["C"], N=RECIPE["N"])
    torch.manual_seed(0)
    model = space.build(nb201.from_arch_str(arch), input_shape=(1, 8, 8), num_classes=10)
    m = cost.measure(model, (1, 8, 8), ("params", "flops"))
    return arch, int(m["params"]), int(m["flops"])


def build(args: argparse.Namespace) -> None:
    import pandas as pd

    rep = classes()
    runs = {(r["arch"], r["seed"]): r["epochs"] for r in _read(args.raw / "runs.jsonl")
            if "epochs" in r}
    table = args.table
    missing = sorted({a for a in rep.values() for s in SEEDS if (a, s) not in runs})
    if missing:
        raise SystemExit(f"{len(missing)} classes are not trained yet; run `generate` first")
    costs_file = args.raw / "costs.json"
    costs = json.loads(costs_file.read_text()) if costs_file.exists() else {}
    todo = [a for a in rep if a not in costs]
    if todo:
        with multiprocessing.get_context("spawn").Pool(args.workers,
                                                        initializer=_init_worker) as pool:
            for arch, params, flops in pool.imap_unordered(_costs, todo, chunksize=64):
                costs[arch] = [params, flops]
        costs_file.write_text(json.dumps(costs))
    columns: dict[str, list] = {k: [] for k in ("arch", "unique", "seed", "epoch", *COLUMNS,
                                                 "time", "params", "flops")}
    for arch, unique in rep.items():
        for seed in SEEDS:
            elapsed = 0.0
            for epoch, row in enumerate(runs[unique, seed], start=1):
                elapsed += row["epoch_time"]
                for name, value in (("arch", arch), ("unique", unique), ("seed", seed),
                                    ("epoch", epoch), *((k, row[k]) for k in COLUMNS),
                                    ("time", elapsed), ("params", costs[arch][0]),
                                    ("flops", costs[arch][1])):
                    columns[name].append(value)
    frame = pd.DataFrame(columns)
    for name in (*COLUMNS, "time"):
        frame[name] = frame[name].astype("float32")
    for name in ("seed", "epoch"):
        frame[name] = frame[name].astype("int8")
    table.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(table, compression="zstd", index=False)
    digest = hashlib.sha256(table.read_bytes()).hexdigest()
    table.with_suffix(".parquet.sha256").write_text(f"{digest}  {table.name}\n")
    final = frame[frame.epoch == frame.epoch.max()].groupby("arch")[["val_accuracy",
                                                                     "test_accuracy"]].mean()
    print(json.dumps({"rows": len(frame), "cells": frame.arch.nunique(),
                      "classes": frame.unique.nunique(), "bytes": table.stat().st_size,
                      "sha256": digest,
                      "val_accuracy_range": [float(final.val_accuracy.min()),
                                             float(final.val_accuracy.max())],
                      "train_seconds_total": float(frame[frame.arch == frame.unique]
                                                   .epoch_time.sum()),
                      "machine": f"{platform.processor() or platform.machine()}, "
                                 f"{os.cpu_count()} cores"}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("pilot")
    p.add_argument("--cells", type=int, default=200)
    p.add_argument("--recipe", default="")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    g = sub.add_parser("generate")
    g.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1)))
    g.add_argument("--device", default="cpu",
                   help="where the cells train (the shipped table: cpu; on cuda the train "
                        "objective's GPU defaults: bf16, channels_last, CUDA graphs)")
    b = sub.add_parser("build")
    b.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1)))
    b.add_argument("--table", type=Path, default=TABLE, help="the Parquet file to write")
    for q in (g, b):
        q.add_argument("--raw", type=Path, default=RAW,
                       help="the folder of the trainings (runs.jsonl) and the costs")
    args = parser.parse_args(argv)
    {"pilot": pilot, "generate": generate, "build": build}[args.step](args)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    main()
