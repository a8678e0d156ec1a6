"""nas-hpo: neural architecture search as conditional hyperparameter optimization.

One search-space definition (``SearchSpace``) drives the existing optimizers (Optuna today);
objectives estimate an architecture's quality; ``run`` records every evaluation in an Optuna
study.
"""

from __future__ import annotations

__version__ = "0.1.0"

from nas_hpo._objective import Context, Objective, Result, TrialFailure
from nas_hpo._runner import run
from nas_hpo._spec import SpecError, StudySpec, load_spec
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

__all__ = [
    "And",
    "Categorical",
    "Constant",
    "Context",
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
    "StudySpec",
    "TrialFailure",
    "load_spec",
    "run",
]
