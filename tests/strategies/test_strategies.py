"""Contract tests over every registered strategy, and regularized evolution's inheritance."""

from __future__ import annotations

import math

import optuna
import pytest

import nas_hpo
from nas_hpo import Categorical, GreaterThan, Integer, SearchSpace, SpecError, strategies
from nas_hpo.strategies._evolution import parent_of
from nas_hpo.strategies._extrapolation import ExtrapolationPruner

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


MULTI_OBJECTIVE_ONLY = {"nsga3"}
NEEDS_FIDELITY = {"smac_hyperband"}


def two(config: dict) -> tuple[float, float]:
    return score(config), config["depth"]


#: Strategies that search a supernet (differentiable one-shot search): run on a small nb201.
ONE_SHOT = {n for n in NAMES if strategies.REGISTRY.meta(n).get("supernet")}
SMALL_NB201 = {"name": "nb201", "C": 4, "N": 1}


def convs(config: dict) -> float:
    return sum(v.startswith("nor_conv") for v in config.values()) / 6


def run(name: str, storage: str, study_name: str, n_trials: int, seed: int = 0):
    if name in ONE_SHOT:
        options = strategies.REGISTRY.meta(name).get("test_options", {})
        return nas_hpo.run({"space": SMALL_NB201, "strategy": {"name": name, **options}},
                           objective=convs, n_trials=n_trials, storage=storage,
                           study_name=study_name, seed=seed)
    if name in MULTI_OBJECTIVE_ONLY:
        return nas_hpo.run({"study": {"directions": ["maximize", "minimize"]}}, space=space(),
                           objective=two, strategy=name, n_trials=n_trials, storage=storage,
                           study_name=study_name, seed=seed)
    objective = EpochsObjective() if name in NEEDS_FIDELITY else curve
    return nas_hpo.run(space=space(), objective=objective, strategy=name, n_trials=n_trials,
                       storage=storage, study_name=study_name, seed=seed)


@pytest.mark.parametrize("name", NAMES)
def test_every_strategy_proposes_valid_configs_resumes_and_reproduces(name, storage):
    s = nas_hpo.spaces.get("nb201", C=4, N=1) if name in ONE_SHOT else space()
    study = run(name, storage, "a", 12)
    first = [t.params for t in study.trials]
    # A one-shot search records its epochs as trials besides the 12 its objective evaluates.
    assert len(evaluated(study)) == 12
    for t in study.trials:
        assert t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        s.validate(t.params)
    resumed = run(name, storage, "a", 16)
    assert len(evaluated(resumed)) == 16
    assert len(resumed.trials) - len(evaluated(resumed)) == len(first) - 12  # not again
    again = run(name, storage, "b", 12)
    assert [t.params for t in again.trials] == first


def evaluated(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if "nas_hpo:oneshot:epoch" not in t.system_attrs]


