"""What the ``ray`` backend costs over bare Ray Tune on the same trials, in one process.

Both sides run ``--trials`` trivial trials (a score of the config, no training) of the
``resnet_blocks`` space on one local Ray instance (started once, ``--cpus`` CPUs),
``--concurrent`` at a time, TPE drawing the configs:

- bare: ``tune.Tuner`` with ``OptunaSearch`` over the space's define-by-run function (the
  configs are the same valid configs), an in-memory Optuna study, the trainable reporting the
  score; with Ray Tune's default (a new worker process per trial) and with
  ``reuse_actors=True`` (what nas-hpo sets);
- nas-hpo: ``nas_hpo.run(..., backend="ray")`` on a SQLite study: every trial proposed, evaluated
  and recorded by the study layer (seed, architecture, attributes, the storage written by the
  driver), without cost measurement (``cost = []``: bare Tune measures none), and once with
  the default cost measurement (params, FLOPs, latency of each network) for reference.

Each side runs ``--repeats`` times, interleaved, from the creation of its tuner / the call of
``nas_hpo.run`` to the end of the sweep; the median counts. Prints the times, the ratio and the
hardware.

    python benchmarks/ray_overhead.py --trials 16 --concurrent 2 --repeats 3
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.toy_objectives

import optuna
import ray
from ray import tune
from ray.tune.search.optuna import OptunaSearch

import nas_hpo
from nas_hpo import spaces
from tests.toy_objectives import kernel_sum

SPACE = spaces.get("resnet_blocks")


def bare_trainable(config: dict) -> None:
    tune.report({"value": kernel_sum(config)})


def define_by_run(trial: optuna.trial.Trial) -> dict:
    # A module-level function: OptunaSearch checkpoints itself with plain pickle.
    return SPACE.suggest(trial)


def bare(trials: int, concurrent: int, folder: str, seed: int, reuse: bool) -> float:
    start = time.perf_counter()
    searcher = OptunaSearch(define_by_run, metric="value", mode="max",
                            sampler=optuna.samplers.TPESampler(seed=seed))
    tuner = tune.Tuner(
        tune.with_resources(bare_trainable, {"cpu": 1}),
        param_space={},
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=trials,
                                    max_concurrent_trials=concurrent, reuse_actors=reuse),
        run_config=tune.RunConfig(storage_path=folder, name=f"bare-{seed}-{reuse}", verbose=0),
    )
    results = tuner.fit()
    assert len(results) == trials and not results.errors
    return time.perf_counter() - start


def ours(trials: int, concurrent: int, folder: str, seed: int, cost: bool) -> float:
    storage = f"sqlite:///{folder}/ours-{seed}-{cost}.db"
    start = time.perf_counter()
    study = nas_hpo.run({"backend": {"name": "ray", "ray_dir": folder,
                                     "resources_per_trial": {"cpu": 1}}},
                        space="resnet_blocks", objective="tests.toy_objectives:kernel_sum",
                        strategy="tpe", n_trials=trials, max_concurrent_trials=concurrent,
                        storage=storage, study_name=f"ours-{seed}", seed=seed,
                        cost=None if cost else [])
    seconds = time.perf_counter() - start
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * trials
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("ray").setLevel(logging.ERROR)
    os.chdir(Path(__file__).resolve().parents[1])  # the workers import tests.toy_objectives
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.getcwd()}})
    times: dict[str, list[float]] = {"bare": [], "bare, reuse_actors": [], "nas-hpo": [],
                                     "nas-hpo with costs": []}
    with tempfile.TemporaryDirectory() as folder:
        for r in range(args.repeats):
            times["bare"].append(bare(args.trials, args.concurrent, folder, r, reuse=False))
            times["bare, reuse_actors"].append(bare(args.trials, args.concurrent, folder, r,
                                                    reuse=True))
            times["nas-hpo"].append(ours(args.trials, args.concurrent, folder, r, cost=False))
            times["nas-hpo with costs"].append(ours(args.trials, args.concurrent, folder, r,
                                                    cost=True))
            print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()),
                  flush=True)
    ray.shutdown()
    median = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:>20}: median {median[k]:.1f} s ({min(v):.1f}-{max(v):.1f} s) for "
              f"{args.trials} trials, {args.concurrent} at once")
    best = min(median["bare"], median["bare, reuse_actors"])
    print(f"nas-hpo / bare Ray Tune (its default): {median['nas-hpo'] / median['bare']:.2f}x; "
          f"/ bare Ray Tune reusing actors: {median['nas-hpo'] / best:.2f}x; "
          f"with cost measurement {median['nas-hpo with costs'] / best:.2f}x of the faster")
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Ray {ray.__version__}, Optuna {optuna.__version__}, Python {platform.python_version()}")


if __name__ == "__main__":
    main()
