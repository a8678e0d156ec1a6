"""One path of a weight-sharing supernet as a network, and SPOS's batch-norm recalibration:
what the ``supernet`` objective and the differentiable search (``nas_hpo.oneshot``) both
score a path with."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["SupernetPath", "recalibrate_batch_norms"]


class SupernetPath(nn.Module):
    """The supernet restricted to one configuration: ``path(x) = supernet(x, config)`` (the
    config may be a relaxed one)."""

    def __init__(self, supernet: nn.Module, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.supernet = supernet
        self.config = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet(x, self.config)


@torch.no_grad()
def recalibrate_batch_norms(model: nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """Recompute the BN statistics ``model`` uses as plain averages over ``batches`` (SPOS's
    recalibration: statistics accumulated over every path fit none of them); leaves it in
    eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:  # e.g. a transformer's LayerNorms keep no statistics
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    model.train()
    try:
        for xb in batches:
            model(xb)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.eval()
