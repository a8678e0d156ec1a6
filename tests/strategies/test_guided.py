"""Predictor-guided search (``bananas``, ``gp`` on the space's encoding) and zero-cost
filtered mutations: the predictor's uncertainty is real, the search beats random on a table
with a known optimum (a statistical test over a fixed seed set), multi-fidelity rows (local
search's walk: ``test_local_search.py``)."""

from __future__ import annotations

import itertools

import numpy as np
import optuna
import pytest
from scipy.stats import mannwhitneyu

import nas_hpo
from nas_hpo import Categorical, GreaterThan, Integer, SearchSpace
from nas_hpo.strategies._guided import PredictorGuidedSampler, predicted, role_of
from nas_hpo.strategies._predictor import EnsemblePredictor, GPPredictor
from tests.toy_objectives import letters_score, letters_space


@pytest.mark.parametrize("make", [lambda: EnsemblePredictor(seed=0), lambda: GPPredictor()],
                         ids=["ensemble", "gp"])
def test_the_predictor_is_uncertain_where_it_has_no_data_and_sure_where_it_has(make):
    rng = np.random.default_rng(0)
    near = rng.uniform(0.0, 0.3, size=(60, 4))  # the data: one corner of the cube
    far = rng.uniform(0.7, 1.0, size=(60, 4))
    y = np.sin(3 * near).sum(axis=1)
    model = make().fit(near, y)
    mean_near, std_near = model.predict(near)
    _, std_far = model.predict(far)
    # Where it has data the members agree, and with the data.
    assert np.abs(mean_near - y).mean() < 0.1 * y.std()
    assert std_near.mean() < 0.2 * y.std()
    # Away from it they disagree: several times the spread they show on the data.
    assert std_far.mean() > 3 * std_near.mean(), (std_far.mean(), std_near.mean())


