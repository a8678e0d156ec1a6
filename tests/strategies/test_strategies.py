"""Contract tests over every registered strategy, and regularized evolution's inheritance."""

from __future__ import annotations

import optuna
import pytest

import nas_hpo
from nas_hpo import Categorical, GreaterThan, Integer, SearchSpace, SpecError, strategies
from nas_hpo.strategies._evolution import parent_of

NAMES = strategies.names()


def space() -> SearchSpace:
    params = [Integer("depth", 1, 4)] + [
        p
        for k in range(1, 5)
        for p in (Categorical(f"op_{k}", ["conv", "pool", "skip"]),
                  Categorical(f"w_{k}", [8, 16, 32], ordered=True))
    ]
    conditions = {}
    for k in range(2, 5):
        conditions[f"op_{k}"] = GreaterThan("depth", k - 1)
        conditions[f"w_{k}"] = GreaterThan("depth", k - 1)
    return SearchSpace(params, conditions)


def score(config: dict) -> float:
    return sum((config[f"op_{k}"] == "conv") + config[f"w_{k}"] / 32
               for k in range(1, config["depth"] + 1))


def curve(config: dict, ctx) -> float:
    # An intermediate value per "epoch", so pruners have something to act on.
    final = score(config)
    for step in range(1, 5):
        ctx.report(final * step / 4, step)
    return final


def run(name: str, storage: str, study_name: str, n_trials: int, seed: int = 0):
    return nas_hpo.run(space=space(), objective=curve, strategy=name, n_trials=n_trials,
                       storage=storage, study_name=study_name, seed=seed)


@pytest.mark.parametrize("name", NAMES)
def test_every_strategy_proposes_valid_configs_resumes_and_reproduces(name, storage):
    s = space()
    study = run(name, storage, "a", 12)
    first = [t.params for t in study.trials]
    assert len(first) == 12
    for t in study.trials:
        assert t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        s.validate(t.params)
    resumed = run(name, storage, "a", 16)
    assert len(resumed.trials) == 16
    again = run(name, storage, "b", 12)
    assert [t.params for t in again.trials] == first


def test_pruners_stop_trials_with_their_sampler(storage):
    study = nas_hpo.run(space=space(), objective=curve, storage=storage, study_name="p",
                        n_trials=30, strategy="median")
    assert any(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    assert isinstance(study.pruner, optuna.pruners.MedianPruner)
    assert isinstance(study.sampler, optuna.samplers.TPESampler)


def test_regularized_evolution_children_inherit_from_their_parent(storage):
    s = space()
    study = nas_hpo.run({"strategy": {"name": "re", "population_size": 6, "sample_size": 3}},
                        space=s, objective=score, storage=storage, study_name="re",
                        n_trials=40)
    by_number = {t.number: t for t in study.trials}
    children = [t for t in study.trials if parent_of(t) is not None]
    assert len(children) == 40 - 6
    for child in children:
        parent = by_number[parent_of(child)].params
        changed = [k for k in parent if k in child.params and parent[k] != child.params[k]]
        # One parameter mutated; everything both have is inherited; depth changes add or drop
        # only the layers it activates / deactivates.
        assert len(changed) == 1, (parent, child.params)
        if changed != ["depth"]:
            assert set(child.params) == set(parent)
    # Evolution climbs: the last children score better than the random first population.
    first = [t.value for t in study.trials[:6]]
    assert max(t.value for t in study.trials) > max(first)


@pytest.mark.parametrize(
    ("strategy", "directions", "message"),
    [
        ({"name": "re"}, ["maximize", "minimize"], "re optimizes one objective"),
        ({"name": "hyperband", "sampler": "asha"}, None, "'asha' is a pruner"),
        ({"name": "re", "sample_size": 50}, None, "sample_size"),
    ],
)
def test_strategies_that_cannot_run_are_refused_before_any_trial(
    storage, strategy, directions, message
):
    study_section = {"directions": directions} if directions else {}
    with pytest.raises(SpecError, match=message):
        nas_hpo.run({"strategy": strategy, "study": study_section}, space=space(),
                    objective=lambda c: (1.0, 2.0) if directions else 1.0, storage=storage,
                    study_name="x", n_trials=1)
    assert optuna.get_all_study_names(storage) == []
