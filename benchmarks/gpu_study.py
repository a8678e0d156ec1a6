"""A short study on the GPU through the whole trial lifecycle: ``train`` on ``--device`` with
every cost attribute measured, then what each trial recorded (its CUDA-graph flag, training
speed and the latency measured with CUDA events on the GPU).

    python benchmarks/gpu_study.py --device cuda --trials 6
"""

from __future__ import annotations

import argparse

import nas_hpo


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--dataset", default="digits")
    args = p.parse_args(argv)
    # (in memory: the GPU image has no SQLAlchemy; the lifecycle is the same on every storage)
    study = nas_hpo.run(
        {"space": {"name": "nb201"}, "strategy": {"name": "random"},
         "objective": {"name": "train", "device": args.device, "dataset": args.dataset,
                       "epochs": 2}},
        n_trials=args.trials, seed=0, cost=["params", "flops", "latency"],
        storage=":memory:", study_name="gpu-study",
    )
    print(f"{'trial':>5} {'state':9} {'val acc':>7} {'graph':>5} {'img/s':>8} "
          f"{'latency ms':>10} {'on':6} {'params':>8} {'MFLOPs':>7}")
    for t in study.trials:
        a = t.user_attrs
        value = f"{t.value:.3f}" if t.value is not None else "-"
        print(f"{t.number:5d} {t.state.name:9} {value:>7} {str(a.get('cuda_graph')):>5} "
              f"{a.get('images_per_second') or 0:8.0f} {a.get('latency_ms', float('nan')):10.3f} "
              f"{a.get('latency_device', '-'):6} {a.get('params', 0):8d} "
              f"{a.get('flops', 0) / 1e6:7.1f}")


if __name__ == "__main__":
    main()
