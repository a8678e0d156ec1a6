"""Is channels_last training correct on this machine's CPU? (why ``train`` refuses it there)

Trains nothing: computes the gradient of one ``darts`` network (32×32 input, batch 4) in float64
(the reference), in float32 with the default layout and in float32 with channels_last, several
times, and prints each float32 gradient's error relative to the reference. With torch 2.14.1 on
this project's 2-core EPYC machine the default layout stays at ~1e-6 on some inputs while
channels_last varies from process to process and reaches ~1e-2 (with oneDNN on or off, on one thread
or two). float64 gradients of both layouts agree to ~5e-15, so these differences may be
rounding amplified by max-pool and ReLU ties; what settles the refusal in
``objectives/train.py`` is a crash: training a ``resnet_blocks`` net (base_width=4, default
config) on digits in channels_last aborts in the backward pass on a corrupted heap
(tests/objectives/test_train_options.py did, when it was allowed). Rerun both on a new torch
before lifting the refusal.

    python benchmarks/channels_last_cpu_check.py --runs 8 --threads 1
"""

from __future__ import annotations

import argparse

import torch

from nas_hpo import spaces


def gradient(space, config, x: torch.Tensor, fmt: torch.memory_format,
             dtype: torch.dtype) -> torch.Tensor:
    torch.manual_seed(0)
    model = space.build(config, input_shape=tuple(x.shape[1:]), num_classes=5)
    model = model.to(dtype=dtype, memory_format=fmt)
    out = model(x.clone().to(dtype).contiguous(memory_format=fmt))
    torch.nn.functional.cross_entropy(out, torch.arange(len(x)) % 5).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]).double()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-mkldnn", action="store_true", help="PyTorch's native kernels only")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.mkldnn.enabled = not args.no_mkldnn
    space = spaces.get("darts")
    config = space.sample(seed=1)
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    exact = gradient(space, config, x, torch.contiguous_format, torch.float64)
    print(f"torch {torch.__version__}, {args.threads} thread(s), mkldnn "
          f"{torch.backends.mkldnn.enabled}: relative gradient error against float64")
    for run in range(args.runs):
        errors = [float((gradient(space, config, x, fmt, torch.float32) - exact).norm()
                        / exact.norm())
                  for fmt in (torch.contiguous_format, torch.channels_last)]
        print(f"run {run}: default layout {errors[0]:.1e}   channels_last {errors[1]:.1e}",
              flush=True)


if __name__ == "__main__":
    main()
