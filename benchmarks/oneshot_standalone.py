"""The architectures a one-shot search derived, trained stand-alone on digits' whole training
split, against the table's best cell by validation trained the same way.

NB201-digits' recipe (15% of the training split, 5 epochs) is not the search's (the whole
training split, 50 epochs): on 162 images small, parameter-free cells win, so the table judges
the convolution-heavy cells a search on more data prefers as poor. Here every cell is trained
with ``train`` (C = 16, N = 1, ``--epochs`` epochs, the whole training split) for ``--seeds``
seeds and reports its test accuracy.

    python benchmarks/oneshot_nb201_digits.py --out runs.json ...
    python benchmarks/oneshot_standalone.py runs.json --epochs 10 --seeds 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def train_test(arch: str, epochs: int, seeds: int) -> list[float]:
    from nas_hpo import Context, objectives, spaces
    from nas_hpo.spaces.nb201 import from_arch_str

    space = spaces.get("nb201", C=16, N=1)
    objective = objectives.get("train", dataset="digits", epochs=epochs)
    config = from_arch_str(arch)
    return [float(objective(config, space=space, ctx=Context(seed=s)).user_attrs["test_accuracy"])
            for s in range(seeds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", help="the JSON oneshot_nb201_digits.py --out wrote")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from oneshot_nb201_digits import table_finals

    finals = table_finals()
    runs: list[dict[str, Any]] = json.loads(Path(args.runs).read_text())
    reference = str(finals.val_accuracy.idxmax())
    start = time.perf_counter()
    scores = {arch: train_test(arch, args.epochs, args.seeds)
              for arch in sorted({r["arch"] for r in runs} | {reference})}
    print(f"# Derived cells trained stand-alone on digits ({platform.machine()}, "
          f"{os.cpu_count()} cores, 1 thread, torch {torch.__version__}; C 16, N 1, "
          f"{args.epochs} epochs, {args.seeds} seeds each; {time.perf_counter() - start:.0f} s)\n")
    ref = scores[reference]
    print(f"the table's best cell by validation {reference}: table test "
          f"{finals.test_accuracy[reference]:.4f}, trained here {np.mean(ref):.4f}\n")
    print("| method | runs | table test acc. | trained here: test acc. | runs at or above the "
          "table's best cell |")
    print("|---|---|---|---|---|")
    for label in dict.fromkeys(r["label"] for r in runs):
        rs = [r for r in runs if r["label"] == label]
        here = [statistics.mean(scores[r["arch"]]) for r in rs]
        table = [float(finals.test_accuracy[r["arch"]]) for r in rs]
        print(f"| {label} | {len(rs)} | {np.mean(table):.4f} ± {np.std(table, ddof=1):.4f} "
              f"| {np.mean(here):.4f} ± {np.std(here, ddof=1):.4f} "
              f"| {sum(h >= np.mean(ref) for h in here)} |")
    print("\nper cell (mean test accuracy over seeds):")
    for arch, values in sorted(scores.items(), key=lambda kv: -np.mean(kv[1])):
        print(f"  {np.mean(values):.4f}  {arch}")


if __name__ == "__main__":
    main()
