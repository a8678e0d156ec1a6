"""Training throughput of the ``train`` objective against the PyTorch-tutorial loop.

For each space and dataset, the same architectures are trained for the same number of epochs
with the same batch size twice in this process:

- **baseline**: the loop a user writes from the PyTorch tutorial: a ``DataLoader`` over a
  ``TensorDataset`` on the CPU, each batch moved to the device, fp32, contiguous memory
  format, ``loss.item()`` after every step;
- **nas-hpo**: ``objectives.get("train", ...)`` as a study runs it (data resident on the
  device, batches indexed there, one sync per epoch; bf16 autocast, channels_last and fused
  optimizers on a GPU).

It prints seconds per architecture, trained images per second, architectures per hour and the
ratio nas-hpo / baseline, with the hardware. ``--workers N [M ...]`` also runs N concurrent trials
(processes, each with its share of the CPU threads, or sharing one GPU) and reports the
aggregate, with the GPU memory in use; ``--eager`` times the nas-hpo path on a GPU again
without the CUDA graph (``cuda_graph = false``). 32×32 data is a synthetic CIFAR-shaped set (``random32``: random images, 10
classes; the speed does not depend on the pixel values); ``--datasets cifar10`` trains on the
real one (torchvision downloads it into the default data directory on first use).
``--precision bf16`` runs the nas-hpo path in bf16 autocast on the CPU too; ``--pytorch-pooling``
times the nas-hpo path again with PyTorch's own average pooling (on the CPU ``train``
computes it as a depthwise convolution, ``train.avg_pools_as_convs``).

    python benchmarks/train_throughput.py                       # CPU, digits and 32×32
    python benchmarks/train_throughput.py --datasets random32 --precision bf16
    python benchmarks/train_throughput.py --device cuda --workers 8
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

import numpy as np
import torch
from torch import nn

from nas_hpo import data, objectives, spaces
from nas_hpo.objectives import Context
from nas_hpo.objectives import train as train_objective

sys.path.insert(0, str(Path(__file__).parent))
from _window import per_second  # noqa: E402  (the benchmarks' folder, not a package)

N_RANDOM32 = 1500  # 1,200 training images after the 80/20 split, like the digits run


@data.register("random32")
def _random32(data_dir: Path, download: bool, image_size: int) -> data.Source:
    """Random CIFAR-shaped images (3×32×32, 10 classes): throughput does not depend on pixels."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(N_RANDOM32, 3, 32, 32), dtype=np.uint8)
    y = (np.arange(N_RANDOM32) % 10).astype(np.int64)
    return data.Source((x, y), None, 10, "crop_flip")


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
    text = f"CPU {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    if device.type == "cuda":
        text += f", GPU {torch.cuda.get_device_name(device)}"
    return text


def tutorial_loop(model: nn.Module, splits: data.Splits, device: torch.device, epochs: int,
                  batch_size: int, lr: float) -> int:
    """The baseline, as the PyTorch tutorial writes it. Returns images trained."""
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(splits.x_train, splits.y_train),
        batch_size=batch_size, shuffle=True, drop_last=False,
    )
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    seen = 0
    for _ in range(epochs):
        model.train()
        running = 0.0
        for xb, yb in loader:
            if len(xb) < 2:
                continue
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            running += loss.item()
            seen += len(xb)
        model.eval()
        with torch.no_grad():
            correct = 0
            for i in range(0, len(splits.x_val), batch_size):
                out = model(splits.x_val[i:i + batch_size].to(device))
                correct += (out.argmax(1).cpu() == splits.y_val[i:i + batch_size]).sum().item()
    return seen


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_baseline(space_name: str, dataset: str, configs: list[dict], device: torch.device,
                  epochs: int, batch_size: int) -> tuple[list[float], int]:
    space = spaces.get(space_name)
    splits = data.load(dataset)
    times, seen = [], 0
    for i, config in enumerate(configs):
        torch.manual_seed(i)
        sync(device)
        t0 = time.perf_counter()
        model = space.build(config, input_shape=splits.input_shape,
                            num_classes=splits.num_classes).to(device)
        seen = tutorial_loop(model, splits, device, epochs, batch_size, lr=0.05)
        sync(device)
        times.append(time.perf_counter() - t0)
    return times, seen


def time_ours(space_name: str, dataset: str, configs: list[dict], device: torch.device,
              epochs: int, batch_size: int, extra: dict) -> tuple[list[float], int]:
    space = spaces.get(space_name)
    objective = objectives.get("train", dataset=dataset, epochs=epochs, batch_size=batch_size,
                               device=str(device), augment="none", **extra)
    times, seen = [], 0
    for i, config in enumerate(configs):
        sync(device)
        t0 = time.perf_counter()
        result = objective(config, space=space, ctx=Context(seed=i))
        sync(device)
        times.append(time.perf_counter() - t0)
        ips = result.user_attrs["images_per_second"]
        seen = int(round(ips * result.user_attrs["train_seconds"]))
    return times, seen


def _trainer(job: tuple) -> Callable[[int], object]:
    """One concurrent process's trial: ``trial(i)`` trains the i-th architecture (cyclically)."""
    space_name, dataset, configs, device, epochs, batch_size, threads, extra = job
    torch.set_num_threads(threads)
    space = spaces.get(space_name)
    objective = objectives.get("train", dataset=dataset, epochs=epochs, batch_size=batch_size,
                               device=device, augment="none", **extra)
    return lambda i: objective(configs[i % len(configs)], space=space, ctx=Context(seed=i))


