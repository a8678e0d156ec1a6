"""Datasets as in-memory tensors with fixed, seeded train / validation / test splits.

The search optimizes validation accuracy; the test split is only reported. A split depends on
the dataset and ``split_seed`` alone, so every trial of a study sees the same three splits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from nas_hpo._registry import Registry

__all__ = ["DEFAULT", "Splits", "load", "names"]

#: The embedded default: real images that need no download.
DEFAULT = "digits"


@dataclass(frozen=True)
class Splits:
    """Normalized inputs ``(N, C, H, W)`` and integer labels for each split."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]


_DATASETS: Registry[Callable[..., tuple[np.ndarray, np.ndarray, int]]] = Registry("dataset")


@_DATASETS.register("digits")
def _digits() -> tuple[np.ndarray, np.ndarray, int]:
    """scikit-learn's bundled 8×8 handwritten digits (1,797 real images, no download)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32)[:, None, :, :] / 16.0
    return x, d.target.astype(np.int64), 10


def _split(y: np.ndarray, fractions: tuple[float, float, float], seed: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified index split (every class in the same proportion in each part)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    f_train, f_val, f_test = fractions
    rest, test = train_test_split(idx, test_size=f_test, random_state=seed, stratify=y)
    train, val = train_test_split(
        rest, test_size=f_val / (f_train + f_val), random_state=seed, stratify=y[rest]
    )
    return np.sort(train), np.sort(val), np.sort(test)


@lru_cache(maxsize=8)
def load(name: str, *, split_seed: int = 0,
         fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> Splits:
    """Dataset ``name`` split into train / validation / test, normalized with the training
    split's per-channel mean and standard deviation."""
    x, y, num_classes = _DATASETS.entry(name)()
    tr, va, te = _split(y, fractions, split_seed)
    mean = x[tr].mean(axis=(0, 2, 3), keepdims=True)
    std = x[tr].std(axis=(0, 2, 3), keepdims=True) + 1e-8
    x = (x - mean) / std

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a))

    return Splits(t(x[tr]), t(y[tr]), t(x[va]), t(y[va]), t(x[te]), t(y[te]), num_classes)


def names() -> list[str]:
    return _DATASETS.names()
