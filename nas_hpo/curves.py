"""Parametric learning-curve families and their extrapolation (a library the
``learning_curve`` objective and the ``lce`` pruner share).

The families are those of Domhan, Springenberg & Hutter, "Speeding up Automatic Hyperparameter
Optimization of Deep Neural Networks by Extrapolation of Learning Curves" (IJCAI 2015),
restricted (through bounds on their parameters) to curves that rise towards an asymptote of at
most 1. Where the paper combines them by MCMC, each is fitted here by bounded least squares
(SciPy's ``curve_fit``) and the fits are averaged with Akaike weights (AICc, which also leaves
out a model with too many parameters for the points observed): a weighting that needs no
sampling and costs milliseconds per curve.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MIN_MSE", "MODELS", "CurveModel", "Extrapolation", "extrapolate"]


@dataclass(frozen=True)
class CurveModel:
    """A parametric learning curve ``f(x, *params)`` of the epoch ``x`` (from 1), a start point
    from the observed curve and bounds for each parameter."""

    name: str
    f: Callable[..., np.ndarray]
    start: Callable[[np.ndarray, np.ndarray], list[float]]
    lower: tuple[float, ...]
    upper: tuple[float, ...]

    @property
    def n_params(self) -> int:
        return len(self.lower)


def _top(y: np.ndarray) -> float:
    """A start for the asymptote: a little above the best observed value, at most 1."""
    return float(min(1.0, max(y) + 0.05))


def _gap(y: np.ndarray) -> float:
    return max(_top(y) - float(y[0]), 1e-3)


def _pow3(x: np.ndarray, c: float, a: float, alpha: float) -> np.ndarray:
    return c - a * x ** (-alpha)


def _pow4(x: np.ndarray, c: float, a: float, b: float, alpha: float) -> np.ndarray:
    return c - (a * x + b) ** (-alpha)


def _log_power(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a / (1.0 + (x / math.exp(b)) ** c)


def _exp3(x: np.ndarray, c: float, a: float, b: float) -> np.ndarray:
    return c - np.exp(-a * x + b)


def _exp4(x: np.ndarray, c: float, a: float, alpha: float, b: float) -> np.ndarray:
    return c - np.exp(-a * x**alpha + b)


def _janoschek(x: np.ndarray, alpha: float, beta: float, kappa: float, delta: float
               ) -> np.ndarray:
    return alpha - (alpha - beta) * np.exp(-kappa * x**delta)


def _weibull(x: np.ndarray, alpha: float, beta: float, kappa: float, delta: float
             ) -> np.ndarray:
    return alpha - (alpha - beta) * np.exp(-((kappa * x) ** delta))


def _mmf(x: np.ndarray, alpha: float, beta: float, kappa: float, delta: float) -> np.ndarray:
    return alpha - (alpha - beta) / (1.0 + (kappa * x) ** delta)


def _ilog2(x: np.ndarray, c: float, a: float) -> np.ndarray:
    # log(x + 1): the paper's c - a / log(x) is infinite at the first epoch.
    return c - a / np.log(x + 1.0)


def _hill3(x: np.ndarray, top: float, eta: float, kappa: float) -> np.ndarray:
    return top * x**eta / (kappa**eta + x**eta)


#: The families, each bounded to rise (or stay flat) towards an asymptote in [0, 1].
MODELS: dict[str, CurveModel] = {m.name: m for m in [
    CurveModel("pow3", _pow3, lambda x, y: [_top(y), _gap(y), 0.5],
               (0.0, 0.0, 0.0), (1.0, 10.0, 10.0)),
    CurveModel("pow4", _pow4,
               lambda x, y: [_top(y), 1.0, 1.0 / _gap(y) ** 2, 0.5],
               (0.0, 0.0, 1e-3, 0.0), (1.0, 100.0, 1e6, 10.0)),
    CurveModel("log_power", _log_power, lambda x, y: [_top(y), 0.0, -1.0],
               (0.0, -10.0, -10.0), (1.0, 10.0, 0.0)),
    CurveModel("exp3", _exp3, lambda x, y: [_top(y), 0.5, math.log(_gap(y)) + 0.5],
               (0.0, 0.0, -20.0), (1.0, 10.0, 10.0)),
    CurveModel("exp4", _exp4, lambda x, y: [_top(y), 0.5, 1.0, math.log(_gap(y)) + 0.5],
               (0.0, 0.0, 0.0, -20.0), (1.0, 10.0, 5.0, 10.0)),
    CurveModel("janoschek", _janoschek, lambda x, y: [_top(y), float(y[0]) / 2, 0.5, 1.0],
               (0.0, 0.0, 0.0, 0.0), (1.0, 1.0, 10.0, 10.0)),
    CurveModel("weibull", _weibull, lambda x, y: [_top(y), float(y[0]) / 2, 0.5, 1.0],
               (0.0, 0.0, 0.0, 0.0), (1.0, 1.0, 10.0, 10.0)),
    CurveModel("mmf", _mmf, lambda x, y: [_top(y), float(y[0]) / 2, 0.5, 1.0],
               (0.0, 0.0, 0.0, 0.0), (1.0, 1.0, 10.0, 10.0)),
    CurveModel("ilog2", _ilog2, lambda x, y: [_top(y), _gap(y) * math.log(2.0)],
               (0.0, 0.0), (1.0, 10.0)),
    CurveModel("hill3", _hill3, lambda x, y: [_top(y), 1.0, 1.0],
               (0.0, 0.0, 1e-3), (1.0, 10.0, 100.0)),
]}

#: The noise floor of a fit's mean squared error (an accuracy measured to ~0.001): a model
#: that happens to pass exactly through the points does not get an infinite weight.
MIN_MSE = 1e-6


@dataclass(frozen=True)
class Extrapolation:
    """The combined ``prediction`` at ``target``, each model's (``fits``: prediction, weight,
    mean squared error, parameters) and why the others were left out (``skipped``)."""

    target: int
    prediction: float
    fits: dict[str, dict[str, Any]]
    skipped: dict[str, str]


def extrapolate(curve: Sequence[float], target: int,
                models: Sequence[str] = tuple(MODELS)) -> Extrapolation:
    """Fit ``curve`` (the values after epochs 1, 2, ...) with each model and predict the value
    at epoch ``target``: the Akaike-weighted (AICc) mean of the models' predictions. A model
    needs at least as many points as its parameters plus two (AICc's correction); one whose
    fit fails is left out with the reason. Raises ``ValueError`` when no model fits."""
    from scipy.optimize import curve_fit

    y = np.asarray(curve, dtype=float)
    if y.ndim != 1 or not np.all(np.isfinite(y)):
        raise ValueError(f"the learning curve must be finite numbers, got {list(curve)!r}")
    n = len(y)
    x = np.arange(1, n + 1, dtype=float)
    fits: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for name in models:
        model = MODELS[name]
        k = model.n_params
        if n < k + 2:
            skipped[name] = f"{k} parameters need at least {k + 2} observed epochs"
            continue
        lower, upper = np.array(model.lower), np.array(model.upper)
        p0 = np.clip(model.start(x, y), lower + 1e-9, upper - 1e-9)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                params, _ = curve_fit(model.f, x, y, p0=p0, bounds=(lower, upper),
                                      maxfev=300 * (k + 1))
                fitted = model.f(x, *params)
                prediction = float(model.f(np.array([float(target)]), *params)[0])
        except (RuntimeError, ValueError, FloatingPointError, OverflowError) as e:
            skipped[name] = f"fit failed: {str(e).splitlines()[0]}"
            continue
        if not (np.all(np.isfinite(fitted)) and math.isfinite(prediction)):
            skipped[name] = "fit failed: not finite"
            continue
        mse = max(float(np.mean((fitted - y) ** 2)), MIN_MSE)
        aicc = n * math.log(mse) + 2 * k + 2 * k * (k + 1) / (n - k - 1)
        fits[name] = {"prediction": min(max(prediction, 0.0), 1.0), "mse": mse, "aicc": aicc,
                      "params": [float(p) for p in params]}
    if not fits:
        raise ValueError(
            f"no learning-curve model fits the {n} observed values "
            f"{[round(float(v), 4) for v in y]}: "
            + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    best = min(f["aicc"] for f in fits.values())
    raw = {name: math.exp(-(f["aicc"] - best) / 2) for name, f in fits.items()}
    total = sum(raw.values())
    for name, f in fits.items():
        f["weight"] = raw[name] / total
    prediction = sum(f["weight"] * f["prediction"] for f in fits.values())
    return Extrapolation(target, prediction, fits, skipped)