def concurrent(space_name: str, dataset: str, configs: list[dict], device: torch.device,
               epochs: int, batch_size: int, workers: int, seconds: float, extra: dict
               ) -> tuple[float, str]:
    """Architectures per hour with ``workers`` concurrent trial processes, and their memory."""
    threads = max(1, (os.cpu_count() or 1) // workers) if device.type == "cpu" else 1
    data.load(dataset)
    job = (space_name, dataset, configs, str(device), epochs, batch_size, threads, extra)
    rate, used = per_second(_trainer, job, device, workers, seconds)
    return rate * 3600, used


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--spaces", nargs="+", default=["resnet_blocks", "nb201"])
    p.add_argument("--datasets", nargs="+", default=["digits", "random32"])
    p.add_argument("--archs", type=int, default=3, help="architectures per measurement")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, nargs="+", default=[],
                   help="also measure N concurrent trials (several values: one run each)")
    p.add_argument("--eager", action="store_true",
                   help="on a GPU, also time the nas-hpo path with cuda_graph = false")
    p.add_argument("--seconds", type=float, default=60.0, help="window of the concurrent run")
    p.add_argument("--compile", action="store_true", help="torch.compile in the nas-hpo path")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="the train objective's precision in the nas-hpo path (auto: bf16 on a "
                        "GPU, fp32 on the CPU); the tutorial loop stays fp32")
    p.add_argument("--pytorch-pooling", action="store_true",
                   help="also time the nas-hpo path with PyTorch's own average pooling (the "
                        "baseline of train.avg_pools_as_convs, its CPU default)")
    args = p.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    extra: dict = {"compile": True} if args.compile else {}
    if args.precision != "auto":
        extra["precision"] = args.precision
    print(hardware(device))
    print(f"epochs {args.epochs}, batch {args.batch_size}, {args.archs} architectures each, "
          f"nas-hpo precision {args.precision}\n")
    header = (f"{'space':14} {'data':9} {'device':6} {'tutorial s/arch':>15} "
              f"{'nas-hpo s/arch':>14} {'ratio':>6} {'img/s tut':>10} {'img/s ours':>10} "
              f"{'archs/h ours':>12}")
    print(header)
    rows = []
    for space_name in args.spaces:
        if space_name not in spaces.names():
            print(f"{space_name}: not registered, skipped", file=sys.stderr)
            continue
        space = spaces.get(space_name)
        configs = [space.sample(seed=s) for s in range(args.archs)]
        for dataset in args.datasets:
            # One untimed run of each path: allocator and kernel caches warm for both.
            time_baseline(space_name, dataset, configs[:1], device, 1, args.batch_size)
            time_ours(space_name, dataset, configs[:1], device, 1, args.batch_size, extra)
            base, seen_b = time_baseline(space_name, dataset, configs, device, args.epochs,
                                         args.batch_size)
            ours, seen_o = time_ours(space_name, dataset, configs, device, args.epochs,
                                     args.batch_size, extra)
            b, o = statistics.median(base), statistics.median(ours)
            rows.append((space_name, dataset, b, o))
            print(f"{space_name:14} {dataset:9} {device.type:6} {b:15.2f} {o:14.2f} "
                  f"{b / o:6.2f} {seen_b / b:10.0f} {seen_o / o:10.0f} {3600 / o:12.0f}")
            print(f"{'':14} {'':9} spread over the {len(configs)} architectures (s/arch, "
                  f"min-max): tutorial {min(base):.2f}-{max(base):.2f}, "
                  f"nas-hpo {min(ours):.2f}-{max(ours):.2f}")
            if args.pytorch_pooling:
                rewrite = train_objective.avg_pools_as_convs
                train_objective.avg_pools_as_convs = lambda model: 0
                try:
                    plain, _ = time_ours(space_name, dataset, configs, device, args.epochs,
                                         args.batch_size, extra)
                finally:
                    train_objective.avg_pools_as_convs = rewrite
                p_ = statistics.median(plain)
                print(f"{'':14} {'':9} nas-hpo with PyTorch's pooling: {p_:.2f} s/arch; pooling "
                      f"as convolution {p_ / o:.2f}x faster")
            if args.eager and device.type == "cuda":
                eager, _ = time_ours(space_name, dataset, configs, device, args.epochs,
                                     args.batch_size, {**extra, "cuda_graph": False})
                e = statistics.median(eager)
                print(f"{'':14} {'':9} nas-hpo eager (cuda_graph = false): {e:.2f} s/arch, "
                      f"{b / e:.2f}x the tutorial loop; the CUDA graph {e / o:.2f}x faster")
            for workers in args.workers:
                per_hour, memory = concurrent(space_name, dataset, configs, device,
                                              args.epochs, args.batch_size, workers,
                                              args.seconds, extra)
                print(f"{'':14} {'':9} {workers} concurrent trials: {per_hour:.0f} archs/h "
                      f"({per_hour / 3600:.2f}/s) = {per_hour / (3600 / b):.2f}x one "
                      f"tutorial-loop trial; {memory}")
    if rows:
        ratios = [b / o for *_, b, o in rows]
        print(f"\nmedian ratio nas-hpo / tutorial loop: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
