"""CPU time of one proposal at 100 finished trials: ``bananas`` and ``gp`` on the encoding
against regularized evolution and Optuna's TPE (with and without ``unseen``, and with the
benchmark's tuned settings), and local search's neighbour orders, in one process.

A study of ``--trials`` random ``nb201`` cells valued from the shipped NB201-digits table is
built in memory; then each strategy proposes the next config ``--repeats`` times (the same
study, a new trial number each time, so each proposal fits its model from scratch). Reports
the median and range of CPU seconds per proposal (``time.process_time``, one torch thread),
the ratio to TPE's, and the hardware.

    python benchmarks/proposal_time.py --trials 100 --repeats 10
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import optuna
import torch

from nas_hpo import Context, objectives, spaces, strategies


def study_with(n: int) -> optuna.Study:
    space = spaces.get("nb201")
    table = objectives.get("tabular", path="nb201_digits", metrics=["val_accuracy"],
                           fidelity="epoch")
    study = optuna.create_study(direction="maximize")
    rng = np.random.default_rng(0)
    for _ in range(n):
        config = space.sample(seed=rng)
        value = table(config, space=space, ctx=Context())
        study.add_trial(optuna.trial.create_trial(
            params=config, distributions={k: optuna.distributions.CategoricalDistribution(
                space[k].choices) for k in config}, value=float(value.values[0])))
    return study


def propose_seconds(name: str, options: dict, study: optuna.Study, repeats: int) -> list[float]:
    space = spaces.get("nb201")
    sampler = strategies.get(name, strategies.Setting(space, 0, ("maximize",)),
                             **options).sampler
    out = []
    for _ in range(repeats):
        trial = study.ask()
        frozen = study._storage.get_trial(trial._trial_id)
        start = time.process_time()
        if hasattr(sampler, "propose"):
            sampler.propose(study, frozen)
        else:  # Optuna's samplers decide as the trial asks
            study.sampler = sampler
            trial = optuna.trial.Trial(study, trial._trial_id)
            space.suggest(trial)
        out.append(time.process_time() - start)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    study = study_with(args.trials)
    sides = [("tpe", "tpe", {}), ("tpe (unseen=false)", "tpe", {"unseen": False}),
             ("tpe (tuned)", "tpe", {"n_startup_trials": 20, "n_ei_candidates": 100}),
             ("re", "re", {}), ("bananas (its)", "bananas", {}),
             ("bananas (ucb)", "bananas", {"acquisition": "ucb"}),
             ("gp (space)", "gp", {"encoding": "space"}),
             ("local_search (mean)", "local_search", {"order": "mean"}),
             ("local_search", "local_search", {})]
    medians = {}
    for label, name, options in sides:
        seconds = propose_seconds(name, options, study, args.repeats)
        medians[label] = statistics.median(seconds)
        print(f"{label:>19}: median {medians[label] * 1000:.1f} ms CPU per proposal "
              f"({min(seconds) * 1000:.1f}-{max(seconds) * 1000:.1f}), "
              f"{medians[label] / medians['tpe']:.1f}x tpe", flush=True)
    print(f"{args.trials} finished trials; hardware: {platform.processor() or platform.machine()}"
          f", {os.cpu_count()} CPUs, torch {torch.__version__} (1 thread), "
          f"Optuna {optuna.__version__}")


if __name__ == "__main__":
    main()
