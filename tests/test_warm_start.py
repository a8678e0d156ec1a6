"""``[strategy] warm_start`` and ``[objective] also_score``: zero-cost proxies feeding a study."""

from __future__ import annotations

import pytest

import nas_hpo
from nas_hpo import proxies

NB201 = {"name": "nb201", "C": 4, "N": 1}


def test_warm_start_enqueues_the_best_scored_architectures_first(storage):
    study = nas_hpo.run(
        {"space": NB201, "strategy": {"name": "random", "warm_start": 12, "warm_start_top": 3,
                                      "warm_start_by": "params"},
         "study": {"cost": ["params"]}},
        objective="tests.toy_objectives:params_of_nb201", n_trials=5, storage=storage,
        study_name="warm",
    )
    trials = study.trials
    marks = [t.user_attrs.get("warm_start") for t in trials]
    assert all(m is not None for m in marks[:3]) and marks[3] is None and marks[4] is None
    scores = [m["score"] for m in marks[:3]]
    assert scores == sorted(scores, reverse=True) and marks[0]["of"] == 12
    # params as the proxy: the enqueued trials are the 3 largest networks of the 12 scored.
    assert [t.user_attrs["params"] for t in trials[:3]] == scores
    # A resumed study is not warm-started again.
    again = nas_hpo.run({"space": NB201, "strategy": {"name": "random", "warm_start": 12}},
                        objective="tests.toy_objectives:params_of_nb201", n_trials=6,
                        storage=storage, study_name="warm")
    assert sum("warm_start" in t.user_attrs for t in again.trials) == 3


def test_also_score_stores_proxies_on_every_trial():
    study = nas_hpo.run(
        {"space": NB201, "objective": {"name": "tests.toy_objectives:params_of_nb201"},
         "study": {"cost": []}},
        strategy="random", n_trials=3, storage=":memory:",
    )
    assert not any(k.startswith("zc_") for k in study.trials[0].user_attrs)
    spec = {"space": NB201, "objective": {"name": "cost", "metrics": ["params"],
                                          "also_score": ["synflow", "nwot"]}}
    study = nas_hpo.run(spec, strategy="random", n_trials=3, storage=":memory:",
                        directions=["minimize"])
    for t in study.trials:
        assert {"zc_synflow", "zc_nwot"} <= set(t.user_attrs)
        assert all(isinstance(t.user_attrs[k], float) for k in ("zc_synflow", "zc_nwot"))


def test_unknown_proxy_names_are_spec_errors():
    with pytest.raises(nas_hpo.SpecError, match=r"\[objective\] also_score: unknown proxy "
                       "'synflo'"):
        nas_hpo.run({"space": NB201, "objective": {"name": "cost", "also_score": ["synflo"]}},
                    n_trials=1, storage=":memory:")
    with pytest.raises(nas_hpo.SpecError, match=r"\[strategy\] warm_start_by: unknown proxy"):
        nas_hpo.run({"space": NB201, "objective": {"name": "cost"},
                     "strategy": {"name": "tpe", "warm_start": 5, "warm_start_by": "nope"}},
                    n_trials=1, storage=":memory:")
    assert "synflow" in proxies.PROXIES
