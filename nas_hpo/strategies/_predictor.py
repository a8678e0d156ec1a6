"""Surrogate models of a study's results with an uncertainty: a neural ensemble and a GP.

Both answer ``fit(X, y)`` then ``predict(X) -> (mean, std)``. The ensemble is BANANAS'
predictor (White, Neiswanger & Savani, AAAI 2021): several small fully connected networks
trained from different initial weights on the same data; where the data pins the function down
they agree, elsewhere their disagreement (the standard deviation over members) is the
uncertainty the acquisition explores with. The members are trained together as one batched
network (weights of shape ``(members, in, out)``), which makes a proposal at a hundred
finished trials take a fraction of a second on one CPU core. The GP is scikit-learn's
``GaussianProcessRegressor`` (Matérn 5/2 with a fitted noise term), used on the same encodings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def _standardize(y: np.ndarray) -> tuple[np.ndarray, float, float]:
    mean = float(np.mean(y))
    std = float(np.std(y))
    std = std if std > 1e-12 else 1.0
    return (y - mean) / std, mean, std


@dataclass
class EnsemblePredictor:
    """An ensemble of ``members`` MLPs (``layers`` hidden layers of ``width`` ReLU units),
    each trained for ``epochs`` full-batch Adam steps on the mean absolute error (BANANAS'
    loss) of standardized targets."""

    members: int = 5
    layers: int = 3
    width: int = 32
    epochs: int = 200
    lr: float = 0.01
    weight_decay: float = 0.0
    seed: int = 0

    def fit(self, X: np.ndarray, y: np.ndarray) -> EnsemblePredictor:
        if len(X) == 0:
            raise ValueError("the predictor needs at least one finished trial")
        gen = torch.Generator().manual_seed(self.seed)
        x = torch.as_tensor(np.asarray(X, dtype=np.float32))
        ys, self._mean, self._std = _standardize(np.asarray(y, dtype=np.float64))
        target = torch.as_tensor(ys, dtype=torch.float32).expand(self.members, -1)
        sizes = [x.shape[1], *([self.width] * self.layers), 1]
        self._weights: list[tuple[torch.Tensor, torch.Tensor]] = []
        for fan_in, fan_out in zip(sizes, sizes[1:], strict=False):
            bound = 1.0 / max(fan_in, 1) ** 0.5  # nn.Linear's default initialisation
            w = (torch.rand(self.members, fan_in, fan_out, generator=gen) * 2 - 1) * bound
            b = (torch.rand(self.members, 1, fan_out, generator=gen) * 2 - 1) * bound
            self._weights.append((w.requires_grad_(), b.requires_grad_()))
        params = [p for pair in self._weights for p in pair]
        opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        for _ in range(self.epochs):
            opt.zero_grad(set_to_none=True)
            loss = (self._forward(x) - target).abs().mean()
            loss.backward()
            opt.step()
        return self

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.expand(self.members, *x.shape)
        for k, (w, b) in enumerate(self._weights):
            h = torch.baddbmm(b, h, w)
            if k < len(self._weights) - 1:
                h = torch.relu(h)
        return h.squeeze(-1)  # (members, n)

    def predict_members(self, X: np.ndarray) -> np.ndarray:
        """Every member's prediction, shape ``(members, len(X))``, in the targets' units."""
        with torch.no_grad():
            out = self._forward(torch.as_tensor(np.asarray(X, dtype=np.float32)))
        return out.double().numpy() * self._std + self._mean

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = self.predict_members(X)
        return preds.mean(axis=0), preds.std(axis=0)


@dataclass
class GPPredictor:
    """scikit-learn's Gaussian process: constant × Matérn(ν = 5/2, one length scale) + white
    noise, hyperparameters fitted by marginal likelihood (with ``restarts`` restarts)."""

    restarts: int = 2
    seed: int = 0

    def fit(self, X: np.ndarray, y: np.ndarray) -> GPPredictor:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        if len(X) == 0:
            raise ValueError("the predictor needs at least one finished trial")
        kernel = (ConstantKernel(1.0, (1e-3, 1e3)) * Matern(1.0, (1e-2, 1e2), nu=2.5)
                  + WhiteKernel(0.1, (1e-6, 1.0)))
        self._gp = GaussianProcessRegressor(kernel, normalize_y=True,
                                            n_restarts_optimizer=self.restarts,
                                            random_state=self.seed)
        import warnings

        with warnings.catch_warnings():
            # A bound reached by the length scale is a fact about the data, not a fault.
            warnings.simplefilter("ignore")
            self._gp.fit(np.asarray(X, dtype=float), np.asarray(y, dtype=float))
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self._gp.predict(np.asarray(X, dtype=float), return_std=True)
        return mean, std


PREDICTORS = {"ensemble": EnsemblePredictor, "gp": GPPredictor}
