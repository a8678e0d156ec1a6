"""A differentiable search as a strategy of a study: its epochs are trials of the study, the
architecture it derives is evaluated by the objective, a resumed study does not search
again, and what cannot run is refused before the search."""

from __future__ import annotations

import optuna
import pytest

import nas_hpo
from nas_hpo import SpecError

SPACE = {"name": "nb201", "C": 4, "N": 1}


def convs(config: dict) -> float:
    return sum(v.startswith("nor_conv") for v in config.values()) / 6


@pytest.mark.parametrize("strategy", [
    {"name": "darts", "order": 2}, {"name": "gdas"}, {"name": "pc_darts", "partial_channels": 2},
    {"name": "beta_darts"}], ids=["darts2", "gdas", "pc_darts", "beta_darts"])
def test_each_epoch_is_a_trial_and_the_derived_architecture_is_evaluated_last(storage, strategy):
    spec = {"space": SPACE, "strategy": {**strategy, "epochs": 3, "batch_size": 128}}
    study = nas_hpo.run(spec, objective=convs, n_trials=1, storage=storage, study_name="s",
                        seed=0)
    epochs, final = study.trials[:3], study.trials[3:]
    assert len(final) == 1  # n_trials counts the objective's evaluations only
    for k, t in enumerate(epochs, 1):
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert 0 <= t.value <= 1  # the derived path's one-shot validation accuracy
        info = t.user_attrs["oneshot"]
        assert info["epoch"] == k and info["method"].startswith(strategy["name"])
        assert t.user_attrs["budget"] == "one-shot" and t.user_attrs["arch"]
        alphas = t.user_attrs["alphas"]
        assert set(alphas) == set(t.params)  # every edge of nb201
        for name, probs in alphas.items():
            assert sum(probs) == pytest.approx(1, abs=1e-4)
            # The derived op is the most weighted one.
            ops = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
            assert probs[ops.index(t.params[name])] == max(probs)
        if strategy["name"] == "gdas":
            assert info["tau"] == [10.0, 5.05, 0.1][k - 1]
    (last,) = final
    assert last.params == epochs[-1].params  # the architecture of the search's end ...
    assert last.value == convs(last.params)  # ... evaluated by the study's objective
    assert "budget" not in last.user_attrs


def test_a_resumed_study_does_not_search_again_and_samples_the_learned_distribution(storage):
    spec = {"space": SPACE, "strategy": {"name": "darts", "epochs": 2, "batch_size": 128}}
    study = nas_hpo.run(spec, objective=convs, n_trials=1, storage=storage, study_name="s")
    assert len(study.trials) == 3
    study = nas_hpo.run(spec, objective=convs, n_trials=5, storage=storage, study_name="s")
    assert len(study.trials) == 7  # 2 epochs, then 5 evaluations: no new search
    assert sum("oneshot" in t.user_attrs for t in study.trials) == 2
    later = [t.system_attrs["nas_hpo:oneshot:derived"] for t in study.trials[2:]]
    assert later == [2, None, None, None, None]  # the derived one, then samples of softmax(α)


@pytest.mark.parametrize(("spec", "message"), [
    ({"space": {"name": "chain"}, "strategy": {"name": "darts"}}, "has no supernet"),
    ({"space": SPACE, "strategy": {"name": "gdas", "tau_max": 0}}, "tau_max"),
    ({"space": SPACE, "strategy": {"name": "darts", "order": 3}}, "order"),
    ({"space": SPACE, "strategy": {"name": "darts", "dataset": "mnist99"}},
     "dataset: unknown dataset 'mnist99'; known: "),
    ({"space": SPACE, "strategy": {"name": "gdas", "device": "cuda:7"}}, "device: "),
    ({"space": SPACE, "strategy": {"name": "darts"}, "study": {"directions": ["minimize"]}},
     "must maximize one value"),
])
def test_what_cannot_search_is_refused_before_any_trial(storage, spec, message):
    with pytest.raises(SpecError, match=message):
        nas_hpo.run(spec, objective=convs, n_trials=1, storage=storage, study_name="x")
    assert optuna.get_all_study_names(storage) == []


def test_worker_processes_search_once_and_share_the_result(tmp_path):
    storage = f"sqlite:///{tmp_path / 'w.db'}"
    spec = {"space": SPACE, "strategy": {"name": "gdas", "epochs": 2, "batch_size": 128},
            "backend": {"workers": 2}}
    study = nas_hpo.run(spec, objective="tests.strategies.test_oneshot_strategy:convs",
                        n_trials=4, storage=storage, study_name="w", threads=1)
    epochs = [t for t in study.trials if "oneshot" in t.user_attrs]
    assert [t.user_attrs["oneshot"]["epoch"] for t in epochs] == [1, 2]  # one search
    assert len(study.trials) == 6
