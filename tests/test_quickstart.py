"""The quickstart study, for real: what `make run` does, checked for the accuracy it promises."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest

import nas_hpo

QUICKSTART = Path(__file__).resolve().parents[1] / "studies" / "quickstart.toml"


def test_quickstart_file_is_valid():
    spec = nas_hpo.load_spec(QUICKSTART)
    assert (spec.space.name, spec.objective.name, spec.strategy.name) == (
        "resnet_blocks", "train", "tpe")
    assert spec.objective.options["dataset"] == "digits"


@pytest.mark.slow
def test_quickstart_reaches_good_accuracy_within_its_budget(storage):
    start = time.perf_counter()
    study = nas_hpo.run(QUICKSTART, storage=storage)
    elapsed = time.perf_counter() - start
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) >= 10, f"only {len(complete)} trials finished in {elapsed:.0f} s"
    assert study.best_value >= 0.95
    assert study.best_trial.user_attrs["test_accuracy"] >= 0.9
