"""Evaluating one trial's config, wherever it runs: its costs, its zero-cost scores, the
objective, and every way that can end turned into one ``Outcome``.

This is the part of the trial lifecycle a backend runs where the trial runs (this process, a
worker process, a Ray worker); proposing and recording happen where the study is
(``_lifecycle``). An exception of the objective never escapes: it is a failed outcome with
its type, message and traceback (a ``TrialFailure`` — an expected failure such as a NaN loss
— without a traceback); a pruning is a pruned outcome. Only a Ctrl-C goes through, for the
backend to record the trial as interrupted and stop.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import optuna

from nas_hpo._objective import Context, Objective, TrialFailure
from nas_hpo.space import SearchSpace
from nas_hpo.study._internals import jsonable

if TYPE_CHECKING:
    from nas_hpo.study._spec import StudySpec

__all__ = ["CostRecorder", "Evaluator", "Outcome", "ProxyScorer", "evaluator_for"]

COMPLETE, PRUNED, FAIL = "COMPLETE", "PRUNED", "FAIL"
INTERRUPTED = "interrupted (Ctrl-C / SIGINT)"


@dataclass
class Outcome:
    """How an evaluation ended: ``state`` (COMPLETE, PRUNED or FAIL), the values of a complete
    one, the user attributes to store, and for a failure its reason (``fail_reason``) and,
    for an unexpected exception, its traceback (``fail_traceback``)."""

    state: str
    values: tuple[float, ...] | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    traceback: str | None = None

    @property
    def trial_state(self) -> optuna.trial.TrialState:
        return optuna.trial.TrialState[self.state]

    def to_json(self) -> str:
        """The outcome as JSON text (what a Ray worker sends its driver)."""
        return json.dumps(jsonable(asdict(self)))

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        data = json.loads(text)
        values = data.get("values")
        return cls(data["state"], None if values is None else tuple(values),
                   data.get("attrs") or {}, data.get("reason"), data.get("traceback"))


class CostRecorder:
    """The cost attributes (``params``, ``flops``, ``latency_ms``, ...) of each architecture,
    measured once per architecture key and stored on every trial, whatever the objective.

    Networks are built for the objective's input (``Objective.model_input``), or for the
    embedded default dataset's when the objective cannot tell; ``cost_input_shape`` records
    which. Building draws random weights: it runs under a forked RNG so that the objective's
    own randomness is the same with or without cost recording."""

    def __init__(self, space: SearchSpace, objective: Objective, metrics: tuple[str, ...]
                 ) -> None:
        self.space, self.objective, self.metrics = space, objective, metrics
        self._cache: dict[str, dict[str, Any]] = {}

    @property
    def active(self) -> bool:
        return bool(self.metrics) and self.space.can_build

    def warm_up(self) -> None:
        """Do before the first trial what its measurement would otherwise do inside it: import
        torch, load the input's shape, and count the FLOPs of a one-pixel network, which makes
        ``FlopCounterMode`` import its ~900 lazy modules (~1 s; 3 s on a busy machine). A
        Ctrl-C that landed in those imports was once lost there, leaving the interrupted run
        in its objective (1 in ~100 tries); now no trial is running while they happen, and
        the first trial's time is its own."""
        if not self.active:
            return
        import torch

        from nas_hpo import cost

        self._input()
        if "flops" in self.metrics:
            with torch.random.fork_rng(devices=[]):  # leaves the objective's RNG untouched
                tiny = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.Flatten(),
                                           torch.nn.Linear(1, 1))
                cost.count_flops(tiny, (1, 1, 1))

    def _input(self) -> tuple[tuple[int, ...], int]:
        known = self.objective.model_input()
        if known is not None:
            return known
        from nas_hpo import data

        splits = data.load(data.DEFAULT)
        return splits.input_shape, splits.num_classes

    def __call__(self, config: Mapping[str, Any]) -> dict[str, Any]:
        import torch

        from nas_hpo import cost

        key = self.space.arch_key(config)
        if key not in self._cache:
            input_shape, num_classes = self._input()
            with torch.random.fork_rng(devices=[]):
                model = self.space.build(config, input_shape=input_shape, num_classes=num_classes)
                attrs = cost.measure(
                    model, input_shape, self.metrics, device=self.objective.cost_device
                )
            attrs["cost_input_shape"] = list(input_shape)
            if len(self._cache) >= 4096:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = attrs
        return dict(self._cache[key])


