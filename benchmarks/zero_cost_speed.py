"""Milliseconds per architecture of each zero-cost proxy, against one forward+backward pass.

On NAS-Bench-201 networks (``nb201``, C=16, N=5, 3×32×32 input, 10 classes) scored on
batches of 64 random CIFAR-shaped images (the speed does not depend on pixel values), for
each of ``--archs`` random cells, in this process:

- **floor**: one cross-entropy forward + backward of the network in training mode, the least
  any gradient-based proxy needs, in the layout the proxies run in (``--layout``: channels_last,
  ``proxies.score``'s default for image batches on a CPU or GPU, or contiguous);
- each proxy alone through ``proxies.score`` (its default draws: swap averages 32);
- the gradient-based proxies in one ``score`` call (passes shared where they can be), and
  every proxy in one call;
- with ``--pytorch-pooling``, the floor and the gradient-based set again with PyTorch's own
  average pooling in the copies (the baseline of ``train.avg_pools_as_convs``, which they
  use on the CPU), and the speed-ups.

``--workers N [M ...]``: N spawned processes (one run per value) each build a random cell on
the device and score it with ``--concurrent-proxy`` (synflow by default), back to back, as
concurrent ``zero_cost`` trials would; counted over a ``--seconds`` window that opens when
every process has scored once: architectures per second on the whole device (on a GPU, run
it under NVIDIA's MPS for the processes' kernels to overlap, as benchmarks/gpu_checks.sh
does).

Every proxy scores the first batch, zico a second one too (the objective's default of two
batches). The first architecture warms up and is not counted. Timing: ``time.perf_counter``
on the CPU; CUDA events around each call after a synchronisation on a GPU; the floor and the
gradient-based set are timed ``--repeats`` times per architecture and the fastest counts (on
a shared machine, the least disturbed run). Prints the mean, standard deviation and median in
ms per architecture, the median and largest ratio to the same architecture's floor, and the
hardware. The issue's goal: the gradient-based set within 4× the floor.

    python benchmarks/zero_cost_speed.py --archs 5                 # CPU
    python benchmarks/zero_cost_speed.py --device cuda --archs 50
    python benchmarks/zero_cost_speed.py --device cuda --archs 0 --workers 8 16
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from nas_hpo import proxies as zc
from nas_hpo import spaces
from nas_hpo.proxies import _passes

sys.path.insert(0, str(Path(__file__).parent))
from _window import per_second  # noqa: E402  (the benchmarks' folder, not a package)

GRADIENT_BASED = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov", "epe_nas",
                  "zico", "plain")


def hardware(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    text = (f"CPU {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")
    if device.type == "cuda":
        text += f", GPU {torch.cuda.get_device_name(device)}"
    return text


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Milliseconds of one call."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end)
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def _batches(batch_size: int, device: torch.device, fmt: torch.memory_format
             ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Two batches of random CIFAR-shaped images (the objective's default of two)."""
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(batch_size, 3, 32, 32, generator=gen).to(device)
             .contiguous(memory_format=fmt), (torch.arange(batch_size) % 10).to(device))
            for _ in range(2)]


