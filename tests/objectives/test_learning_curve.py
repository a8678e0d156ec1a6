from __future__ import annotations

import optuna
import pytest

import nas_hpo
from nas_hpo import objectives, spaces
from nas_hpo.curves import MODELS
from nas_hpo.objectives import Context, TrialFailure


@pytest.fixture(scope="module")
def space():
    return spaces.get("resnet_blocks", base_width=4)


def test_observes_the_first_epochs_of_the_full_schedule(space):
    """The observed curve is exactly the first epochs of the full run (the same schedule, the
    same seed), and the prediction is the fits' weighted mean."""
    config = space.sample(seed=3)
    full = objectives.get("train", epochs=8)(config, space=space, ctx=Context(seed=1))
    ctx = Context(seed=1)
    lc = objectives.get("learning_curve", epochs=8, observe_epochs=5)
    result = lc(config, space=space, ctx=ctx)
    curve = result.user_attrs["learning_curve"]
    assert curve == full.user_attrs["learning_curve"][:5]
    assert [s for s, _ in ctx.reports] == [1, 2, 3, 4, 5]
    attrs = result.user_attrs
    assert attrs["observed_accuracy"] == curve[-1]
    assert attrs["predicted_accuracy"] == result.values[0]
    assert attrs["predicted_at_epoch"] == 8
    assert attrs["fidelity"]["epochs"] == 8 and attrs["fidelity"]["observe_epochs"] == 5
    models = attrs["curve_models"]
    assert result.values[0] == pytest.approx(
        sum(m["weight"] * m["prediction"] for m in models.values()), abs=1e-5)
    assert set(attrs["curve_models_skipped"]) == {m for m, model in MODELS.items()
                                                  if model.n_params > 3}


@pytest.mark.parametrize("options, match", [
    ({"observe_epochs": 4}, "observe_epochs must be >= 5"),
    ({"observe_epochs": 12, "epochs": 10}, r"observe_epochs \(12\) must be <= epochs \(10\)"),
    ({"models": ["pow3", "spline"]}, "models: unknown spline; known: pow3"),
    ({"models": ["exp4"], "observe_epochs": 5}, "models: exp4 need more than"),
    ({"optimizer": "lion"}, "optimizer: unknown 'lion'"),
])
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        objectives.get("learning_curve", **options)


def test_a_fidelity_sets_how_much_is_observed(space):
    lc = objectives.get("learning_curve", epochs=6, observe_epochs=6, models=["ilog2"])
    ctx = Context(seed=0, fidelity={"observe_epochs": 5.0})
    result = lc(space.default(), space=space, ctx=ctx)
    assert len(result.user_attrs["learning_curve"]) == 5
    with pytest.raises(ValueError, match="learning_curve has no fidelity epochs"):
        lc(space.default(), space=space, ctx=Context(fidelity={"epochs": 3}))


def test_a_diverging_run_is_a_trial_failure(space):
    lc = objectives.get("learning_curve", epochs=6, observe_epochs=5, lr=1e30)
    with pytest.raises(TrialFailure, match="training loss became"):
        lc(space.default(), space=space, ctx=Context(seed=0))


def test_in_a_study_with_the_hyperband_strategy(tmp_path):
    """smac_hyperband drives observe_epochs; every trial records the prediction and its
    budget, and the best trial is the best prediction."""
    study = nas_hpo.run(
        {"objective": {"name": "learning_curve", "epochs": 12, "observe_epochs": 10,
                       "models": ["pow3", "ilog2", "exp3"]},
         "strategy": {"name": "smac_hyperband", "fidelity": "observe_epochs",
                      "min_budget": 5, "max_budget": 10, "eta": 2, "n_initial": 2}},
        space="resnet_blocks", n_trials=3, storage=f"sqlite:///{tmp_path / 'lc.db'}",
        study_name="lc", seed=0)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 3
    for t in done:
        assert t.value == t.user_attrs["predicted_accuracy"]
        budget = int(round(t.user_attrs["budget"]["observe_epochs"]))
        assert len(t.user_attrs["learning_curve"]) == budget == len(t.intermediate_values)
    assert study.best_value == max(t.value for t in done)
