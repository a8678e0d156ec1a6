from __future__ import annotations

import numpy as np
import optuna
import pytest

import nas_hpo
from nas_hpo import objectives, spaces
from nas_hpo.objectives import Context, TrialFailure
from nas_hpo.objectives.learning_curve import MODELS, extrapolate


@pytest.fixture(scope="module")
def space():
    return spaces.get("resnet_blocks", base_width=4)


X = np.arange(1, 31, dtype=float)
TRUE = {
    "pow3": 0.95 - 0.6 * X**-0.7,
    "exp3": 0.9 - np.exp(-0.15 * X - 0.35),
    "mmf": 0.93 - (0.93 - 0.1) / (1 + (0.3 * X) ** 1.5),
}


@pytest.mark.parametrize("family", sorted(TRUE))
def test_extrapolation_beats_the_last_observed_value_on_noisy_curves(family):
    """Curves of three families with validation-like noise (sd 0.005), 8 of 30 epochs
    observed: the prediction of epoch 30 is off by less than half as much as the last value
    seen (measured: pow3 <= 0.009, exp3 <= 0.031, mmf <= 0.056 off, vs 0.08, 0.2, 0.15)."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        y = TRUE[family] + rng.normal(0, 0.005, len(X))
        fit = extrapolate(y[:8], 30)
        truth = TRUE[family][-1]
        assert abs(fit.prediction - truth) < 0.5 * abs(y[7] - truth), (fit.prediction, truth)
        assert abs(sum(f["weight"] for f in fit.fits.values()) - 1) < 1e-9
        assert all(0 <= f["prediction"] <= 1 for f in fit.fits.values())


def test_a_curve_that_does_not_move_predicts_where_it_is():
    fit = extrapolate([0.1, 0.1, 0.1, 0.1, 0.1, 0.1], 50)
    assert abs(fit.prediction - 0.1) < 0.01


def test_models_need_enough_points_and_a_curve_must_be_finite():
    fit = extrapolate([0.3, 0.5, 0.6, 0.65], 20)  # 4 points: only two-parameter models
    assert set(fit.fits) == {m for m, model in MODELS.items() if model.n_params == 2}
    assert "need at least 5 observed epochs" in fit.skipped["pow3"]
    with pytest.raises(ValueError, match="no learning-curve model fits"):
        extrapolate([0.3, 0.5, 0.6], 20)
    with pytest.raises(ValueError, match="must be finite"):
        extrapolate([0.3, float("nan"), 0.6, 0.7], 20)


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
