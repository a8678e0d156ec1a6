"""``gp`` on ``chain``: what repairing forbidden draws saves, against drawing again, and the GP on
the space's encoding that proposes no forbidden draw at all, in one process.

Optuna's GP sampler models the parameters every trial shares and cannot see ``chain``'s
forbidden clause (no conv after an mlp layer); it ignores the pruned trials that record the
forbidden draws, so it keeps proposing them. With the repair (the default for ``gp``) each
forbidden draw is followed by its nearest valid config; without it (the same sampler
registered with ``repair_forbidden=False``) the engine only draws again. Both sides run
``--evaluations`` evaluations of a free objective (the depth of the network plus its widths),
cost measurement off and, once, on (the default: params, FLOPs, latency), on SQLite, seeds
``0..--seeds-1``; a side that gets stuck (1,000 forbidden draws in a row: the engine stops
it) reports the evaluations it did. A third side is ``gp`` with ``encoding = "space"`` (what
``"auto"`` picks on a conditional space): scikit-learn's GP on the space's fixed-length
encoding, maximising expected improvement over valid mutations and samples. Prints the time,
evaluations, forbidden draws and best value per side, the ratio, and the hardware.

    python benchmarks/forbidden_repair.py --evaluations 16 --seeds 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import optuna
import torch

import nas_hpo
from nas_hpo import strategies


def score(config: dict) -> float:
    widths = sum(v for k, v in config.items() if k.endswith("_width"))
    return float(config["n_layers"]) + widths / 1000


def gp_without_repair(setting: strategies.Setting, **options) -> strategies.Strategy:
    gp = strategies.get("gp", setting, **options)
    return strategies.Strategy("gp", gp.sampler, gp.pruner)  # repair_forbidden=False


def one(strategy: str, encoding: str, evaluations: int, seed: int, cost: bool, folder: str
        ) -> tuple[float, int, int, float]:
    """Seconds, forbidden draws, evaluations done, best value. A run that stops (1,000
    forbidden draws in a row) has done fewer evaluations than asked."""
    storage = f"sqlite:///{folder}/{strategy}-{encoding}-{seed}-{cost}.db"
    start = time.perf_counter()
    try:
        nas_hpo.run({"strategy": {"name": strategy, "encoding": encoding}}, space="chain",
                    objective=score, n_trials=evaluations,
                    storage=storage, study_name="chain", seed=seed, cost=None if cost else [])
    except RuntimeError as e:
        if "draws in a row hit a forbidden clause" not in str(e):
            raise
    seconds = time.perf_counter() - start
    trials = optuna.load_study(study_name="chain", storage=storage).trials
    done = [t for t in trials if t.state.name == "COMPLETE"]
    forbidden = sum("forbidden" in t.user_attrs for t in trials)
    return seconds, forbidden, len(done), max((t.value for t in done), default=float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evaluations", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    strategies.register("gp_without_repair")(gp_without_repair)
    sides = [("gp", "intersection", False), ("gp_without_repair", "intersection", False),
             ("gp", "intersection", True), ("gp", "space", False)]
    rows: dict[tuple[str, str, bool], list[tuple[float, int, int, float]]] = {
        s: [] for s in sides}
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            for name, encoding, cost in sides:
                side = (name, encoding, cost)
                rows[side].append(one(name, encoding, args.evaluations, seed, cost, folder))
                s, f, d, b = rows[side][-1]
                print(f"seed {seed}: {name} ({encoding}){' with costs' if cost else ''}: "
                      f"{s:.1f} s, {d} evaluations, {f} forbidden draws, best {b:.3f}",
                      flush=True)
    median = {k: statistics.median(r[0] for r in v) for k, v in rows.items()}
    for (name, encoding, cost), v in rows.items():
        label = f"{name} ({encoding})" + (" with costs" if cost else "")
        print(f"{label:>33}: median {median[(name, encoding, cost)]:.1f} s "
              f"({min(r[0] for r in v):.1f}-{max(r[0] for r in v):.1f} s), evaluations "
              f"{[r[2] for r in v]}, forbidden draws {[r[1] for r in v]}, best "
              f"{[round(r[3], 3) for r in v]}")
    ratio = (median[("gp", "intersection", False)]
             / median[("gp_without_repair", "intersection", False)])
    print(f"{args.evaluations} evaluations: repair / redraw only {ratio:.2f}x")
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"Optuna {optuna.__version__}")


if __name__ == "__main__":
    main()
