"""The space model: parameter types, conditions, forbidden clauses and ``SearchSpace``."""

from __future__ import annotations

from nas_hpo.space._conditions import (
    And,
    Condition,
    Equals,
    Forbidden,
    ForbiddenAnd,
    ForbiddenEquals,
    ForbiddenIn,
    GreaterThan,
    In,
    LessThan,
    NotEquals,
    Or,
)
from nas_hpo.space._configspace import configspace_values
from nas_hpo.space._encoding import Encoding
from nas_hpo.space._optuna import (
    FORBIDDEN_ATTR,
    MAX_FORBIDDEN_DRAWS,
    ForbiddenConfigurationError,
    forbidden_streak_error,
)
from nas_hpo.space._optuna import distribution as optuna_distribution
from nas_hpo.space._params import Categorical, Constant, Float, Hyperparameter, Integer
from nas_hpo.space._space import Config, SearchSpace

__all__ = [
    "FORBIDDEN_ATTR",
    "MAX_FORBIDDEN_DRAWS",
    "And",
    "Categorical",
    "Condition",
    "Config",
    "Constant",
    "Encoding",
    "Equals",
    "Float",
    "Forbidden",
    "ForbiddenAnd",
    "ForbiddenConfigurationError",
    "ForbiddenEquals",
    "ForbiddenIn",
    "GreaterThan",
    "Hyperparameter",
    "In",
    "Integer",
    "LessThan",
    "NotEquals",
    "Or",
    "SearchSpace",
    "configspace_values",
    "forbidden_streak_error",
    "optuna_distribution",
]
