"""The thread budget: the default torch threads per trial against manual settings, in one process.

Each run is a fresh study of ``--trials`` trainings of NAS-Bench-201 cells (``nb201`` C=8 N=1,
``train`` for ``--epochs`` epochs on digits, random search, seed fixed: the same cells every
run; the time includes starting the worker processes), on
this machine's optuna backend with 1 and with 2 worker processes; the torch threads of each
trial are the default (the cores over the workers; one process alone keeps torch's own
setting) or set by hand (``[backend] threads``) to 1 and to the number of cores (2 workers
at 2 threads each oversubscribe a 2-core machine). After an untimed warm-up run, settings are
interleaved, ``--repeats`` times; the median counts. Prints each setting's time and, per worker count, the default's
ratio to the best manual setting (goal: <= 1.05).

    python benchmarks/threads.py --trials 12 --epochs 6 --repeats 3
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
from nas_hpo.study import cores


def run_once(workers: int, threads: int | None, trials: int, epochs: int, folder: str,
             tag: str) -> float:
    start = time.perf_counter()
    nas_hpo.run({"space": {"name": "nb201", "C": 8, "N": 1},
                 "objective": {"name": "train", "epochs": epochs},
                 "strategy": {"name": "random"}},
                n_trials=trials, workers=workers, threads=threads, seed=0, cost=[],
                storage=f"sqlite:///{folder}/{tag}.db", study_name="threads")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    n = cores()
    settings = [(1, None), (1, 1), (1, n), (2, None), (2, 1), (2, n)]
    times: dict[tuple[int, int | None], list[float]] = {s: [] for s in settings}
    with tempfile.TemporaryDirectory() as folder:
        # Untimed: this process's first run pays the imports and the data loading.
        run_once(1, None, 2, 1, folder, "warm-up")
        for r in range(args.repeats):
            for workers, threads in settings:
                seconds = run_once(workers, threads, args.trials, args.epochs, folder,
                                   f"{r}-{workers}-{threads}")
                times[(workers, threads)].append(seconds)
                print(f"repeat {r + 1}: {workers} worker(s), threads "
                      f"{threads or 'default'}: {seconds:.1f} s", flush=True)
    median = {s: statistics.median(v) for s, v in times.items()}
    for workers in (1, 2):
        default = median[(workers, None)]
        manual = {t: median[(workers, t)] for t in (1, n)}
        best = min(manual.values())
        share = max(1, n // workers) if workers > 1 else torch.get_num_threads()
        print(f"{workers} worker(s): default ({share} thread(s) each) {default:.1f} s; "
              + "; ".join(f"{t} thread(s) each {v:.1f} s" for t, v in manual.items())
              + f"; default / best manual {default / best:.2f}x")
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
          f"({n} usable), torch {torch.__version__}, {args.trials} trainings of "
          f"{args.epochs} epochs per run, "
          f"{args.repeats} repeats (median)")


if __name__ == "__main__":
    main()
