"""How well a weight-sharing supernet ranks architectures, and what it costs, against training.

``--archs`` random ``nb201`` cells (``--C``, ``--N``; default C=8 and one cell per stage) are
trained stand-alone with ``train`` for ``--epochs`` epochs on ``--dataset`` (default the
embedded ``digits``): the
ground truth (validation accuracy), with the study's per-trial seeds. Then, for each
``--methods`` (spos, fairnas), the ``supernet`` objective trains the supernet for
``--supernet-epochs`` epochs (in a temporary cache folder) and scores the same cells.

Prints, per method: the supernet's training time, the time per scored architecture (BN
recalibration + validation + test), Kendall's tau and Spearman's rho of the scores against the
trained accuracies and the scores' range; for comparison, the stand-alone training time per
architecture, how well the ground truth ranks itself (the same cells trained with other seeds:
the ceiling of any estimator), and the hardware.

    python benchmarks/supernet_quality.py --archs 40 --epochs 8 --supernet-epochs 60
    python benchmarks/supernet_quality.py --dataset cifar10 --C 16 --N 5 --epochs 50 ...
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import torch
from scipy.stats import kendalltau, spearmanr

from nas_hpo import objectives, spaces
from nas_hpo.objectives import Context
from nas_hpo.objectives import supernet as sn
from nas_hpo.study import trial_seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--C", type=int, default=8)
    parser.add_argument("--N", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=8, help="stand-alone training epochs")
    parser.add_argument("--supernet-epochs", type=int, default=30)
    parser.add_argument("--methods", nargs="+", default=["spos", "fairnas"])
    parser.add_argument("--dataset", default="digits", help="any of train's datasets")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    space = spaces.get("nb201", C=args.C, N=args.N)
    configs, seen = [], set()
    draw = 0
    while len(configs) < args.archs:
        config = space.sample(seed=args.seed * 100_000 + draw)
        draw += 1
        if space.arch_key(config) not in seen:
            seen.add(space.arch_key(config))
            configs.append(config)
    train = objectives.get("train", dataset=args.dataset, epochs=args.epochs)
    start = time.perf_counter()
    truth = [train(c, space=space, ctx=Context(seed=trial_seed(args.seed, i))).values[0]
             for i, c in enumerate(configs)]
    train_s = (time.perf_counter() - start) / len(configs)
    # The ceiling: how well the ground truth ranks itself when trained with other seeds.
    again = [train(c, space=space, ctx=Context(seed=trial_seed(args.seed + 1, i))).values[0]
             for i, c in enumerate(configs)]
    print(f"{args.archs} nb201 cells (C={args.C}, N={args.N}) on {args.dataset}; stand-alone "
          f"training: {args.epochs} epochs, {train_s:.2f} s per architecture, validation "
          f"accuracy {min(truth):.3f}..{max(truth):.3f} (median {statistics.median(truth):.3f})")
    print(f"ground truth against itself (other seeds): Kendall "
          f"{kendalltau(again, truth).statistic:.3f}, Spearman {spearmanr(again, truth).statistic:.3f}")
    print(f"{'method':>8} {'train s':>8} {'ms/arch':>8} {'kendall':>8} {'spearman':>8} "
          f"{'scores':>13}")
    for method in args.methods:
        with tempfile.TemporaryDirectory() as folder:
            sn._TRAINED.clear()
            objective = objectives.get("supernet", method=method, dataset=args.dataset,
                                       epochs=args.supernet_epochs, seed=args.seed,
                                       cache_dir=folder)
            first = objective(configs[0], space=space, ctx=Context())
            trained_s = first.user_attrs["supernet"]["train_seconds"]
            start = time.perf_counter()
            scores = [objective(c, space=space, ctx=Context()).values[0] for c in configs]
            per_arch = (time.perf_counter() - start) / len(configs)
        tau = kendalltau(scores, truth).statistic
        rho = spearmanr(scores, truth).statistic
        print(f"{method:>8} {trained_s:8.1f} {1000 * per_arch:8.1f} {tau:8.3f} {rho:8.3f} "
              f"{min(scores):6.3f}..{max(scores):.3f}")
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