class ProxyScorer:
    """Zero-cost proxies of a config's network on the objective's data (its
    ``data_source()``, or the embedded default) with the study seed: ``also_score`` and warm
    starts."""

    def __init__(self, space: SearchSpace, objective: Objective, names: tuple[str, ...],
                 seed: int) -> None:
        self.space, self.objective, self.names, self.seed = space, objective, names, seed

    @property
    def active(self) -> bool:
        return bool(self.names) and self.space.can_build

    def __call__(self, config: Mapping[str, Any]) -> dict[str, float]:
        from nas_hpo import data, proxies

        source = self.objective.data_source()
        return proxies.score_config(
            self.space, dict(config), list(self.names),
            dataset=source.dataset if source else data.DEFAULT,
            data_dir=source.data_dir if source else None,
            seed=self.seed,
        )


class Evaluator:
    """Evaluates configs of ``space`` with ``objective``: the costs (once per architecture),
    the ``also_score`` proxies, then the objective, into an ``Outcome``."""

    def __init__(self, space: SearchSpace, objective: Objective, *, n_values: int,
                 cost_metrics: tuple[str, ...] = (), also_score: tuple[str, ...] = (),
                 seed: int = 0) -> None:
        self.space, self.objective, self.n_values = space, objective, n_values
        self.costs = CostRecorder(space, objective, cost_metrics)
        self.proxies = ProxyScorer(space, objective, also_score, seed)
        self._warm = False

    def warm_up(self) -> None:
        """Before the first trial: what the first cost measurement would import."""
        if not self._warm:
            self._warm = True
            self.costs.warm_up()

    def evaluate(self, config: Mapping[str, Any], ctx: Context,
                 attrs: dict[str, Any] | None = None) -> Outcome:
        """The outcome of ``config``. ``attrs`` collects what is measured as it is measured,
        so that a caller interrupted by a Ctrl-C still has it."""
        attrs = {} if attrs is None else attrs
        self.warm_up()
        if self.costs.active:
            # Before the evaluation, so pruned and failed trials carry their costs too; a
            # network that cannot be measured is noted, and the objective still runs.
            try:
                attrs.update(self.costs(config))
            except Exception as e:
                attrs["cost_error"] = f"{type(e).__name__}: {e}"
        if self.proxies.active:
            # Zero-cost proxies of the trial's network next to what the objective measures
            # (the raw material of `nas-hpo correlate`); a proxy that fails is noted.
            try:
                attrs.update({f"zc_{k}": v for k, v in self.proxies(config).items()})
            except Exception as e:
                attrs["zc_error"] = f"{type(e).__name__}: {e}"
        try:
            result = self.objective(config, space=self.space, ctx=ctx)
            if len(result.values) != self.n_values:
                raise TrialFailure(f"the objective returned {len(result.values)} value(s) "
                                   f"{result.values}, the study has {self.n_values} "
                                   "direction(s)")
        except optuna.TrialPruned as e:
            attrs.update(ctx.attrs)
            return Outcome(PRUNED, attrs=attrs, reason=str(e) or None)
        except TrialFailure as e:
            attrs.update(ctx.attrs)
            return Outcome(FAIL, attrs=attrs, reason=str(e))
        except Exception as e:  # a bug of the objective: this trial fails, the study goes on
            attrs.update(ctx.attrs)
            return Outcome(FAIL, attrs=attrs, reason=f"{type(e).__name__}: {e}",
                           traceback=traceback.format_exc())
        attrs.update(ctx.attrs)
        attrs.update(result.user_attrs)
        return Outcome(COMPLETE, result.values, attrs)


def evaluator_for(spec: StudySpec, space: SearchSpace, objective: Objective,
                  n_values: int) -> Evaluator:
    """The evaluator of a study's trials, with the study's cost metrics, ``also_score``
    proxies and seed (``Plan.evaluator``; a Ray worker builds it from the spec's parts)."""
    return Evaluator(space, objective, n_values=n_values, cost_metrics=spec.cost_metrics,
                     also_score=spec.also_score, seed=spec.seed)
