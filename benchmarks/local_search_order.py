"""How many evaluations local search needs to reach the optimum of an additive toy table, for
each neighbour ``order`` (``random``, ``mean``, ``additive``; see ``nas_hpo.strategies._local``).

The table: 6 categorical parameters of 6 values each (46,656 configurations), the value of a
configuration the sum of one effect per parameter value (standard normal effects, generator
seed 0), so the optimum is known: every parameter at its best value. Each order runs the same
seeds (``local_search`` with its other defaults, in memory); the figure is the number of the
first trial at the optimum (``--n-trials + 1`` where none reached it), with a paired Wilcoxon
test of each order against ``random`` (SciPy). ~5 min on a 2-core AMD EPYC.

    python benchmarks/local_search_order.py            # 24 seeds, up to 300 trials
"""

from __future__ import annotations

import argparse

import numpy as np
import optuna
from scipy.stats import wilcoxon

import nas_hpo
from nas_hpo import Categorical, SearchSpace

N_PARAMS, N_VALUES = 6, 6


def evaluations_to_optimum(order: str, seed: int, n_trials: int) -> int:
    effects = np.random.default_rng(0).normal(size=(N_PARAMS, N_VALUES))
    space = SearchSpace([Categorical(f"x{i}", [str(v) for v in range(N_VALUES)])
                         for i in range(N_PARAMS)])
    best = float(effects.max(axis=1).sum())

    def value(config: dict) -> float:
        return float(sum(effects[i, int(config[f"x{i}"])] for i in range(N_PARAMS)))

    study = nas_hpo.run({"strategy": {"name": "local_search", "order": order}}, space=space,
                        objective=value, n_trials=n_trials, seed=seed, storage=":memory:",
                        study_name=f"toy-{order}-{seed}")
    values = [t.value for t in study.trials]
    return next((i + 1 for i, v in enumerate(values) if v >= best - 1e-9), n_trials + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=24)
    parser.add_argument("--n-trials", type=int, default=300)
    parser.add_argument("--orders", default="random,mean,additive")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    found = {order: [evaluations_to_optimum(order, seed, args.n_trials)
                     for seed in range(args.seeds)] for order in args.orders.split(",")}
    print(f"evaluations to the optimum, {args.seeds} seeds (mean, median; p: paired Wilcoxon "
          "against random)")
    for order, n in found.items():
        p = ("" if order == "random" or "random" not in found
             else f", p = {wilcoxon(n, found['random']).pvalue:.3g}")
        print(f"{order:>9}: {np.mean(n):.1f}, {np.median(n):.0f}{p}")


if __name__ == "__main__":
    main()
