"""``nas_hpo.run``: from a study description to a finished Optuna study.

The front of the engine: the description is read and checked (``nas_hpo.study``), its plan
resolved, and the backend it names (``nas_hpo.backends``) runs the study layer's lifecycle
until the budget is spent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import optuna

from nas_hpo import backends
from nas_hpo.study import load_spec, prepare

__all__ = ["bench", "run"]


def run(spec: str | os.PathLike[str] | Mapping[str, Any] | None = None, /, *,
        progress: bool = False, **overrides: Any) -> optuna.Study:
    """Run (or resume) the study described by ``spec`` — a study-file path or a dict with the
    same sections — with ``overrides`` (``space=``, ``objective=``, ``strategy=``,
    ``n_trials=``, ``storage=``, ``study_name=``, ``seed=``, ``cost=``, ``backend=``,
    ``workers=``, ``threads=``, ...). ``objective`` may be any callable
    ``f(config) -> float | tuple``; ``space`` may be a ``SearchSpace``; ``cost=[]`` measures
    no cost attributes.

    ``n_trials`` is the study's total: a resumed study runs only the trials it still lacks
    (trials failed because their worker died count as trials; forbidden draws, recorded as
    pruned trials with a ``forbidden`` attribute and drawn again, do not; a repeat of an
    evaluated architecture, answered from the record, does). ``progress`` prints a progress
    line to stderr as trials finish.
    """
    plan = prepare(load_spec(spec, **overrides), progress=progress)
    return backends.executor(plan.spec.backend)(plan)


def bench(source: str | os.PathLike[str] | Mapping[str, Any], /, **overrides: Any
          ) -> dict[str, Any]:
    """Run a benchmark file (strategies × seeds on a simulated clock; only the runs its
    storage lacks) and write its plot and tables; returns their paths (``png``, ``md``,
    ``csv``). ``overrides`` replace ``[bench]`` keys (``seeds=3``, ``processes=2``, ...);
    ``only=["random", "tpe"]`` keeps those strategies of the file.
    See ``nas_hpo.benchmarking``."""
    from nas_hpo import benchmarking

    return benchmarking.bench(dict(source) if isinstance(source, Mapping) else source,
                              **overrides)
