"""The learning-curve families and their Akaike-weighted extrapolation (``nas_hpo.curves``)."""

from __future__ import annotations

import numpy as np
import pytest

from nas_hpo.curves import MODELS, extrapolate

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
