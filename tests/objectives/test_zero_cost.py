"""The ``zero_cost`` objective: proxies as a study's values, with the population ``vote``."""

from __future__ import annotations

import pytest

import nas_hpo
from nas_hpo import proxies as zc
from nas_hpo import spaces
from nas_hpo.objectives import Context


def test_zero_cost_objective_in_a_study_with_vote():
    study = nas_hpo.run({"space": {"name": "nb201", "C": 4, "N": 1},
                         "objective": {"name": "zero_cost", "proxy": ["synflow", "vote"],
                                       "batch_size": 32},
                         "study": {"cost": ["params"]}},
                        strategy="random", n_trials=4, storage=":memory:")
    trials = study.trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    t = trials[-1]
    assert t.values[0] == t.user_attrs["zc_synflow"]
    assert {"zc_vote", "zc_nwot", "zc_jacob_cov", "zc_snip", "zc_time_s", "zc_worst",
            "zc_data"} <= set(t.user_attrs)
    rows = [{m: s.user_attrs[f"zc_{m}"] for m in zc.VOTE_DEFAULT} for s in trials]
    assert trials[0].values[1] == 0.5  # ranked among itself only
    assert t.values[1] == pytest.approx(zc.vote(rows)[-1])  # among all four
    with pytest.raises(nas_hpo.SpecError, match="unknown zero-cost proxy 'zenn'"):
        nas_hpo.run({"space": {"name": "nb201"}, "objective": {"name": "zero_cost",
                                                            "proxy": "zenn"}}, n_trials=1)


def test_objective_options_are_checked_and_scores_stored():
    from nas_hpo import objectives

    for options, message in (({"proxy": []}, "proxy: give at least one"),
                             ({"proxy": ["snip", "snip"]}, "names a proxy twice"),
                             ({"vote_of": ["snip", "x"]}, "vote_of: unknown"),
                             ({"batch_size": 1}, "batch_size must be >= 2"),
                             ({"repeats": {"zen": 0}}, "repeats: zen = 0"),
                             ({"dataset": "nope"}, "dataset: unknown")):
        with pytest.raises(ValueError, match=message):
            objectives.get("zero_cost", **options)
    objective = objectives.get("zero_cost", proxy=["snip", "nwot"], batch_size=16)
    assert objective.directions == ("maximize", "maximize")
    assert objective.model_input() == ((1, 8, 8), 10)
    space = spaces.get("nb201", C=4, N=1)
    config = space.sample(seed=1)
    result = objective(config, space=space, ctx=Context(seed=5))
    again = zc.score_config(space, config, ["snip", "nwot"], seed=5, data_seed=0,
                            batch_size=16)
    assert result.values == (again["snip"], again["nwot"])
    assert result.user_attrs["zc_data"]["batch_size"] == {"snip": 16, "nwot": 16}


