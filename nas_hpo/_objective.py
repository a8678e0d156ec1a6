"""What every objective shares: the result type, the evaluation context, the base class.

An objective maps a config of a space to one value per study direction. Everything else it
learns about the architecture (test accuracy, parameter count, the learning curve, the fidelity
used) travels in ``Result.user_attrs`` and ends up in the Optuna trial's user attributes.

The base class states the whole contract the engine relies on — no attribute is guessed:
``directions`` and ``metric_names`` (its values), ``fidelities`` (what a multi-fidelity
strategy may set), ``max_steps`` (how many intermediate values it reports at most: Ray's
schedulers need it), ``data_source()`` (the data it evaluates on: zero-cost proxies and cost
measurement use the same), ``model_input()``, ``cost_device``, ``population_attrs`` (what it
reads of the study's other trials, through ``Context.population`` on every backend) and
``check_space``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas_hpo.space import SearchSpace

__all__ = [
    "CallableObjective",
    "Context",
    "DataSource",
    "Objective",
    "Result",
    "TrialFailure",
]


class TrialFailure(RuntimeError):
    """An evaluation that ended without a usable result (NaN loss, divergence, a NaN score).

    The engine records the trial as failed with this message as its ``fail_reason`` (without
    a traceback: the failure is expected) and the study goes on.
    """


@dataclass(frozen=True)
class Result:
    """One evaluation: ``values`` (one per study direction) and what else was measured."""

    values: tuple[float, ...]
    user_attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = tuple(_number(v) for v in self.values)
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
        return cls((value,), dict(user_attrs or {}))


def _number(value: Any) -> float:
    """A value of the study as a float: a real number (numpy and torch scalars included);
    strings and booleans are refused rather than read as numbers."""
    if isinstance(value, (str, bytes, bool)) or value is None:
        raise TrialFailure(f"the objective returned {value!r}; expected a number or a tuple "
                           "of numbers")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TrialFailure(f"the objective returned {value!r}; expected a number or a tuple "
                           "of numbers") from None


@dataclass(frozen=True)
class DataSource:
    """The data an objective evaluates on: a registered dataset and where its files are."""

    dataset: str
    data_dir: str | None = None


class Context:
    """What an evaluation may do besides returning: know its seed, report progress, store
    attributes, read the study's population. This base is the stand-alone context (a
    notebook, a test): reports are kept in ``reports`` and nothing is pruned.

    ``fidelity`` is what a multi-fidelity strategy asks of this evaluation (e.g.
    ``{"epochs": 3}``); it overrides the objective's own settings of those names.
    ``population`` holds, for each completed trial of the study when this one started, the
    user attributes named by the objective's ``population_attrs`` (trials lacking one are
    left out); the engine always gives one (on every backend), a stand-alone context has
    None."""

    def __init__(self, seed: int = 0, fidelity: Mapping[str, Any] | None = None,
                 population: list[dict[str, Any]] | None = None) -> None:
        self.seed = seed
        self.fidelity: dict[str, Any] = dict(fidelity or {})
        self.population = None if population is None else list(population)
        self.reports: list[tuple[int, float]] = []
        self.attrs: dict[str, Any] = {}
        #: Seconds of (simulated) time the evaluation said it cost (``spend``).
        self.spent = 0.0

    def report(self, value: float, step: int) -> None:
        """Report an intermediate value (e.g. validation accuracy after epoch ``step``); raises
        ``optuna.TrialPruned`` when the strategy's pruner stops the trial."""
        self.reports.append((step, float(value)))

    def set_attr(self, key: str, value: Any) -> None:
        self.attrs[key] = value

    def spend(self, seconds: float) -> None:
        """Say that the evaluation has now cost ``seconds`` more of time it did not really
        take (a table-answered objective: what the training it looks up took). Everywhere
        it is only added up; on the ``simulated`` backend the evaluation waits here until
        the simulated clock has moved on by that much, so that its next report, or its
        result, arrives at the moment it would have."""
        if not seconds >= 0:
            raise ValueError(f"spend: seconds must be >= 0, got {seconds}")
        self.spent += float(seconds)


class Objective:
    """Base of the registered objectives: ``objective(config, space=..., ctx=...) -> Result``.

    ``directions`` are the optimization directions of ``Result.values`` (what the study file's
    ``directions`` must match)."""

    directions: tuple[str, ...] = ("maximize",)
    #: The fidelities a strategy may set through ``Context.fidelity`` (e.g. ``"epochs"``).
    fidelities: tuple[str, ...] = ()
    #: Where the engine measures the latency it stores on every trial (the objective's device).
    cost_device: str = "cpu"
    #: User attributes of the study's completed trials this objective reads
    #: (``Context.population``); empty: it reads none, and none are gathered.
    population_attrs: tuple[str, ...] = ()

    def __call__(self, config: Mapping[str, Any], *, space: SearchSpace, ctx: Context) -> Result:
        raise NotImplementedError

    @property
    def metric_names(self) -> tuple[str, ...] | None:
        """A name per value (e.g. ``("val_accuracy", "latency_ms")``): a multi-objective study
        records them (``study.set_metric_names``), so the dashboard, the report's plots and
        ``best.csv`` show them. None: the values have no names (``value_0``, ...)."""
        return None

    @property
    def max_steps(self) -> int | None:
        """The most intermediate values (``Context.report``) one evaluation reports, at its
        full fidelity; None where it reports none."""
        return None

    def data_source(self) -> DataSource | None:
        """The data this objective evaluates on (None: none, e.g. a plain Python function)."""
        return None

    def check_space(self, space: SearchSpace) -> None:
        """Raise ``ValueError`` saying why this objective cannot evaluate ``space``'s
        architectures at all (the engine checks before the first trial)."""

    def model_input(self) -> tuple[tuple[int, ...], int] | None:
        """``(input_shape, num_classes)`` of the networks this objective evaluates, for the
        cost attributes (params, FLOPs, latency) the engine stores on every trial; ``None``
        where the objective cannot tell (the engine then uses the embedded default dataset's)."""
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