def test_pruners_stop_trials_with_their_sampler(storage):
    study = nas_hpo.run(space=space(), objective=curve, storage=storage, study_name="p",
                        n_trials=30, strategy="median")
    assert any(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    assert isinstance(study.pruner, optuna.pruners.MedianPruner)
    assert isinstance(study.sampler.inner, optuna.samplers.TPESampler)  # new proposals only


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
        ({"name": "nsga3"}, None, "nsga3 needs two or more objectives"),
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


def chain_two_objectives(config: dict) -> tuple[float, float]:
    # accuracy-like (more conv layers, wider) against cost-like (total width)
    n = config["n_layers"]
    conv = sum(config[f"layer{k}_type"] != "mlp" for k in range(1, n + 1))
    width = sum(config[f"layer{k}_width"] for k in range(1, n + 1))
    return conv + width / 128, width


@pytest.mark.parametrize("which", ["nsga2", "nsga3"])
def test_nsga_offspring_on_chain_keep_their_parents_layer_settings(storage, which):
    from nas_hpo import spaces
    from nas_hpo.strategies._nsga import parents_of

    s = spaces.get("chain")
    study = nas_hpo.run(
        {"strategy": {"name": which, "population_size": 8, "mutation_prob": 0.3},
         "study": {"directions": ["maximize", "minimize"], "cost": []}},
        space=s, objective=chain_two_objectives, storage=storage, study_name=which,
        n_trials=40,
    )
    by_number = {t.number: t for t in study.trials}
    children = [t for t in study.trials if parents_of(t)]
    assert len(children) >= 10  # the first generation (and forbidden draws) have none
    inherited_layer_genes = 0
    for child in children:
        s.validate(child.params)
        a, b = (by_number[n].params for n in parents_of(child))
        foreign = [k for k, v in child.params.items()
                   if (k in a or k in b) and v not in (a.get(k), b.get(k))]
        assert len(foreign) <= 1, (a, b, child.params)  # at most the one mutated gene
        inherited_layer_genes += sum(
            1 for k in child.params if k.startswith("layer") and k[5] not in "12"
            and (k in a or k in b)
        )
    # Deep layers' settings (layer 3 and beyond, which not every net has) are inherited.
    assert inherited_layer_genes > 0


def test_nsga_constraints_reach_optuna(storage):
    study = nas_hpo.run(
        {"strategy": {"name": "nsga2", "population_size": 4, "constraints": {"score": 1.0}},
         "study": {"directions": ["maximize", "minimize"]}},
        space=space(), objective=lambda c, ctx: (ctx.set_attr("score", score(c)),
                                                 (score(c), c["depth"]))[1],
        storage=storage, study_name="c", n_trials=6,
    )
    for t in study.trials:
        # The trial's Optuna constraint (set_constraint); <= 0 is feasible.
        assert t.constraints == {"score": pytest.approx(score(t.params) - 1.0)}


def test_local_search_walks_to_better_neighbours(storage):
    s = space()
    study = nas_hpo.run(space=s, objective=score, strategy="local_search", storage=storage,
                        study_name="ls", n_trials=60)
    roles = [t.system_attrs["nas_hpo:ls:role"] for t in study.trials]
    assert roles[0] == "start" and roles.count("neighbor") > 20
    keys = [s.arch_key(t.params) for t in study.trials]
    assert len(set(keys)) == len(keys)  # nothing evaluated twice
    # Each neighbour is one step from some earlier trial.
    for i, t in enumerate(study.trials):
        if roles[i] == "neighbor":
            assert any(s.arch_key(t.params) in {s.arch_key(n) for n in s.neighbors(u.params)}
                       for u in study.trials[:i])
    # The maximum (depth 4, all conv at width 32 → 8.0) is reached by climbing.
    assert max(t.value for t in study.trials) > max(t.value for t in study.trials[:1])


def test_smac_is_told_every_result_and_replays_a_resumed_study(storage):
    study = nas_hpo.run(space=space(), objective=score, strategy="smac", storage=storage,
                        study_name="smac", n_trials=14)
    history = study.sampler._smac.runhistory
    told = [history.get_cost(c) for c in history.get_configs()]
    assert sorted(told) == sorted(-t.value for t in study.trials)  # maximize → cost = -value
    resumed = nas_hpo.run(space=space(), objective=score, strategy="smac", storage=storage,
                          study_name="smac", n_trials=16)
    assert len(resumed.sampler._smac.runhistory) >= 16  # 14 replayed + 2 new


def test_smacs_black_box_facade_models_a_conditional_space_with_a_gaussian_process():
    from smac.model.gaussian_process import AbstractGaussianProcess

    study = nas_hpo.run({"strategy": {"name": "smac", "facade": "blackbox", "n_initial": 4}},
                        space=space(), objective=score, n_trials=12, storage=":memory:")
    assert isinstance(study.sampler._smac._model, AbstractGaussianProcess)
    assert len(study.sampler._smac.runhistory) == 12
    for t in study.trials:
        space().validate(t.params)  # inactive layers left out, nothing forbidden


def test_smac_output_folder_lives_as_long_as_its_sampler():
    import gc
    import pathlib

    study = nas_hpo.run(space=space(), objective=score, strategy="smac", n_trials=11,
                        storage=":memory:")
    written = pathlib.Path(study.sampler._smac.scenario.output_directory)
    root = next(p for p in written.parents if p.name.startswith("nas-hpo-smac-"))
    assert any(written.rglob("*.json"))  # SMAC did write there
    del study
    gc.collect()
    assert not root.exists()


_REPLAY = """
import sys
sys.path.insert(0, {here!r})
import nas_hpo
from test_strategies import EpochsObjective, score, space

name = sys.argv[1]
objective = EpochsObjective() if name == "smac_hyperband" else score
study = nas_hpo.run(space=space(), objective=objective, strategy=name, n_trials=16, seed=3,
                    storage="sqlite:///" + sys.argv[2], study_name="s")
print([(sorted(t.params.items()), t.value) for t in study.trials])
"""


@pytest.mark.parametrize("name", ["smac", "smac_hyperband"])
def test_a_seeded_smac_study_repeats_in_another_process(tmp_path, name):
    """Python salts string hashes per process; SMAC orders its local-search start points by a
    set of configurations, so before ``_order_start_points`` the same seed proposed other
    configurations under another PYTHONHASHSEED once the model took over (trial 11 on)."""
    import os
    import pathlib
    import subprocess
    import sys

    script = tmp_path / "replay.py"
    script.write_text(_REPLAY.format(here=str(pathlib.Path(__file__).parent)))
    runs = []
    for hash_seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, str(script), name, str(tmp_path / f"{hash_seed}.db")],
            env={**os.environ, "PYTHONHASHSEED": hash_seed}, capture_output=True, text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        runs.append(out.stdout.strip().splitlines()[-1])
    assert runs[0] == runs[1]


