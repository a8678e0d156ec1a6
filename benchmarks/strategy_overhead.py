"""Per-trial overhead of nas-hpo's trial lifecycle and strategies against bare Optuna.

The objective costs nothing, so what is timed is sampling and bookkeeping. For each strategy
and study size, the same conditional space runs twice in this process:

- **bare Optuna**: ``study.optimize(lambda t: f(space.suggest(t)))`` with the same sampler;
- **nas-hpo**: ``nas_hpo.run(...)`` (trial seeds, architecture key and the other user
  attributes, resume bookkeeping);

in memory and on SQLite, ``--repeats`` times each, interleaved; it prints the medians in
milliseconds per trial and the ratio nas-hpo / bare. Both clocks run from the creation of the
sampler and the study (on SQLite: of the database file) to the end of the last trial; the
space is built before either. On SQLite, nas-hpo opens the file in write-ahead-log mode
(``nas_hpo.study.open_storage``), which makes every write cheaper; so bare Optuna runs twice there: on
the URL as Optuna opens it (``ratio``, what a user switching from bare Optuna sees) and on the
storage as nas-hpo opens it (``ratio same storage``, the cost of nas-hpo's bookkeeping alone).

    python benchmarks/strategy_overhead.py --sizes 100 1000 --strategies random tpe
    python benchmarks/strategy_overhead.py --sizes 5000 --storages memory
    python benchmarks/strategy_overhead.py --sizes 1000 --strategies gp smac --storages sqlite \
        --timed 10      # trials 991-1000: both sides resume the same 990-trial study
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import statistics
import tempfile
import time

import optuna

import nas_hpo
from nas_hpo import Categorical, GreaterThan, Integer, SearchSpace, strategies
from nas_hpo.study import open_storage, strategy_seed


def space() -> SearchSpace:
    params = [Integer("depth", 1, 6)]
    conditions = {}
    for k in range(1, 7):
        params += [Categorical(f"op_{k}", ["conv", "pool", "skip"]),
                   Categorical(f"w_{k}", [8, 16, 32, 64], ordered=True)]
        if k > 1:
            conditions[f"op_{k}"] = GreaterThan("depth", k - 1)
            conditions[f"w_{k}"] = GreaterThan("depth", k - 1)
    return SearchSpace(params, conditions)


def score(config: dict) -> float:
    return sum((config[f"op_{k}"] == "conv") + config[f"w_{k}"] / 64
               for k in range(1, config["depth"] + 1))


# Every SQLite file of a run goes under one folder, removed when the run ends.
_SCRATCH = tempfile.TemporaryDirectory(prefix="nas-hpo-overhead-")


def _folder() -> str:
    return tempfile.mkdtemp(dir=_SCRATCH.name)


def storage_url(kind: str, tag: str) -> str | None:
    if kind == "memory":
        return None
    return f"sqlite:///{_folder()}/{tag}.db"


def prefilled(done: int) -> str:
    """A SQLite file whose study "o" holds ``done`` finished trials of random configs."""
    path = f"{_folder()}/prefilled.db"
    s = space()
    study = optuna.create_study(direction="maximize", study_name="o",
                                sampler=optuna.samplers.RandomSampler(seed=0),
                                storage=f"sqlite:///{path}")
    study.optimize(lambda t: score(s.suggest(t)), n_trials=done)
    return path


def copy_of(path: str) -> str:
    target = f"{_folder()}/study.db"
    shutil.copyfile(path, target)
    return f"sqlite:///{target}"


def bare(strategy: str, n: int, storage: str | None, ours_storage: bool = False,
         resume: bool = False) -> float:
    """ms per trial of ``n`` trials; ``resume``: more trials of the study "o" in ``storage``."""
    s = space()
    seed = 0
    if resume:
        # The seed nas-hpo gives a resumed study's strategy (nas_hpo.study.strategy_seed of
        # its first trial), so that both sides propose the same trials: a model-based
        # sampler's time depends on them.
        done = len(optuna.load_study(study_name="o", storage=storage).trials)
        seed = strategy_seed(0, done)
    gc.collect()  # each run starts without the previous runs' garbage
    t0 = time.perf_counter()
    opened = open_storage(storage, heartbeat_s=0) if ours_storage and storage else storage
    sampler = strategies.get(strategy, strategies.Setting(s, seed, ("maximize",))).sampler
    if resume:
        study = optuna.load_study(study_name="o", storage=opened, sampler=sampler)
    else:
        study = optuna.create_study(direction="maximize", sampler=sampler, storage=opened)
    study.optimize(lambda t: score(s.suggest(t)), n_trials=n)
    return (time.perf_counter() - t0) / n * 1e3


def ours(strategy: str, n: int, storage: str | None, total: int | None = None) -> float:
    """ms per trial of ``n`` trials; ``total``: run the study "o" to that many trials."""
    s = space()
    gc.collect()
    t0 = time.perf_counter()
    nas_hpo.run({"study": {"cost": []}}, space=s, objective=score, strategy=strategy,
                n_trials=total or n, storage=storage or ":memory:", study_name="o")
    return (time.perf_counter() - t0) / n * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[100, 1000])
    p.add_argument("--strategies", nargs="+", default=["random", "tpe", "re"])
    p.add_argument("--storages", nargs="+", default=["memory", "sqlite"])
    p.add_argument("--repeats", type=int, default=3,
                   help="runs of each side, interleaved; the median is printed")
    p.add_argument("--timed", type=int, default=0,
                   help="time only the last TIMED trials of each size: both sides resume a "
                        "copy of one SQLite study that holds the others (random configs), "
                        "for samplers that take seconds per trial at 1,000+ trials")
    args = p.parse_args()
    if args.timed and args.storages != ["sqlite"]:
        p.error("--timed needs --storages sqlite")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"optuna {optuna.__version__}")
    print(f"{'strategy':12} {'storage':7} {'trials':>6} {'bare ms/trial':>14} "
          f"{'nas-hpo ms/trial':>16} {'ratio':>6} {'bare same storage':>17} "
          f"{'ratio same storage':>18}")
    for strategy in args.strategies:
        # Untimed: imports and first-call caches of both paths.
        bare(strategy, 10, None)
        ours(strategy, 10, None)
        for kind in args.storages:
            for n in args.sizes:
                runs: dict[str, list[float]] = {"b": [], "o": [], "s": []}
                base = prefilled(n - args.timed) if args.timed else None
                for _ in range(args.repeats):
                    if base is not None:
                        k = args.timed
                        runs["b"].append(bare(strategy, k, copy_of(base), resume=True))
                        runs["o"].append(ours(strategy, k, copy_of(base), total=n))
                        runs["s"].append(bare(strategy, k, copy_of(base), True, resume=True))
                        continue
                    runs["b"].append(bare(strategy, n, storage_url(kind, f"b{strategy}{n}")))
                    runs["o"].append(ours(strategy, n, storage_url(kind, f"o{strategy}{n}")))
                    if kind != "memory":
                        runs["s"].append(
                            bare(strategy, n, storage_url(kind, f"s{strategy}{n}"), True))
                b, o = statistics.median(runs["b"]), statistics.median(runs["o"])
                line = f"{strategy:12} {kind:7} {n:6} {b:14.2f} {o:16.2f} {o / b:6.2f}"
                if kind != "memory":
                    bs = statistics.median(runs["s"])
                    line += f" {bs:17.2f} {o / bs:18.2f}"
                print(line, flush=True)


if __name__ == "__main__":
    main()
