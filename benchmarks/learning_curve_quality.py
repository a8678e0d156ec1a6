"""How well ``learning_curve`` predicts a full run, against the accuracy it observed.

Trains ``--archs`` random architectures of a space (default ``resnet_blocks``, base width 4)
on ``--dataset`` (default the embedded ``digits``) for the full ``--epochs`` (the ground truth: the validation
accuracy after the last epoch), each with the study's per-trial seeds. ``learning_curve``
trains the first ``observe_epochs`` epochs of the same schedule, so its observed curve is the
full run's first epochs (``tests/objectives/test_learning_curve.py`` checks that they are
equal): here each full curve's prefix is extrapolated, for each of ``--observe`` epochs.

For each observation length it prints, against the final accuracies: Kendall's tau and
Spearman's rho of (a) the last observed accuracy (the baseline: stop early and rank by what
you see) and (b) the extrapolated prediction; the mean absolute error of each as an estimate
of the final accuracy; the time the fits took per architecture; and the hardware.

    python benchmarks/learning_curve_quality.py --archs 24 --epochs 20 --lr 0.005 --observe 5 6 8 10
    python benchmarks/learning_curve_quality.py --dataset cifar10 --epochs 50 --observe 10 15
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
from scipy.stats import kendalltau, spearmanr

from nas_hpo import objectives, spaces
from nas_hpo.curves import extrapolate
from nas_hpo.objectives import Context
from nas_hpo.study import trial_seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="resnet_blocks")
    parser.add_argument("--archs", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--observe", type=int, nargs="+", default=[4, 6, 8])
    parser.add_argument("--dataset", default="digits", help="any of train's datasets")
    parser.add_argument("--lr", type=float, default=0.05, help="train's lr (0.05: its default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    options = {"base_width": 4} if args.space == "resnet_blocks" else {}
    space = spaces.get(args.space, **options)
    train = objectives.get("train", dataset=args.dataset, epochs=args.epochs, lr=args.lr)
    curves = []
    start = time.perf_counter()
    for i in range(args.archs):
        config = space.sample(seed=args.seed * 1000 + i)
        result = train(config, space=space, ctx=Context(seed=trial_seed(args.seed, i)))
        curves.append(result.user_attrs["learning_curve"])
    train_s = time.perf_counter() - start
    final = [c[-1] for c in curves]
    print(f"{args.archs} architectures of {args.space} on {args.dataset}, {args.epochs} epochs each, "
          f"lr {args.lr} "
          f"({train_s / args.archs:.2f} s per full run); final validation accuracy "
          f"{min(final):.3f}..{max(final):.3f}, median {statistics.median(final):.3f}")
    print(f"{'observed':>8} {'estimate':>12} {'kendall':>8} {'spearman':>8} {'MAE':>7} "
          f"{'fit ms':>7}")
    for k in args.observe:
        last = [c[k - 1] for c in curves]
        fits, times = [], []
        for c in curves:
            t = time.perf_counter()
            fits.append(extrapolate(c[:k], args.epochs).prediction)
            times.append(time.perf_counter() - t)
        for label, estimate, ms in (("last seen", last, ""),
                                    ("extrapolated", fits,
                                     f"{1000 * statistics.median(times):7.1f}")):
            tau = kendalltau(estimate, final).statistic
            rho = spearmanr(estimate, final).statistic
            mae = statistics.fmean(abs(a - b) for a, b in zip(estimate, final, strict=True))
            print(f"{k:>8} {label:>12} {tau:8.3f} {rho:8.3f} {mae:7.4f} {ms:>7}")
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
