"""Plain callables used as ``package.module:function`` objectives in the tests, and a toy space
with its score."""

from __future__ import annotations


def kernel_sum(config: dict) -> float:
    """Deterministic score of a resnet_blocks config (no training)."""
    return float(sum(v for k, v in config.items() if k.endswith("_kernel")))


def slow_kernel_sum(config: dict) -> float:
    """``kernel_sum`` that takes a moment, so that parallel workers overlap."""
    import time

    time.sleep(0.3)
    return kernel_sum(config)


def chain_depth(config: dict) -> float:
    """A ``chain`` config's depth, after a moment (parallel workers overlap)."""
    import time

    time.sleep(0.05)
    return float(config["n_layers"])


def hang(config: dict) -> float:
    """Never returns in a test's lifetime: for killing a worker in the middle of a trial."""
    import time

    time.sleep(3600)
    return 0.0


def sleepy_kernel_sum(config: dict) -> float:
    """``kernel_sum`` after 4 s: long enough to kill a Ray node under a running trial."""
    import time

    time.sleep(4)
    return kernel_sum(config)


def broken(config: dict) -> float:
    """An objective with a bug: every trial fails with this message."""
    raise ZeroDivisionError("the user's objective divided by zero")


def two_epochs(config: dict, ctx) -> float:
    """Reports two intermediate values, as ``train`` with ``epochs = 2`` would."""
    score = kernel_sum(config)
    for epoch in (1, 2):
        ctx.report(score * epoch / 2, epoch)
    return score


def params_of_nb201(config: dict) -> float:
    """A score that needs no training: how many operations are convolutions."""
    return float(sum(str(v).startswith("nor_conv") for v in config.values()))


def sometimes_broken(config: dict) -> float:
    """``kernel_sum``, except that a first block of kernel 3 divides by zero (a bug)."""
    if config["b1_kernel"] == 3:
        return 1 / 0
    return kernel_sum(config)


def threads_used(config: dict, ctx) -> float:
    """Records how many torch threads the trial runs with."""
    import torch

    ctx.set_attr("torch_threads", torch.get_num_threads())
    return kernel_sum(config)


def tiny_space(choices: int = 3):
    """A ``module:function`` space: three categorical parameters, ``choices ** 3``
    architectures (so that a few dozen trials must repeat some)."""
    from nas_hpo import Categorical, SearchSpace

    return SearchSpace([Categorical(f"p{i}", list(range(choices))) for i in range(3)])


def tiny_two(config: dict) -> tuple[float, float]:
    """Two values of a ``tiny_space`` config, for NSGA-II."""
    return float(config["p0"] + config["p1"]), float(config["p2"])


def nb201_convs(config: dict) -> float:
    """``params_of_nb201`` after a moment, so that two runs overlap."""
    import time

    time.sleep(0.05)
    return params_of_nb201(config)


def pid_of(config: dict, ctx) -> float:
    """Records the process that evaluated the trial."""
    import os

    ctx.set_attr("pid", os.getpid())
    return kernel_sum(config)


def tiny_two_kernels(config: dict) -> tuple[float, float]:
    """Two values of a ``resnet_blocks`` config, for NSGA-II: kernels up, widths down."""
    widths = sum(v for k, v in config.items() if k.endswith("_width"))
    return kernel_sum(config), float(widths)


def letters_space():
    """Four parameters x0..x3, each one of "a", "b", "c", "d" (256 configs)."""
    from nas_hpo import Categorical, SearchSpace

    return SearchSpace([Categorical(f"x{i}", ["a", "b", "c", "d"]) for i in range(4)])


def letters_score(config: dict) -> float:
    """A ``letters_space`` config's score: its letters' indices weighted 1..4 (best "dddd": 30)."""
    return float(sum("abcd".index(config[f"x{i}"]) * (i + 1) for i in range(4)))
