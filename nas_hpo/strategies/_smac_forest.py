"""SMAC's random forest with categorical choices one-hot encoded (``smac`` with
``forest = "onehot"``, the default).

SMAC 2.x fits its random forest with scikit-learn's decision trees, which split every column at
a threshold: a categorical hyperparameter reaches them as its choice's index (0, 1, 2, ... in the
order the choices are listed), so a tree can only separate "index below 2" from "index 2 and
above". On a NAS space, whose choices (operations, block types) have no order, that mixes good
and bad choices in every split and leaves the forest little better than the mean: on
NB201-digits SMAC's HPO facade ended where random search does (benchmarks/README.md).
scikit-learn's trees have no categorical splits and SMAC no option for them (its earlier
pyrfr forest had them), so this model gives each choice its own 0/1 column — a split then
separates one choice from the rest — with the inactive state (SMAC imputes it as one more index)
a column of its own. Everything else (per-tree variance, log-scaled costs, bootstrapping) is
SMAC's ``RandomForest`` unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ConfigSpace import CategoricalHyperparameter
from smac.model.random_forest.random_forest import EPMRandomForest, RandomForest


class OneHotRandomForest(RandomForest):
    """SMAC's ``RandomForest`` on a one-hot encoding of the categorical hyperparameters."""

    def __init__(self, configspace: Any, **kwargs: Any) -> None:
        super().__init__(configspace, **kwargs)
        # (column, number of states: the choices and the inactive one) per categorical
        self._onehot = [
            (i, len(hp.choices) + 1)
            for i, hp in enumerate(configspace.values())
            if isinstance(hp, CategoricalHyperparameter)
        ]
        width = len(self._types) + sum(k - 1 for _, k in self._onehot)
        ratio = kwargs.get("ratio_features", 5.0 / 6.0)
        self._rf_opts["max_features"] = 0 if ratio > 1.0 else max(1, int(width * ratio))

    def _encode(self, X: np.ndarray) -> np.ndarray:
        X = self._impute_inactive(X)
        if not self._onehot:
            return X
        categorical = {i for i, _ in self._onehot}
        parts = [X[:, [j for j in range(X.shape[1]) if j not in categorical]]]
        for i, k in self._onehot:
            index = np.nan_to_num(X[:, i], nan=k - 1).astype(int).clip(0, k - 1)
            parts.append(np.eye(k)[index])
        return np.hstack(parts)

    def _train(self, X: np.ndarray, y: np.ndarray) -> OneHotRandomForest:
        self._rf = EPMRandomForest(**self._rf_opts)
        self._rf.fit(self._encode(X), y.flatten())
        return self

    def _predict(self, X: np.ndarray,
                 covariance_type: str | None = "diagonal") -> tuple[np.ndarray, np.ndarray]:
        if len(X.shape) != 2 or X.shape[1] != len(self._types):
            raise ValueError(f"expected rows of {len(self._types)} entries, got {X.shape}")
        if covariance_type != "diagonal":
            raise ValueError("`covariance_type` can only take `diagonal` for this model.")
        assert self._rf is not None
        means, vars_ = self._rf.predict(self._encode(X))
        return means.reshape((-1, 1)), vars_.reshape((-1, 1))
