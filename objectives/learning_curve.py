"""``learning_curve``: train the first epochs of a full run and extrapolate its learning curve.

The network is trained under the schedule of the full ``epochs``-long run (so the learning rate
is still high where the observation stops, as in the full run) for ``observe_epochs`` epochs;
the observed validation accuracies are fitted by parametric learning-curve models, and the
value is their prediction of the validation accuracy after ``epochs`` epochs.

The models are the learning-curve families of Domhan et al. (IJCAI 2015), fitted and
Akaike-weighted by ``nas_hpo.curves``. Each trial records the observed curve, every model's
prediction and weight, and the combined prediction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas_hpo._objective import Context, Result, TrialFailure
from nas_hpo.curves import MODELS, extrapolate
from nas_hpo.objectives import register
from nas_hpo.objectives.train import Train
from nas_hpo.space import SearchSpace

#: The fewest epochs the objective observes. ``extrapolate`` fits four points with the one
#: two-parameter family (ilog2), but alone its ranking of digits architectures swung between
#: Kendall's tau -0.23 and 0.38 with the learning rate (benchmarks/learning_curve_quality.py);
#: from five points the three-parameter families take part.
MIN_OBSERVED = 5

#: learning_curve's fidelities: how much of the run it observes, and train's data fidelities
#: (``epochs`` is the run being predicted, not a fidelity of this estimator).
FIDELITIES = ("observe_epochs", "data_fraction", "resolution", "width_mult")


@register("learning_curve", test_options={"epochs": 5, "observe_epochs": 5,
                                          "models": ["pow3"], "data_fraction": 0.3})
@dataclass(frozen=True)
class LearningCurve(Train):
    """``train``'s options (``epochs`` is the full run whose accuracy is predicted), plus
    ``observe_epochs`` (how many of its epochs are trained) and ``models`` (the curve
    families, default all of ``MODELS``)."""

    epochs: int = 30
    observe_epochs: int = 6
    models: list[str] | tuple[str, ...] | None = None

    fidelities = FIDELITIES

    @property
    def metric_names(self) -> tuple[str, ...]:
        return ("predicted_val_accuracy",)

    @property
    def max_steps(self) -> int:
        return self.observe_epochs

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.observe_epochs < MIN_OBSERVED:
            raise ValueError(f"observe_epochs must be >= {MIN_OBSERVED} (so that the models "
                             f"of three parameters take part), got {self.observe_epochs}")
        if self.observe_epochs > self.epochs:
            raise ValueError(f"observe_epochs ({self.observe_epochs}) must be <= epochs "
                             f"({self.epochs}), the run whose accuracy is predicted")
        models = tuple(MODELS) if self.models is None else tuple(self.models)
        unknown = sorted(set(models) - set(MODELS))
        if unknown or not models:
            raise ValueError(f"models: unknown {', '.join(unknown) or 'none given'}; "
                             f"known: {', '.join(MODELS)}")
        usable = [m for m in models if MODELS[m].n_params + 2 <= self.observe_epochs]
        if not usable:
            raise ValueError(f"models: {', '.join(models)} need more than observe_epochs = "
                             f"{self.observe_epochs} points")
        object.__setattr__(self, "models", models)

    def at(self, fidelity: Mapping[str, Any]) -> LearningCurve:  # type: ignore[override]
        unknown = sorted(set(fidelity) - set(FIDELITIES))
        if unknown:
            raise ValueError(f"learning_curve has no fidelity {', '.join(unknown)}; known: "
                             f"{', '.join(FIDELITIES)}")
        if not fidelity:
            return self
        fidelity = dict(fidelity)
        if "observe_epochs" in fidelity:
            # A strategy's budget (SMAC's is a float), never past the predicted run.
            fidelity["observe_epochs"] = min(int(round(fidelity["observe_epochs"])), self.epochs)
        return dataclasses.replace(self, **fidelity)

    def _evaluate(self, config: Mapping[str, Any], space: SearchSpace, ctx: Context) -> Result:
        trained = self._train(config, space, ctx, stop_after=self.observe_epochs)
        curve = trained.user_attrs["learning_curve"]
        try:
            fit = extrapolate(curve, self.epochs, self.models)
        except ValueError as e:
            raise TrialFailure(str(e)) from None
        attrs = dict(trained.user_attrs)
        attrs["fidelity"] = {**attrs["fidelity"], "observe_epochs": self.observe_epochs}
        attrs.update({
            "observed_accuracy": curve[-1],
            "predicted_accuracy": fit.prediction,
            "predicted_at_epoch": self.epochs,
            "curve_models": {
                name: {"prediction": round(f["prediction"], 6), "weight": round(f["weight"], 6),
                       "mse": f["mse"]}
                for name, f in fit.fits.items()
            },
        })
        if fit.skipped:
            attrs["curve_models_skipped"] = fit.skipped
        return Result((fit.prediction,), attrs)
