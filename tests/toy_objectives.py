"""Plain callables used as ``package.module:function`` objectives in the tests."""

from __future__ import annotations


def kernel_sum(config: dict) -> float:
    """Deterministic score of a resnet_blocks config (no training)."""
    return float(sum(v for k, v in config.items() if k.endswith("_kernel")))
