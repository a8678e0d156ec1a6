"""The Ray backend's worker side: a Ray trial evaluates the proposal the driver sent with the
study layer's ``Evaluator`` and reports the ``Outcome`` back."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ray import tune

from nas_hpo._objective import Context, TrialFailure
from nas_hpo.study import (
    Evaluator,
    StudySpec,
    evaluation_parts,
    evaluator_for,
    jsonable,
    use_threads,
)

__all__ = ["ATTRS_KEY", "OUTCOME_KEY", "STEP_KEY", "TRIAL_KEY", "RayContext", "metric_names",
           "trainable"]

# Keys of the config / results exchanged between the driver and the trainable.
TRIAL_KEY = "nas_hpo:trial"  # the proposal: trial number, seed, fidelity, population (JSON)
STEP_KEY = "nas_hpo_step"
OUTCOME_KEY = "nas_hpo_outcome"  # JSON: Ray flattens nested result dicts
ATTRS_KEY = "nas_hpo_attrs"


def metric_names(n_values: int) -> list[str]:
    return ["value"] if n_values == 1 else [f"value_{i}" for i in range(n_values)]


class RayContext(Context):
    """The context of a Ray trial: reports go to ``ray.tune.report`` (and Ray's scheduler,
    which stops the trial itself when it decides to), with what is known so far of the
    trial's attributes, so that a trial stopped after a report keeps them."""

    def __init__(self, metric: str, proposal: Mapping[str, Any], known: dict[str, Any]
                 ) -> None:
        super().__init__(proposal["seed"], proposal.get("fidelity"),
                         proposal.get("population", []))
        self.metric, self.known = metric, known

    def report(self, value: float, step: int) -> None:
        super().report(value, step)
        if not math.isfinite(value):
            raise TrialFailure(f"intermediate value {value} at step {step} is not finite")
        attrs = json.dumps(jsonable({**self.known, **self.attrs}))
        tune.report({self.metric: float(value), STEP_KEY: int(step), ATTRS_KEY: attrs})


_EVALUATORS: dict[str, tuple[Evaluator, int]] = {}


def _evaluator(spec: StudySpec, threads: int) -> Evaluator:
    # One per worker process and study (Ray reuses worker processes across trials).
    key = repr(spec)
    if key not in _EVALUATORS:
        space, objective, directions = evaluation_parts(spec)
        _EVALUATORS[key] = (evaluator_for(spec, space, objective, len(directions)), threads)
    return _EVALUATORS[key][0]


def trainable(config: dict[str, Any], spec: StudySpec, n_values: int, threads: int) -> None:
    """One Ray trial: the lifecycle's evaluation of the proposal; the final report carries
    the ``Outcome`` (and the values, for Ray's schedulers and results)."""
    use_threads(threads)
    config = dict(config)
    proposal = json.loads(config.pop(TRIAL_KEY))
    names = metric_names(n_values)
    attrs: dict[str, Any] = {}
    outcome = _evaluator(spec, threads).evaluate(config, RayContext(names[0], proposal, attrs),
                                                 attrs)
    final = {OUTCOME_KEY: outcome.to_json()}
    if outcome.values is not None:
        final.update(zip(names, outcome.values, strict=True))
    tune.report(final)


