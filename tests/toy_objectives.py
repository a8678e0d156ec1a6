"""Plain callables used as ``package.module:function`` objectives in the tests."""

from __future__ import annotations


def kernel_sum(config: dict) -> float:
    """Deterministic score of a resnet_blocks config (no training)."""
    return float(sum(v for k, v in config.items() if k.endswith("_kernel")))


def slow_kernel_sum(config: dict) -> float:
    """``kernel_sum`` that takes a moment, so that parallel workers overlap."""
    import time

    time.sleep(0.3)
    return kernel_sum(config)


def hang(config: dict) -> float:
    """Never returns in a test's lifetime: for killing a worker in the middle of a trial."""
    import time

    time.sleep(3600)
    return 0.0
