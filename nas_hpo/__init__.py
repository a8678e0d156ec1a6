"""nas-hpo: neural architecture search as conditional hyperparameter optimization.

One search-space definition (``SearchSpace``) drives the existing optimizers (Optuna, SMAC3,
Ray Tune); objectives estimate an architecture's quality; ``run`` records every evaluation in
an Optuna study.
"""

from __future__ import annotations

__version__ = "0.1.0"

from nas_hpo._objective import Context, DataSource, Objective, Result, TrialFailure
from nas_hpo._run import bench, run
from nas_hpo.space import (
    And,
    Categorical,
    Constant,
    Equals,
    Float,
    ForbiddenAnd,
    ForbiddenEquals,
    ForbiddenIn,
    GreaterThan,
    In,
    Integer,
    LessThan,
    NotEquals,
    Or,
    SearchSpace,
)
from nas_hpo.study import SpecError, StudyAborted, StudySpec, load_spec

__all__ = [
    "And",
    "Categorical",
    "Constant",
    "Context",
    "DataSource",
    "Equals",
    "Float",
    "ForbiddenAnd",
    "ForbiddenEquals",
    "ForbiddenIn",
    "GreaterThan",
    "In",
    "Integer",
    "LessThan",
    "NotEquals",
    "Objective",
    "Or",
    "Result",
    "SearchSpace",
    "SpecError",
    "StudyAborted",
    "StudySpec",
    "TrialFailure",
    "bench",
    "load_spec",
    "run",
]
