"""Proxies of activations and weights: nwot, zen, swap, l2_norm, and the size baselines params
and flops."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from nas_hpo import cost
from nas_hpo.proxies._passes import _gaussian_init, _is_relu, _layers, _Run, _sum
from nas_hpo.proxies._registry import proxy as _proxy
from nas_hpo.training import pytorch_avg_pools


@_proxy("nwot", needs=("relu",), batch_size=128, worst=0.0)
def _nwot(run: _Run) -> float:
    """NASWOT (Mellor et al. 2021 v2, BayesWatch/nas-without-training ``hook_logdet``): for
    each sample the binary code of which inputs of every ReLU are > 0; K_ij = Σ over ReLUs of
    the number of units where samples i and j agree; score log|det K|. As there, only ReLUs
    that the backward pass from the output reaches count (found by walking the autograd
    graph rather than running the backward) and the batch is 128. Deviation: ReLUs are the
    leaf modules whose type name contains "ReLU" (ReLU, ReLU6, LeakyReLU…); the reference's
    substring test also hooks composite blocks such as NAS-Bench-201's ``ReLUConvBN``,
    counting their input twice (NASLib excludes those too). K is an integer matrix, so a
    non-singular K has log|det K| ≥ 0: a singular one (or a network without ReLUs) gets 0."""
    sign, logdet = torch.linalg.slogdet(run.shared.kernel)
    return float(logdet) if float(sign) != 0 else math.nan


@_proxy("zen", batch_size=64, repeats=1)
def _zen(run: _Run) -> float:
    """Zen-score (Lin et al. 2021, idstcv/ZenNAS ``compute_zen_score``): weights re-drawn
    (``_gaussian_init``), Gaussian inputs x and x + γε with γ = 0.01 in training mode;
    log of the batch mean of Σ_{C,H,W} |f(x) − f(x + γε)| plus Σ over BatchNorm2d of
    log √mean(running_var), f the feature map before global average pooling. ``repeats``
    draws are averaged: ZenNAS's search uses 1 (its stand-alone script 32). Deviations: f is
    the input of the last ``AdaptiveAvgPool2d`` called (ZenNAS's ``forward_pre_GAP``), or of
    the last ``Linear`` called where the network pools otherwise; the draws come from a
    generator seeded with ``seed`` (weights in module order, then x, then ε); BN statistics
    are reset first, as the reference scores freshly built networks."""
    net = run.copy()
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            m.reset_running_stats()
    seen: list[tuple[bool, torch.Tensor]] = []

    def keep(m: nn.Module, inp: tuple[torch.Tensor, ...], _out: Any) -> None:
        seen.append((isinstance(m, nn.AdaptiveAvgPool2d), inp[0].detach()))

    handles = [m.register_forward_hook(keep) for m in net.modules()
               if isinstance(m, (nn.AdaptiveAvgPool2d, nn.Linear))]

    def features(x: torch.Tensor) -> torch.Tensor | None:
        seen.clear()
        net(x)
        pooled = [t for is_pool, t in seen if is_pool]
        return pooled[-1] if pooled else (seen[-1][1] if seen else None)

    x = run.batches[0][0]
    gen = torch.Generator(device=x.device).manual_seed(run.seed)
    scores = []
    try:
        with torch.no_grad():
            for _ in range(run.repeats["zen"]):
                _gaussian_init(net, gen)
                a = run.like_input(torch.randn(x.shape, generator=gen, device=x.device,
                                               dtype=torch.float32))
                b = run.like_input(torch.randn(x.shape, generator=gen, device=x.device,
                                               dtype=torch.float32))
                fa, fb = features(a), features(a + 0.01 * b)
                if fa is None or fb is None:
                    return math.nan
                delta = float((fa - fb).abs().flatten(1).sum(1).mean())
                bn = sum(math.log(math.sqrt(float(m.running_var.mean())))
                         for m in net.modules()
                         if isinstance(m, nn.BatchNorm2d) and m.running_var is not None)
                scores.append(math.log(delta) + bn if delta > 0 else math.nan)
    finally:
        for h in handles:
            h.remove()
    return float(np.mean(scores))


@_proxy("l2_norm", batch_size=None, worst=0.0)
def _l2_norm(run: _Run) -> float:
    """zero-cost-nas ``l2_norm``: Σ over conv / linear layers of ‖W‖₂ of the weights as
    given."""
    with torch.no_grad():
        weights = [m.weight for m in _layers(run.model)]
        return _sum([w.norm() for w in weights])


@_proxy("swap", batch_size=16, worst=0.0, repeats=32)
def _swap(run: _Run) -> float:
    """SWAP-Score (Peng et al. ICLR 2024, pym1024/SWAP ``SampleWiseActivationPatterns``):
    weights re-drawn (``_gaussian_init``), one forward of the batch in training mode, the
    sign of every ReLU output whose input is a 4-D feature map; each unit's signs over the
    batch form a vector and the score is the number of distinct vectors, averaged over
    ``repeats`` draws (SWAP's evaluation: 32 draws, batch 16). Without the optional
    parameter-count regulariser, whose μ and σ are tuned per space. Deviations: ReLUs are the
    leaf modules whose type name contains "ReLU" (the reference: ``nn.ReLU`` only, so ReLU6
    networks would score nothing); the draws come from a generator seeded with ``seed``;
    each unit's pattern is packed into numbers before counting (the same count, much faster
    than ``unique`` over rows). A network without such ReLUs gets the floor, where the
    reference returns nothing."""
    net = run.copy()
    x = run.batches[0][0]
    outs: list[torch.Tensor] = []

    def keep(_m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        if inp[0].dim() == 4:
            outs.append(out.detach())

    relus = [m for m in net.modules() if _is_relu(m)]
    handles = [m.register_forward_hook(keep) for m in relus]
    nonnegative = all(type(m) in (nn.ReLU, nn.ReLU6) for m in relus)
    gen = torch.Generator(device=x.device).manual_seed(run.seed)
    counts = []
    try:
        with torch.no_grad():
            for _ in range(run.repeats["swap"]):
                _gaussian_init(net, gen)
                outs.clear()
                net(x)
                if not outs:
                    return math.nan
                counts.append(_distinct_patterns(outs, len(x), nonnegative))
    finally:
        for h in handles:
            h.remove()
    return float(np.mean(counts))


def _units(out: torch.Tensor, n: int) -> torch.Tensor:
    """``out`` as (samples, units) without a copy: the units in memory order (their order
    does not matter for counting patterns), so a channels_last map is not reordered."""
    if out.dim() == 4 and not out.is_contiguous() and out.is_contiguous(
            memory_format=torch.channels_last):
        out = out.permute(0, 2, 3, 1)
    return out.reshape(n, -1)


def _distinct_patterns(outs: list[torch.Tensor], n: int, nonnegative: bool = False) -> int:
    """Number of distinct per-unit sign vectors over the ``n`` samples. Each unit's signs
    (−1, 0, 1) are the digits of a balanced-ternary number, 33 samples to a float64 (exact:
    |code| ≤ (3³³ − 1)/2 < 2⁵³), by matrix-vector products rather than a Python loop, and
    the codes are sorted. ``nonnegative`` outputs (a ReLU's) have 0/1 signs: up to 20
    samples their binary codes (exact in float32) are counted in a table of 2ⁿ entries
    instead of sorted (~12× faster)."""
    if nonnegative and n <= 20:
        powers = torch.tensor([2.0 ** j for j in range(n)], device=outs[0].device)
        codes = torch.cat([(torch.sign(_units(out, n)).float().T @ powers).long()
                           for out in outs])
        return int(torch.count_nonzero(torch.bincount(codes, minlength=2 ** n)))
    chunks = [(i, min(i + 33, n)) for i in range(0, n, 33)]
    columns = []
    for out in outs:
        signs = torch.sign(_units(out, n)).double()  # (n, units)
        cols = []
        for a, b in chunks:
            powers = torch.tensor([3.0 ** j for j in range(b - a)], dtype=torch.float64,
                                  device=out.device)
            cols.append(signs[a:b].T @ powers)
        columns.append(torch.stack(cols, 1))
    # As integers (exact: < 2⁵³): torch sorts int64 ~6× faster than float64 on a CPU.
    codes = torch.cat(columns).long()
    if codes.shape[1] == 1:
        return int(torch.unique(codes[:, 0]).numel())
    # Distinct rows without torch.unique(dim=0) (a slow lexicographic sort): number the
    # distinct values of each column and fold them into one dense id, column by column.
    ids = torch.unique(codes[:, 0], return_inverse=True)[1]
    for j in range(1, codes.shape[1]):
        col = torch.unique(codes[:, j], return_inverse=True)[1]
        ids = torch.unique(ids * (int(col.max()) + 1) + col, return_inverse=True)[1]
    return int(ids.max()) + 1


@_proxy("params", batch_size=None, worst=0.0)
def _params(run: _Run) -> float:
    """The parameter count (``nas_hpo.cost.count_params``), the baseline every proxy paper
    compares against (Abdelfattah et al. 2021; Li et al. 2023)."""
    return float(cost.count_params(run.model))


@_proxy("flops", batch_size=None, worst=0.0)
def _flops(run: _Run) -> float:
    """FLOPs of one image (``nas_hpo.cost.count_flops``: PyTorch's counter, 2 per
    multiply-add), the other size baseline. NASLib counts multiply-adds: half of this.
    Counted on the model as given (the count leaves it as it was), with PyTorch's pooling
    where a copy computes it as a convolution."""
    with pytorch_avg_pools(run.model) as model:
        return float(cost.count_flops(model, run.input_shape))


