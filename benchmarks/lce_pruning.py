"""What the ``lce`` pruner saves, against the same search without pruning, in one process.

Random search (the same seed on both sides: the same architectures, since random search does
not look at results) over ``resnet_blocks`` (base width 4) with ``train`` for ``--epochs``
epochs on digits, once without a pruner and once with ``lce``. Prints, per side, the best
value, the trials pruned, the epochs trained and the wall time, the ratios, and the hardware.

    python benchmarks/lce_pruning.py --trials 24 --epochs 12
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import optuna
import torch

import nas_hpo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for strategy in ({"name": "random"},
                     {"name": "lce", "sampler": "random", "margin": args.margin}):
        start = time.perf_counter()
        study = nas_hpo.run({"space": {"name": "resnet_blocks", "base_width": 4},
                             "objective": {"name": "train", "epochs": args.epochs},
                             "strategy": strategy},
                            n_trials=args.trials, storage=":memory:", seed=args.seed)
        seconds = time.perf_counter() - start
        pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
        epochs = sum(len(t.intermediate_values) for t in study.trials)
        rows.append((strategy["name"], study.best_value, pruned, epochs, seconds))
        print(f"{strategy['name']:>7}: best {study.best_value:.4f}, {pruned} of {args.trials} "
              f"pruned, {epochs} epochs, {seconds:.1f} s")
    (_, _, _, e0, s0), (_, _, _, e1, s1) = rows
    print(f"lce / no pruner: epochs {e1 / e0:.2f}x, time {s1 / s0:.2f}x")
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