class EpochsObjective(nas_hpo.objectives.Objective):
    """A synthetic objective with an ``epochs`` fidelity: more epochs, closer to the score."""

    fidelities = ("epochs",)

    def __call__(self, config, *, space, ctx):
        epochs = ctx.fidelity.get("epochs", 9)
        return nas_hpo.objectives.Result((score(config) * epochs / 9,), {"seen": epochs})


def test_smac_hyperband_runs_each_config_budget_pair_as_a_trial(storage):
    study = nas_hpo.run(
        {"strategy": {"name": "smac_hyperband", "min_budget": 1, "max_budget": 9}},
        space=space(), objective=EpochsObjective(), storage=storage, study_name="mf",
        n_trials=24,
    )
    budgets = [t.user_attrs["budget"]["epochs"] for t in study.trials]
    assert set(budgets) <= {1, 3, 9} and {1, 3} <= set(budgets)
    assert budgets.count(1) > budgets.count(9)  # Hyperband: many cheap runs, few full ones
    for t in study.trials:
        assert t.user_attrs["seen"] == t.user_attrs["budget"]["epochs"]  # the objective got it
        space().validate(t.params)


def test_smac_hyperband_needs_an_objective_with_that_fidelity(storage):
    with pytest.raises(SpecError, match="needs an objective with the fidelity 'epochs'"):
        nas_hpo.run(space=space(), objective=score, strategy="smac_hyperband",
                    storage=storage, study_name="x", n_trials=1)


@pytest.mark.parametrize("name", ["smac", "local_search"])
def test_model_based_strategies_beat_random_search(storage, name):
    """Median best score over 3 seeds after 40 trials: the strategy must beat random search by
    at least 0.25 (one layer's width step) on the conditional toy objective (maximum 8)."""
    import statistics

    def best(strategy: str, seed: int) -> float:
        options = {"population_size": 10, "sample_size": 3} if strategy == "re" else {}
        study = nas_hpo.run({"strategy": {"name": strategy, **options}}, space=space(),
                            objective=score, storage=storage, n_trials=40, seed=seed,
                            study_name=f"{strategy}-{seed}")
        return study.best_value

    ours = statistics.median(best(name, s) for s in range(3))
    random_search = statistics.median(best("random", s) for s in range(3))
    assert ours >= random_search + 0.25, (ours, random_search)


@pytest.mark.parametrize("name", ["tpe", "re"])
def test_tpe_and_evolution_beat_random_search_given_80_trials(name):
    """Median best score over 5 seeds after 80 trials (10 of them TPE's random start-up, or
    RE's first population of 20): at least 0.5 (two width steps) above random search on the
    conditional toy objective (maximum 8). At 40 trials neither is clearly ahead yet (tpe 6.5,
    re 5.75 against random's 6.0): both need their start-up trials to pay off."""
    import statistics

    def best(strategy: str, seed: int) -> float:
        study = nas_hpo.run(space=space(), objective=score, strategy=strategy,
                            storage=":memory:", n_trials=80, seed=seed, study_name="b")
        return study.best_value

    ours = statistics.median(best(name, s) for s in range(5))
    random_search = statistics.median(best("random", s) for s in range(5))
    assert ours >= random_search + 0.5, (ours, random_search)


def saturating(config: dict, ctx) -> float:
    """An accuracy-like curve over 12 epochs rising to score / 8 (at most 1)."""
    final = score(config) / 8
    value = 0.0
    for step in range(1, 13):
        value = final * (1 - math.exp(-0.35 * step))
        ctx.report(value, step)
    return value


def test_lce_prunes_only_trials_whose_curve_ends_below_the_best(storage):
    """On curves the families fit, a pruned trial's true final value is below the best value
    finished when it was pruned; some trials are pruned, after at least min_steps points."""
    study = nas_hpo.run({"strategy": {"name": "lce", "sampler": "random", "margin": 0.01}},
                        space=space(), objective=saturating, storage=storage,
                        study_name="lce", n_trials=30, seed=1)
    assert isinstance(study.pruner, ExtrapolationPruner)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned
    for t in pruned:
        assert len(t.intermediate_values) >= 5
        best_then = max(u.value for u in study.trials
                        if u.state == optuna.trial.TrialState.COMPLETE
                        and u.datetime_complete < t.datetime_complete)
        true_final = score(t.params) / 8 * (1 - math.exp(-0.35 * 12))
        assert true_final < best_then
        assert t.user_attrs["lce_predicted"] + 0.01 < best_then


def test_lce_needs_one_maximized_objective_and_sane_options(storage):
    with pytest.raises(SpecError, match="lce extrapolates rising accuracy-like curves"):
        nas_hpo.run({"strategy": {"name": "lce"}, "study": {"directions": ["minimize"]}},
                    space=space(), objective=score, storage=storage, study_name="x",
                    n_trials=1)
    with pytest.raises(SpecError, match="min_steps must be >= 5"):
        nas_hpo.run({"strategy": {"name": "lce", "min_steps": 3}}, space=space(),
                    objective=score, storage=storage, study_name="x", n_trials=1)
