"""Proposals kept off architectures the study already has: TPE through ``UnseenSampler``,
regularized evolution's children, reinforce's draws."""

from __future__ import annotations

from collections.abc import Callable

import optuna
import pytest

import nas_hpo
from nas_hpo import Categorical, SearchSpace
from nas_hpo.strategies._unseen import UNSEEN_ATTR, UnseenSampler
from tests.strategies.test_strategies import score, space

#: 27 architectures: a model-based sampler soon proposes the good ones again.
SMALL = SearchSpace([Categorical(f"op_{k}", ["conv", "pool", "skip"]) for k in range(3)])


def small_score(config: dict) -> float:
    return sum(v == "conv" for v in config.values()) + 0.1 * (config["op_0"] == "pool")


def repeats(study: optuna.Study, after: int = 0, on: SearchSpace = SMALL,
            key: Callable[[dict], str] | None = None) -> int:
    """Trials from number ``after`` on whose architecture (in space ``on``; or whose ``key``)
    an earlier trial has."""
    key = key or on.arch_key
    seen, n = set(), 0
    for t in study.trials:
        k = key(t.params)
        n += t.number >= after and k in seen
        seen.add(k)
    return n


@pytest.mark.parametrize("seed", [0, 1])
def test_tpe_proposes_each_architecture_once_after_its_start_up(seed):
    def run(unseen: bool) -> optuna.Study:
        return nas_hpo.run({"strategy": {"name": "tpe", "n_startup_trials": 5,
                                         "unseen": unseen}},
                           space=SMALL, objective=small_score, storage=":memory:",
                           n_trials=20, seed=seed, study_name="u")

    plain, ours = run(False), run(True)
    assert repeats(plain, after=5) >= 3  # what Optuna's TPE does on a small space
    assert repeats(ours, after=5) == 0
    assert isinstance(ours.sampler, UnseenSampler)
    # How each proposal was made new is on the record: the sampler asked again, or a
    # neighbour / random architecture after ten repeats in a row.
    hows = [t.system_attrs[UNSEEN_ATTR] for t in ours.trials if UNSEEN_ATTR in t.system_attrs]
    assert hows and all(how[1] in ("sampler", "mutation", "random") for how in hows)


def test_tpe_unseen_on_a_conditional_space_repeats_less_and_reproduces():
    def run(unseen: bool, name: str = "c") -> optuna.Study:
        return nas_hpo.run({"strategy": {"name": "tpe", "unseen": unseen}}, space=space(),
                           objective=score, storage=":memory:", n_trials=60, seed=3,
                           study_name=name)

    plain, ours = run(False), run(True)
    assert repeats(ours, after=10, on=space()) < repeats(plain, after=10, on=space())
    for t in ours.trials:
        space().validate(t.params)
    assert [t.params for t in run(True, "d").trials] == [t.params for t in ours.trials]


def test_evolution_children_are_new_architectures():
    def run(unseen: bool) -> optuna.Study:
        return nas_hpo.run({"strategy": {"name": "re", "population_size": 5, "sample_size": 3,
                                         "unseen": unseen}},
                           space=SMALL, objective=small_score, storage=":memory:",
                           n_trials=20, seed=0, study_name="e")

    plain, ours = run(False), run(True)
    assert repeats(plain) >= 3  # children equal to an architecture already evaluated
    assert repeats(ours) == 0
    assert max(t.value for t in ours.trials) == 3.0  # the best of the 27 among 20 new ones


def test_reinforce_draws_new_architectures_and_reproduces():
    def run(unseen: bool, name: str = "r") -> optuna.Study:
        return nas_hpo.run({"strategy": {"name": "reinforce", "learning_rate": 0.1,
                                         "unseen": unseen}},
                           space=SMALL, objective=small_score, storage=":memory:",
                           n_trials=24, seed=0, study_name=name)

    plain, ours = run(False), run(True)
    assert repeats(plain) >= 3  # a policy that learns draws its favourites again
    assert repeats(ours) == 0
    assert [t.params for t in run(True, "again").trials] == [t.params for t in ours.trials]


def test_retries_must_not_be_negative():
    with pytest.raises(ValueError, match="retries must be >= 0, got -1"):
        UnseenSampler(optuna.samplers.TPESampler(), SMALL, retries=-1)
