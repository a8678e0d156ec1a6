"""Milliseconds per architecture of each zero-cost proxy, against one forward+backward pass.

On ``nb201`` (C=16, N=5, 32×32 input, batch 64, 10 classes; random CIFAR-shaped data, as the
speed does not depend on pixel values), for each of ``--archs`` random cells in this process:

- **floor**: one cross-entropy forward + backward of the network (what any gradient-based
  proxy needs at least once);
- each proxy alone through ``zero_cost.score``;
- the whole set of gradient-based proxies in one ``score`` call (passes shared where they
  can be).

Prints the median ms per architecture, the ratio to the floor, architectures per second for
synflow, and the hardware. The issue's goals: the gradient-based set within 4× the floor; at
least 20 architectures/s for synflow on one GPU.

    python benchmarks/zero_cost_speed.py --archs 5                 # CPU
    python benchmarks/zero_cost_speed.py --device cuda --archs 50
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from nas_hpo import spaces
from nas_hpo.objectives import zero_cost as zc

GRADIENT_BASED = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov", "zico",
                  "epe_nas", "plain")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _ms(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return (time.perf_counter() - start) * 1e3


def _measure(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, names: list[str],
             device: torch.device) -> dict[str, float]:
    def floor() -> None:
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()

    row = {"floor": _ms(floor, device)}
    for name in names:
        row[name] = _ms(lambda n=name: zc.score(model, n, data=(x, y)), device)
    row["gradient set"] = _ms(lambda: zc.score(model, GRADIENT_BASED, data=(x, y)), device)
    row["all"] = _ms(lambda: zc.score(model, names, data=(x, y)), device)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    space = spaces.get("nb201", C=16, N=5)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch_size, 3, 32, 32, generator=gen).to(device)
    y = (torch.arange(args.batch_size) % 10).to(device)
    names = [n for n in zc.PROXIES if n != "vote"]
    times: dict[str, list[float]] = {n: [] for n in ["floor", *names, "gradient set", "all"]}
    for i in range(args.archs + 1):  # the first architecture warms up and is not counted
        config = space.sample(seed=i)
        torch.manual_seed(i)
        model = space.build(config, input_shape=(3, 32, 32), num_classes=10).to(device)
        model.train()

        row = _measure(model, x, y, names, device)
        if i:
            for k, v in row.items():
                times[k].append(v)
    hw = (torch.cuda.get_device_name(device) if device.type == "cuda"
          else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    print(f"zero-cost proxies on nb201 C=16 N=5, 3×32×32, batch {args.batch_size}, "
          f"{args.archs} architectures; {device.type}: {hw}; torch {torch.__version__}")
    floor_ms = statistics.median(times["floor"])
    print(f"{'proxy':<14} {'median ms':>10} {'min ms':>9} {'× floor':>8}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<14} {med:>10.1f} {min(values):>9.1f} {med / floor_ms:>8.2f}")
    synflow = statistics.median(times["synflow"])
    print(f"\nsynflow: {1e3 / synflow:.1f} architectures/s; gradient-based set "
          f"({', '.join(GRADIENT_BASED)}): {statistics.median(times['gradient set']) / floor_ms:.2f}"
          f"× one forward+backward (goal <= 4×)")


if __name__ == "__main__":
    main()
