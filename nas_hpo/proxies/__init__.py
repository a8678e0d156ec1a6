"""Zero-cost proxies: score an untrained network from a minibatch (a library the ``zero_cost``
objective, ``also_score``, warm starts and ``nas-hpo correlate`` share).

Every proxy is oriented so that **higher is better**, follows its paper's reference code (its
function's docstring names the reference, and where and why it deviates), runs on a copy of
the model (the model passed in is never modified, not even its BN statistics or flags) and
never raises on a degenerate network. As in every reference, the copy is in training mode
(BatchNorm on batch statistics), every parameter requires gradients, the loss is the mean
cross-entropy on the batch's labels and sums run over the weights of every ``Conv2d`` and
``Linear`` layer.

**Floors.** A proxy that cannot see a network gets its ``Proxy.worst`` value, finite and at
or below anything the proxy can score, and its name goes into ``Scores.worst``: a NaN or
infinite result (a singular kernel, NaN correlations, ``log 0``), gradients that are all
zero, and, for the cross-entropy proxies, an output that does not depend on the input (a
NAS-Bench-201 cell of ``none`` edges; the references would score the classifier's bias). The
floor is the proxy's natural lower bound where it has one: 0 for the non-negative proxies and
for ``nwot`` (the log-determinant of a non-singular integer matrix is >= 0), below the log of
the smallest positive double for ``synflow``; else ``FLOOR``. A value below the floor is
reported as the floor.

**Shared passes.** When requested together these share one forward pass of the first batch:
``grad_norm``, ``snip``, ``plain``, ``fisher`` and ``grasp`` (one cross-entropy backward;
with ``grasp`` it builds the graph for grasp's Hessian-gradient product), ``zico`` (its first
batch), ``jacob_cov`` and ``epe_nas`` (one input-Jacobian backward) and ``nwot`` (ReLU hooks).
``synflow``, ``zen`` and ``swap`` change the weights (absolute values, Gaussian re-draws) and
run on their own copies; ``l2_norm``, ``params`` and ``flops`` need no data.

**Layout.** On the CPU the copy and the image batches are in channels_last (oneDNN's fast
layout; the ``channels_last`` option of ``score`` and ``score_config``) unless grasp is asked
for (its double backward is faster in the default layout), and the copy's average pooling
runs as a depthwise convolution (``nas_hpo.training.avg_pools_as_convs``): the same scores up
to float rounding, each pass faster.

**vote** ranks a population, not one network: ``vote(rows)`` combines scores of several
architectures (Abdelfattah et al. 2021).
"""

from __future__ import annotations

from nas_hpo.proxies._registry import (
    FLOOR,
    ORDER,
    REGISTRY,
    VOTE_DEFAULT,
    Proxy,
    Scores,
    get,
    names,
)
from nas_hpo.proxies._score import PROXIES, batches, score, score_config, vote

__all__ = [
    "FLOOR",
    "ORDER",
    "PROXIES",
    "REGISTRY",
    "VOTE_DEFAULT",
    "Proxy",
    "Scores",
    "batches",
    "get",
    "names",
    "score",
    "score_config",
    "vote",
]
