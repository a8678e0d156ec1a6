"""Time and memory of one epoch of differentiable search, per method and space, on digits.

Each (space, method) runs ``--epochs`` epochs of ``nas_hpo.oneshot.OneShotSearch`` on digits'
training split (half for the weights, half for α; batch 64) in its own process with one torch
thread; printed: seconds per epoch and the peak resident memory the search added, each also as
a ratio to first-order DARTS on the same space measured in the same run.

    python benchmarks/oneshot_epoch_cost.py
    python benchmarks/oneshot_epoch_cost.py --spaces nb201 --methods darts gdas
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import statistics
import time
from typing import Any

SPACES: dict[str, dict[str, Any]] = {
    "nb201": {"C": 16, "N": 1},
    "darts": {"init_channels": 16, "layers": 8},  # DARTS' search network
    "resnet_blocks": {"base_width": 16},
    "mobilenet": {"max_depth": 4, "width_mult": 0.5},
}
METHODS = {
    "darts (1st)": {"method": "darts", "order": 1},
    "darts (2nd)": {"method": "darts", "order": 2},
    "gdas": {"method": "gdas"},
    "pc_darts": {"method": "pc_darts", "partial_channels": 4},
    "beta_darts": {"method": "beta_darts"},
}


def one(job: tuple[str, str, int]) -> dict[str, Any]:
    space_name, label, epochs = job
    import torch

    torch.set_num_threads(1)
    from nas_hpo import data, spaces
    from nas_hpo.oneshot import OneShotSearch

    space = spaces.get(space_name, **SPACES[space_name])
    splits = data.load("digits")
    options = dict(METHODS[label])
    if options["method"] == "pc_darts" and space_name not in ("nb201", "darts"):
        return {"space": space_name, "label": label, "skipped": "no partial-channel supernet"}
    search = OneShotSearch(space, epochs=epochs, seed=0, **options)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    history = search.run(splits.x_train, splits.y_train, splits.x_val, splits.y_val,
                         num_classes=splits.num_classes)
    return {"space": space_name, "label": label,
            "epoch_s": statistics.mean(e.seconds for e in history),
            "total_s": time.perf_counter() - start,
            "mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=list(SPACES), choices=list(SPACES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    import torch

    jobs = [(s, m, args.epochs) for s in args.spaces for m in args.methods]
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        results = pool.map(one, jobs, chunksize=1)
    print(f"# One epoch of one-shot search on digits ({platform.machine()}, {os.cpu_count()} "
          f"cores, 1 thread, torch {torch.__version__}, {args.epochs} epoch(s))\n")
    print("| space | method | s / epoch | × darts (1st) | peak MB added | × darts (1st) |")
    print("|---|---|---|---|---|---|")
    for space in args.spaces:
        rows = [r for r in results if r["space"] == space]
        base = next((r for r in rows if r["label"] == args.methods[0] and "skipped" not in r),
                    None)
        for r in rows:
            if "skipped" in r:
                print(f"| {space} | {r['label']} | – | – | – | – ({r['skipped']}) |")
                continue
            t = r["epoch_s"] / base["epoch_s"] if base else float("nan")
            m = r["mb"] / base["mb"] if base and base["mb"] > 0 else float("nan")
            print(f"| {space} | {r['label']} | {r['epoch_s']:.2f} | {t:.2f} | {r['mb']:.0f} "
                  f"| {m:.2f} |")


if __name__ == "__main__":
    main()