def test_ensemble_members_are_different_networks_that_agree_on_the_data():
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(40, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    model = EnsemblePredictor(members=4, seed=3).fit(X, y)
    members = model.predict_members(X)
    assert members.shape == (4, 40)
    assert np.abs(members - y).mean() < 0.1 * y.std()
    # Same seed, same networks; another seed, other networks.
    again = EnsemblePredictor(members=4, seed=3).fit(X, y).predict_members(X)
    other = EnsemblePredictor(members=4, seed=4).fit(X, y).predict_members(X)
    assert np.array_equal(members, again) and not np.array_equal(members, other)


# ---------------------------------------------------------------------- a table with an optimum

TABLE_SPACE = SearchSpace([Categorical(f"x{i}", ["a", "b", "c", "d"]) for i in range(5)])
_WEIGHTS = np.random.default_rng(7).normal(size=(5, 4))
TABLE = {
    values: float(sum(_WEIGHTS[i, "abcd".index(v)] for i, v in enumerate(values))
                  + 0.5 * (values[0] == values[1]))
    for values in itertools.product("abcd", repeat=5)
}
OPTIMUM = max(TABLE, key=TABLE.get)


def table(config: dict) -> float:
    return TABLE[tuple(config[f"x{i}"] for i in range(5))]


def evaluations_to_optimum(strategy: dict, seed: int, budget: int) -> int:
    study = nas_hpo.run({"strategy": strategy}, space=TABLE_SPACE, objective=table,
                        n_trials=budget, seed=seed, storage=":memory:", study_name="t")
    for k, t in enumerate(study.trials, 1):
        if tuple(t.params[f"x{i}"] for i in range(5)) == OPTIMUM:
            return k
    return budget + 1  # not found within the budget


@pytest.mark.slow
@pytest.mark.parametrize("strategy", [
    {"name": "bananas", "n_candidates": 40, "epochs": 100},
    {"name": "gp", "encoding": "space"},
    {"name": "smac", "facade": "blackbox"},
], ids=["bananas", "gp", "smac_gp"])
def test_guided_search_finds_a_known_optimum_in_fewer_evaluations_than_random(strategy):
    """1,024 configurations, one best: random search needs 512 evaluations on average and
    rarely finds it in 30; over the same 6 seeds the guided search needs fewer (one-sided
    Mann-Whitney U at 1%; measured: bananas 14-26 evaluations over seeds 0-7, gp 12-17,
    SMAC's GP 18-26 and once not within 30 over seeds 0-5, SMAC's random forest (not tested
    here) 21, 27 and four times not within 30 (one-hot: once within 30, at 27), random found
    it once in 60)."""
    seeds, budget = range(6), 30
    ours = [evaluations_to_optimum(strategy, s, budget) for s in seeds]
    rand = [evaluations_to_optimum({"name": "random"}, s, budget) for s in seeds]
    test = mannwhitneyu(ours, rand, alternative="less")
    assert test.pvalue < 0.01, (ours, rand, test.pvalue)


def test_bananas_records_how_each_config_was_chosen_and_never_repeats_one(storage):
    study = nas_hpo.run({"strategy": {"name": "bananas", "n_startup_trials": 5,
                                      "n_candidates": 30, "epochs": 50}},
                        space=TABLE_SPACE, objective=table, n_trials=25, seed=0,
                        storage=storage, study_name="b")
    roles = [role_of(t) for t in study.trials]
    assert roles[:5] == ["random"] * 5 and set(roles[5:]) == {"model"}
    for t in study.trials[5:]:
        mean, std = predicted(t)
        assert np.isfinite(mean) and std >= 0
    keys = [TABLE_SPACE.arch_key(t.params) for t in study.trials]
    assert len(set(keys)) == len(keys)


def _curve(config: dict, ctx) -> float:
    final = table(config)
    for step in range(1, 5):
        ctx.report(final * step / 4, step)
    return final


def test_the_predictor_sees_the_fidelity_of_trials_a_pruner_stopped(storage):
    study = nas_hpo.run({"strategy": {"name": "asha", "sampler": "bananas",
                                      "min_resource": 1, "reduction_factor": 2}},
                        space=TABLE_SPACE, objective=_curve, n_trials=24, seed=0,
                        storage=storage, study_name="mf")
    states = {t.state for t in study.trials}
    assert optuna.trial.TrialState.PRUNED in states
    sampler = PredictorGuidedSampler(TABLE_SPACE, seed=0)
    configs, X, y, fidelity = sampler.training_data(study)
    assert len(configs) == len(study.trials) and fidelity is not None
    assert X.shape == (len(configs), len(TABLE_SPACE.encoding) + 1)
    assert np.array_equal(X[:, -1], fidelity)
    for t, f, value in zip(study.trials, fidelity, y, strict=True):
        last = max(t.intermediate_values)
        assert f == last / 4
        assert value == (t.value if t.value is not None else t.intermediate_values[last])
    # Trials that all ran to the end: no fidelity column.
    full = nas_hpo.run(space=TABLE_SPACE, objective=_curve, strategy="random", n_trials=5,
                       storage=storage, study_name="full")
    _, X, _, fidelity = sampler.training_data(full)
    assert fidelity is None and X.shape[1] == len(TABLE_SPACE.encoding)


def test_gp_on_a_conditional_space_models_the_encoding_and_proposes_valid_configs(storage):
    space = SearchSpace([Integer("depth", 1, 3)]
                        + [Categorical(f"op_{k}", ["a", "b", "c"]) for k in range(1, 4)],
                        {f"op_{k}": GreaterThan("depth", k - 1) for k in range(2, 4)})

    def score(config: dict) -> float:
        return sum(config[f"op_{k}"] == "a" for k in range(1, config["depth"] + 1))

    study = nas_hpo.run({"strategy": {"name": "gp", "n_startup_trials": 4}}, space=space,
                        objective=score, n_trials=16, seed=0, storage=storage,
                        study_name="gp")
    assert isinstance(study.sampler, PredictorGuidedSampler)
    assert [role_of(t) for t in study.trials][4:] == ["model"] * 12
    for t in study.trials:
        space.validate(t.params)
    assert study.best_value == 3  # depth 3, every op "a": found within 16 of 21 configs
    optuna_gp = nas_hpo.run({"strategy": {"name": "gp", "encoding": "intersection",
                                          "n_startup_trials": 2}}, space=space,
                            objective=score, n_trials=3, storage=storage, study_name="og")
    assert isinstance(optuna_gp.sampler, optuna.samplers.GPSampler)


# ---------------------------------------------------------------------- zero-cost filtered mutations


def test_evolution_keeps_the_mutation_a_proxy_scores_best(storage):
    from nas_hpo.strategies._evolution import RegularizedEvolutionSampler

    space = letters_space()

    def proxy(config: dict) -> float:  # a stand-in proxy: how many "a"s
        return float(sum(v == "a" for v in config.values()))

    def run(k: int) -> list[optuna.trial.FrozenTrial]:
        sampler = RegularizedEvolutionSampler(space, population_size=5, sample_size=2, seed=0,
                                              zero_cost_filter=k, proxy=proxy if k else None)
        study = optuna.create_study(sampler=sampler, direction="maximize")
        study.optimize(lambda t: letters_score(space.suggest(t)), n_trials=40)
        return study.trials[5:]

    filtered, plain = run(8), run(0)
    for t in filtered:
        score, k = t.system_attrs["nas_hpo:re:zero_cost"]
        assert k == 8 and score == proxy(t.params)
    assert all("nas_hpo:re:zero_cost" not in t.system_attrs for t in plain)
    # Keeping the best of 8 mutations by the proxy raises the proxy of the children.
    assert np.mean([proxy(t.params) for t in filtered]) > np.mean(
        [proxy(t.params) for t in plain]) + 0.5


def test_zero_cost_filter_needs_a_known_proxy_and_a_space_that_builds(storage):
    with pytest.raises(nas_hpo.SpecError, match="unknown proxy 'nope'"):
        nas_hpo.run({"strategy": {"name": "re", "zero_cost_filter": 3, "zero_cost_by": "nope"}},
                    space="nb201", objective=lambda c: 1.0, n_trials=1, storage=storage)
    with pytest.raises(nas_hpo.SpecError, match="builds no network"):
        nas_hpo.run({"strategy": {"name": "re", "zero_cost_filter": 3}}, space=letters_space(),
                    objective=letters_score, n_trials=1, storage=storage)
    study = nas_hpo.run({"strategy": {"name": "re", "population_size": 3, "sample_size": 2,
                                      "zero_cost_filter": 3, "zero_cost_by": "params"}},
                        space="nb201", objective=lambda c: float(c["edge_3_0"] == "none"),
                        n_trials=6, storage=storage, study_name="zc")
    scored = [t.system_attrs["nas_hpo:re:zero_cost"] for t in study.trials[3:]]
    assert all(k == 3 and s > 0 for s, k in scored)


def test_zero_cost_features_come_from_the_study_where_stored_and_are_scored_once_elsewhere():
    calls: list[str] = []

    def proxies(config, names):
        calls.append(TABLE_SPACE.arch_key(config))
        return {"fake": float(sum(v == "a" for v in config.values())) * 1000}

    sampler = PredictorGuidedSampler(TABLE_SPACE, n_startup_trials=4, n_candidates=10,
                                     zero_cost=("fake",), proxies=proxies, seed=0,
                                     predictor_options={"epochs": 20})
    study = optuna.create_study(sampler=sampler, direction="maximize")

    def objective(trial):
        config = TABLE_SPACE.suggest(trial)
        if trial.number % 2:  # half the trials store their score, as also_score does
            trial.set_user_attr("fake", -1.0)
        return table(config)

    study.optimize(objective, n_trials=10)
    configs, X, _, _ = sampler.training_data(study)
    column = X[:, len(TABLE_SPACE.encoding)]
    for t, value in zip(study.trials, column, strict=True):
        raw = -1.0 if t.number % 2 else sum(v == "a" for v in t.params.values()) * 1000.0
        assert value == pytest.approx(np.sign(raw) * np.log1p(abs(raw)))
    # Each architecture was scored at most once (a candidate keeps its score once evaluated).
    assert len(calls) == len(set(calls)) and len(calls) > 10
    with pytest.raises(ValueError, match="space that builds networks"):
        PredictorGuidedSampler(TABLE_SPACE, zero_cost=("fake",))
