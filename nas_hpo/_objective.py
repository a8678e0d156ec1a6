"""What every objective shares: the result type, the evaluation context, the base class.

An objective maps a config of a space to one value per study direction. Everything else it
learns about the architecture (test accuracy, parameter count, the learning curve, the fidelity
used) travels in ``Result.user_attrs`` and ends up in the Optuna trial's user attributes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from nas_hpo.space import SearchSpace


class TrialFailure(RuntimeError):
    """An evaluation that ended without a usable result (NaN loss, divergence, a NaN score).

    The runner records the trial as failed with this message as its ``fail_reason`` and the
    study goes on.
    """


@dataclass(frozen=True)
class Result:
    """One evaluation: ``values`` (one per study direction) and what else was measured."""

    values: tuple[float, ...]
    user_attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = tuple(map(float, self.values))
        if not all(map(math.isfinite, values)):
            raise TrialFailure(f"the objective returned a non-finite value: {values}")
        object.__setattr__(self, "values", values)

    @classmethod
    def of(cls, value: Any, user_attrs: Mapping[str, Any] | None = None) -> Result:
        """Wrap what a plain callable returned: a number, a tuple of numbers, or a Result."""
        if isinstance(value, Result):
            return value
        if isinstance(value, (tuple, list)):
            return cls(tuple(value), dict(user_attrs or {}))
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TrialFailure(
                f"the objective returned {value!r}; expected a number or a tuple of numbers"
            ) from None
        return cls((number,), dict(user_attrs or {}))


class Context:
    """What an evaluation may do besides returning: know its seed, report progress, store
    attributes. This base is the stand-alone context (a notebook, a test): reports are kept
    in ``reports`` and nothing is pruned.

    ``fidelity`` is what a multi-fidelity strategy asks of this evaluation (e.g.
    ``{"epochs": 3}``); it overrides the objective's own settings of those names."""

    def __init__(self, seed: int = 0, fidelity: Mapping[str, Any] | None = None) -> None:
        self.seed = seed
        self.fidelity: dict[str, Any] = dict(fidelity or {})
        self.reports: list[tuple[int, float]] = []
        self.attrs: dict[str, Any] = {}

    def report(self, value: float, step: int) -> None:
        """Report an intermediate value (e.g. validation accuracy after epoch ``step``); raises
        ``optuna.TrialPruned`` when the strategy's pruner stops the trial."""
        self.reports.append((step, float(value)))

    def set_attr(self, key: str, value: Any) -> None:
        self.attrs[key] = value


class OptunaContext(Context):
    """The context of an Optuna trial: reports go to ``trial.report`` and the pruner."""

    def __init__(
        self, trial: optuna.trial.Trial, seed: int, fidelity: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(seed, fidelity)
        self.trial = trial

    def report(self, value: float, step: int) -> None:
        import optuna

        super().report(value, step)
        if not math.isfinite(value):
            raise TrialFailure(f"intermediate value {value} at step {step} is not finite")
        self.trial.report(float(value), step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} with value {value:.4g}")

    def set_attr(self, key: str, value: Any) -> None:
        super().set_attr(key, value)
        self.trial.set_user_attr(key, value)


class Objective:
    """Base of the registered objectives: ``objective(config, space=..., ctx=...) -> Result``.

    ``directions`` are the optimization directions of ``Result.values`` (what the study file's
    ``directions`` must match)."""

    directions: tuple[str, ...] = ("maximize",)
    #: The fidelities a strategy may set through ``Context.fidelity`` (e.g. ``"epochs"``).
    fidelities: tuple[str, ...] = ()
    #: Where the runner measures the latency it stores on every trial (the objective's device).
    cost_device: str = "cpu"

    def __call__(self, config: Mapping[str, Any], *, space: SearchSpace, ctx: Context) -> Result:
        raise NotImplementedError

    def check_space(self, space: SearchSpace) -> None:
        """Raise ``ValueError`` saying why this objective cannot evaluate ``space``'s
        architectures at all (the runner checks before the first trial)."""

    def model_input(self) -> tuple[tuple[int, ...], int] | None:
        """``(input_shape, num_classes)`` of the networks this objective evaluates, for the
        cost attributes (params, FLOPs, latency) the runner stores on every trial; ``None``
        where the objective cannot tell (the runner then uses the embedded default dataset's)."""
        return None


class CallableObjective(Objective):
    """A user's plain ``f(config) -> float | tuple`` (or ``f(config, ctx)``) as an objective."""

    def __init__(self, fn: Any, directions: tuple[str, ...] | None = None) -> None:
        self.fn = fn
        self.directions = directions or ("maximize",)
        import inspect

        try:
            n = len(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            n = 1
        self._wants_ctx = n >= 2

    def __call__(self, config: Mapping[str, Any], *, space: SearchSpace, ctx: Context) -> Result:
        value = self.fn(dict(config), ctx) if self._wants_ctx else self.fn(dict(config))
        return Result.of(value)