def _scorer(job: tuple) -> Callable[[int], object]:
    """One concurrent process: ``one(i)`` builds the i-th random cell on the device and scores
    it with the proxy."""
    proxy, device, batch_size, cl, offset, threads = job
    torch.set_num_threads(threads)
    device = torch.device(device)
    space = spaces.get("nb201", C=16, N=5)
    batches = _batches(batch_size, device, torch.channels_last if cl else torch.contiguous_format)

    def one(i: int) -> object:
        torch.manual_seed(offset + i)
        model = space.build(space.sample(seed=offset + i), input_shape=(3, 32, 32),
                            num_classes=10).to(device)
        return zc.score(model, proxy, data=batches, channels_last=cl)

    return one


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", type=int, default=10, help="architectures timed (after one warm-up)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3,
                   help="timings of the floor and of the gradient-based set per architecture "
                        "(the fastest counts: the least disturbed by other processes)")
    p.add_argument("--proxies", default=",".join(n for n in zc.PROXIES if n != "vote"),
                   help="comma-separated proxies to time one by one")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--layout", choices=("channels_last", "contiguous"), default="channels_last",
                   help="memory layout of the floor's network and batch and of the proxies' "
                        "passes (proxies.score's channels_last; its default on CPU and GPU)")
    p.add_argument("--pytorch-pooling", action="store_true",
                   help="also time the floor and the gradient-based set with PyTorch's own "
                        "average pooling (the baseline of train.avg_pools_as_convs, which the "
                        "proxies' copies use on the CPU) and print the speed-ups")
    p.add_argument("--workers", type=int, nargs="+", default=[],
                   help="also measure N concurrent processes scoring --concurrent-proxy "
                        "(several values: one run each)")
    p.add_argument("--concurrent-proxy", default="synflow")
    p.add_argument("--seconds", type=float, default=15.0, help="window of a concurrent run")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    space = spaces.get("nb201", C=16, N=5)
    cl = args.layout == "channels_last"
    batches = _batches(args.batch_size, device,
                       torch.channels_last if cl else torch.contiguous_format)
    if args.archs:
        x, y = batches[0]
        names = [n for n in args.proxies.split(",") if n]
        for n in names:
            zc.get(n)
        every = [n for n in zc.PROXIES if n != "vote"]
        rows = ["floor", *names, "gradient-based set", "all proxies"]
        if args.pytorch_pooling:
            rows += ["floor, PyTorch pooling", "set, PyTorch pooling"]
        times: dict[str, list[float]] = {r: [] for r in rows}
        ratios: dict[str, list[float]] = {r: [] for r in rows}
        for i in range(args.archs + 1):
            torch.manual_seed(i)
            model = space.build(space.sample(seed=i), input_shape=(3, 32, 32),
                                num_classes=10).to(device)
            model.train()
            # The floor runs as the proxies' copy does (score keeps this model as it is).
            floor_model = _passes._copy(model, cl)

            def floor(model: torch.nn.Module = floor_model) -> None:
                model.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()

            row = {"floor": min(timed(floor, device) for _ in range(args.repeats))}
            for name in names:
                row[name] = timed(lambda n=name, m=model: zc.score(m, n, data=batches,
                                                                   channels_last=cl), device)
            row["gradient-based set"] = min(
                timed(lambda m=model: zc.score(m, GRADIENT_BASED, data=batches, channels_last=cl),
                      device)
                for _ in range(args.repeats))
            row["all proxies"] = timed(lambda m=model: zc.score(m, every, data=batches,
                                                                channels_last=cl), device)
            if args.pytorch_pooling:  # the same passes with the copies' pooling left as it is
                rewrite = _passes.avg_pools_as_convs
                _passes.avg_pools_as_convs = lambda net: 0
                try:
                    plain_model = _passes._copy(model, cl)
                    row["floor, PyTorch pooling"] = min(
                        timed(lambda m=plain_model: floor(m), device) for _ in range(args.repeats))
                    row["set, PyTorch pooling"] = min(
                        timed(lambda m=model: zc.score(m, GRADIENT_BASED, data=batches,
                                                       channels_last=cl), device)
                        for _ in range(args.repeats))
                finally:
                    _passes.avg_pools_as_convs = rewrite
            if i:  # the first architecture is the warm-up
                for key, value in row.items():
                    times[key].append(value)
                    ratios[key].append(value / row["floor"])

        print(f"zero-cost proxies on nb201 C=16 N=5, 3×32×32, batch {args.batch_size}, 10 classes; "
              f"{args.archs} random architectures on {device}, {args.layout}; floor and "
              f"gradient-based set: fastest of {args.repeats}")
        print(hardware(device))
        print(f"{'ms per architecture':<24} {'mean':>9} {'± sd':>8} {'median':>9} "
              f"{'× floor (median, max)':>22}")
        for key in rows:
            v, r = times[key], ratios[key]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            print(f"{key:<24} {statistics.mean(v):>9.1f} {sd:>8.1f} {statistics.median(v):>9.1f} "
                  f"{statistics.median(r):>13.2f} {max(r):>8.2f}")
        ratio = statistics.median(ratios["gradient-based set"])
        print(f"\ngradient-based set ({', '.join(GRADIENT_BASED)}) in one call: {ratio:.2f}× one "
              f"forward+backward of the same network (median over architectures); goal <= 4×: "
              f"{'met' if ratio <= 4 else 'not met'}")
        if args.pytorch_pooling:
            for what, base, fast in (("floor", "floor, PyTorch pooling", "floor"),
                                     ("gradient-based set", "set, PyTorch pooling",
                                      "gradient-based set")):
                gain = statistics.median(b / f for b, f in zip(times[base], times[fast],
                                                               strict=True))
                print(f"{what}: pooling as convolution {gain:.2f}× faster than PyTorch's pooling "
                      f"(median over architectures)")
        if "synflow" in names:
            print(f"synflow: {1e3 / statistics.median(times['synflow']):.1f} architectures/s")
        if "swap" in names:
            print("swap averages 32 draws of the batch here; its reference batch is 16, a quarter "
                  "of this one")

    for workers in args.workers:
        threads = max(1, (os.cpu_count() or 1) // workers) if device.type == "cpu" else 1
        job = (args.concurrent_proxy, str(device), args.batch_size, cl, 10_000, threads)
        rate, used = per_second(_scorer, job, device, workers, args.seconds)
        print(f"{workers} concurrent processes, {args.concurrent_proxy} ({args.layout}): "
              f"{rate:.1f} architectures/s built and scored over {args.seconds:.0f} s; {used}")

if __name__ == "__main__":
    main()
