"""A study on the GPU through the whole trial lifecycle: ``train`` on ``--device`` with every
cost attribute measured, then what each trial recorded (its CUDA-graph flag, training speed
and the latency measured with CUDA events on the GPU), and the study's rate: architectures
trained per second from the first trial's start to the last one's end, with the worker
processes ``--workers`` (default ``auto``: as many as the GPU's memory holds) started.

    python benchmarks/gpu_study.py --device cuda --trials 6                 # in memory, 1 worker
    python benchmarks/gpu_study.py --device cuda --trials 200 --storage sqlite:///gpu.db
"""

from __future__ import annotations

import argparse
import time

import nas_hpo
from nas_hpo.study import WORKER_ATTR


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", default="auto")
    p.add_argument("--show", type=int, default=8, help="trials to list")
    # (in memory by default: a GPU image may lack SQLAlchemy; the lifecycle is the same)
    p.add_argument("--storage", default=":memory:")
    args = p.parse_args(argv)
    workers = args.workers if args.workers == "auto" else int(args.workers)
    t0 = time.perf_counter()
    study = nas_hpo.run(
        {"space": {"name": "nb201"}, "strategy": {"name": "random"},
         "objective": {"name": "train", "device": args.device, "dataset": args.dataset,
                       "epochs": args.epochs}},
        n_trials=args.trials, seed=0, cost=["params", "flops", "latency"],
        storage=args.storage, study_name=f"gpu-study-{time.time_ns()}", workers=workers,
    )
    wall = time.perf_counter() - t0
    trials = sorted(study.trials, key=lambda t: t.number)
    print(f"{'trial':>5} {'state':9} {'val acc':>7} {'graph':>5} {'img/s':>8} "
          f"{'latency ms':>10} {'on':6} {'params':>8} {'MFLOPs':>7}")
    for t in trials[:args.show]:
        a = t.user_attrs
        value = f"{t.value:.3f}" if t.value is not None else "-"
        print(f"{t.number:5d} {t.state.name:9} {value:>7} {str(a.get('cuda_graph')):>5} "
              f"{a.get('images_per_second') or 0:8.0f} {a.get('latency_ms', float('nan')):10.3f} "
              f"{a.get('latency_device', '-'):6} {a.get('params', 0):8d} "
              f"{a.get('flops', 0) / 1e6:7.1f}")
    done = [t for t in trials if t.datetime_complete is not None and t.datetime_start is not None]
    states = {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "FAIL", "PRUNED")}
    processes = len({t.system_attrs.get(WORKER_ATTR) for t in trials}) or 1
    if done:
        span = (max(t.datetime_complete for t in done)
                - min(t.datetime_start for t in done)).total_seconds()
        print(f"{len(trials)} trials ({states}), nb201 on {args.dataset}, {args.epochs} epochs, "
              f"workers={args.workers} ({processes} process(es) recorded): "
              f"{len(done) / span:.2f} architectures/s from the first start to the last end "
              f"({span:.1f} s; {wall:.1f} s with start-up)")


if __name__ == "__main__":
    main()
