"""The REINFORCE controller: it learns where the best configuration is, its policy is a
function of the study (resume reproduces it), and it walks conditional spaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nas_hpo
from nas_hpo import Categorical, Float, GreaterThan, Integer, SearchSpace
from nas_hpo.strategies._reinforce import ReinforceSampler, choices_of

SPACE = SearchSpace([Categorical(f"x{i}", ["a", "b", "c", "d"]) for i in range(4)])
_W = np.random.default_rng(3).uniform(0, 0.5, size=(4, 4))
_W[np.arange(4), [1, 3, 0, 2]] = 1.0  # the best choice of each parameter, by a clear margin
BEST = {f"x{i}": "abcd"[j] for i, j in enumerate([1, 3, 0, 2])}


def toy(config: dict) -> float:
    return float(sum(_W[i, "abcd".index(config[f"x{i}"])] for i in range(4)))


#: Zoph & Le's sampling (repeats allowed) at the step it takes to concentrate that way.
PAPER = {"unseen": False, "learning_rate": 0.01}


def policy_after(study, seed: int, **options) -> ReinforceSampler:
    sampler = ReinforceSampler(SPACE, seed=seed, **options)
    sampler.catch_up(study)
    return sampler


def p_best(sampler: ReinforceSampler) -> float:
    probs = sampler.probabilities(BEST)
    return float(np.prod([probs[k]["abcd".index(v)] for k, v in BEST.items()]))


@pytest.mark.slow
def test_the_policy_concentrates_on_the_best_configuration_of_a_table():
    found, sampled = [], []
    for seed in range(8):
        study = nas_hpo.run({"strategy": {"name": "reinforce", **PAPER}}, space=SPACE,
                            objective=toy, n_trials=100, seed=seed, storage=":memory:",
                            study_name="t")
        found.append(p_best(policy_after(study, seed, **PAPER)))
        sampled.append(sum(t.params == BEST for t in study.trials[-20:]))
    # Uniform would give 1/256 to the best; measured 0.955-0.987 over these seeds.
    assert min(found) > 0.9, found
    # It got there by sampling it: of the last 20 trials, measured 7-20 (median 18) were the
    # best config (a repeat is answered from the record, but it is the policy's sample).
    assert min(sampled) >= 5 and np.median(sampled) >= 15, sampled


@pytest.mark.slow
def test_by_default_it_finds_the_best_configuration_sooner_than_random_search():
    """With its defaults (new architectures only, Adam at 0.05) every seed evaluates the best
    of the 256 configurations, on average within the first 64 trials: random search without
    repeats would need 128.5 on average and find it within 64 with probability 1/4 per seed."""
    first = []
    for seed in range(8):
        study = nas_hpo.run({"strategy": {"name": "reinforce"}}, space=SPACE, objective=toy,
                            n_trials=100, seed=seed, storage=":memory:", study_name="d")
        assert len({SPACE.arch_key(t.params) for t in study.trials}) == 100  # no repeat
        first.append(next(t.number for t in study.trials if t.params == BEST))
    # Measured: 10-50 (mean 27).
    assert np.mean(first) < 45 and max(first) < 75, first


def test_a_policy_that_has_seen_nothing_is_uniform_ish_and_one_update_moves_it():
    sampler = ReinforceSampler(SPACE, seed=0)
    before = sampler.probabilities(BEST)
    for probs in before.values():
        assert max(probs) < 0.4  # four choices, small random init
    sampler.learn(dict(BEST), 1.0)  # the first sample only sets the baseline
    sampler.learn({k: "a" for k in BEST}, 0.0)  # worse than the baseline: made less likely
    after = sampler.probabilities(BEST)
    assert after["x0"][0] < before["x0"][0]


def test_a_resumed_study_continues_with_the_policy_it_had(storage):
    options = {"strategy": {"name": "reinforce"}}
    first = nas_hpo.run(options, space=SPACE, objective=toy, n_trials=15, seed=4,
                        storage=storage, study_name="s")
    first_params = [t.params for t in first.trials]
    ran = first.sampler  # the run's own sampler, as it ended
    ran.catch_up(first)
    # A process joining the study later gets another seed (its draws differ) ...
    joined = ReinforceSampler(SPACE, seed=12345)
    joined.catch_up(first)
    # ... but the same policy, rebuilt from the study's record.
    assert joined.probabilities() == ran.probabilities()
    for a, b in zip(joined.policy.parameters(), ran.policy.parameters(), strict=True):
        assert torch.equal(a, b)
    # The resumed run goes on learning from there, and a new study of that seed repeats the
    # first run.
    resumed = nas_hpo.run(options, space=SPACE, objective=toy, n_trials=30, seed=4,
                          storage=storage, study_name="s")
    assert len(resumed.trials) == 30
    again = nas_hpo.run(options, space=SPACE, objective=toy, n_trials=15, seed=4,
                        storage=storage, study_name="t")
    assert [t.params for t in again.trials] == first_params
    assert policy_after(again, 0).probabilities() == ran.probabilities()
    # Another study seed: another policy.
    other = nas_hpo.run(options, space=SPACE, objective=toy, n_trials=15, seed=5,
                        storage=storage, study_name="u")
    assert policy_after(other, 0).probabilities() != ran.probabilities()


def test_only_active_parameters_are_decided_and_grids_cover_numbers(storage):
    params = [Integer("depth", 1, 3), Float("lr", 1e-4, 1e-1, log=True),
              Integer("width", 8, 256, log=True)]
    params += [Categorical(f"op{k}", ["conv", "pool"]) for k in (1, 2, 3)]
    conditions = {f"op{k}": GreaterThan("depth", k - 1) for k in (2, 3)}
    space = SearchSpace(params, conditions)
    lr = choices_of(space["lr"])
    assert len(lr) == 16 and lr[0] == pytest.approx(1e-4) and lr[-1] == pytest.approx(1e-1)
    assert np.allclose(np.diff(np.log(lr)), np.log(1e3) / 15)  # log-spaced
    assert choices_of(space["depth"]) == [1, 2, 3]
    study = nas_hpo.run({"strategy": {"name": "reinforce"}}, space=space,
                        objective=lambda c: c["depth"] + (c["op1"] == "conv"),
                        n_trials=25, seed=0, storage=storage, study_name="c")
    for t in study.trials:
        space.validate(t.params)
        assert set(t.params) == {"depth", "lr", "width"} | {f"op{k}" for k in
                                                           range(1, t.params["depth"] + 1)}
    sampler = ReinforceSampler(space, seed=0)
    sampler.catch_up(study)
    # The walk along the most likely path decides only what that path activates.
    probs = sampler.probabilities({"depth": 1})
    assert "op2" not in probs and "op1" in probs


def test_with_the_supernet_objective_the_controller_searches_one_shared_supernet(storage,
                                                                                  tmp_path):
    # ENAS' pairing: every architecture the policy draws is scored on one trained supernet.
    study = nas_hpo.run({"space": {"name": "nb201", "C": 4, "N": 1},
                         "strategy": {"name": "reinforce"},
                         "objective": {"name": "supernet", "epochs": 1, "bn_batches": 1,
                                       "cache_dir": str(tmp_path)}},
                        n_trials=6, seed=0, storage=storage, study_name="enas")
    assert len(study.trials) == 6
    assert all(0 <= t.value <= 1 for t in study.trials)
    assert len({t.user_attrs["supernet"]["file"] for t in study.trials}) == 1
    assert len(list(tmp_path.glob("*.pt"))) == 1
