"""Is channels_last training correct on this machine's CPU? (gradients against float64)

Trains nothing: computes the gradient of one ``darts`` network (32×32 input, batch 4) in float64
(the reference), in float32 with the default layout and in float32 with channels_last, several
times, and prints each float32 gradient's error relative to the reference. With torch 2.14.1 on
the project's 2-core EPYC (AVX-512) machine both layouts sit at 1e-3 to 1e-2 (max-pool and ReLU
ties amplify rounding) and are the same from run to run. What this does not show is the one
crash found: oneDNN's AVX2 weight gradient of a strided 1×1 convolution with fewer than 8
input channels corrupts the heap in channels_last, which ``objectives/train.py`` avoids by
rewriting such convolutions (``avoid_strided_pointwise_convs``); reproduce it with
``ONEDNN_MAX_CPU_ISA=AVX2`` and glibc's malloc checks
(tests/objectives/test_train_options.py). Rerun both on a new torch.

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
