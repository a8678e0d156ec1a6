"""Gradient-based proxies: grad_norm, snip, grasp, fisher, plain, synflow, jacob_cov, epe_nas
and zico."""

from __future__ import annotations

import math

import torch
from torch import nn

from nas_hpo.proxies._passes import _layers, _Run, _sum
from nas_hpo.proxies._registry import _K, FLOOR
from nas_hpo.proxies._registry import proxy as _proxy


@_proxy("grad_norm", needs=("grad",), worst=0.0)
def _grad_norm(run: _Run) -> float:
    """Σ over conv / linear layers of ‖∂L/∂W‖₂ (SamsungLabs/zero-cost-nas ``grad_norm``,
    Abdelfattah et al. 2021)."""
    s = run.shared
    return math.nan if s.silent else _sum([g.norm() for g in s.grads])


@_proxy("snip", needs=("grad",), worst=0.0)
def _snip(run: _Run) -> float:
    """SNIP (Lee et al. 2019) as zero-cost-nas ``snip``: Σ |∂L/∂m| for a multiplicative mask
    m = 1 on every weight, which equals Σ |W ⊙ ∂L/∂W| (computed that way: no mask layers)."""
    s = run.shared
    if s.silent:
        return math.nan
    return _sum([(w * g).abs().sum() for w, g in zip(s.weights, s.grads, strict=True)])


@_proxy("grasp", needs=("grasp",))
def _grasp_proxy(run: _Run) -> float:
    """GraSP (Wang et al. 2020) as zero-cost-nas ``grasp``: with g = ∂L/∂W and Hg the
    Hessian-gradient product, Σ −W ⊙ Hg, the sign zero-cost-nas chose so that higher
    correlates with accuracy. Deviation: g and Hg come from one forward pass (the reference
    runs two identical ones: with one batch, T = 1 and ``num_iters`` = 1 they give the same
    numbers)."""
    return run.shared.grasp


@_proxy("fisher", needs=("fisher",), worst=0.0)
def _fisher_proxy(run: _Run) -> float:
    """Fisher (Theis et al. 2018, Turner et al. 2020) as zero-cost-nas ``fisher``: for the
    output a of each conv / linear layer, per channel 0.5 · mean over the batch of
    (Σ_spatial a · ∂L/∂a)²; each channel's value is broadcast to the weights of that output
    channel before the sum, as there (so a channel counts ``weight[0].numel()`` times).
    Deviations: forward hooks on the layers instead of an identity inserted after each; for a
    linear layer on (N, …, C) inputs the middle dimensions are summed like spatial ones (the
    reference assumes (N, C))."""
    return run.shared.fisher


@_proxy("synflow", batch_size=None, worst=-1000.0)
def _synflow(run: _Run) -> float:
    """SynFlow (Tanaka et al. 2020) as zero-cost-nas ``synflow``: BatchNorm bypassed, every
    parameter and buffer replaced by its absolute value, float64, one all-ones input;
    R = Σ output, score Σ |W ⊙ ∂R/∂W| over conv / linear weights. Reported as the natural log
    of that sum: the raw value overflows float32 for deep networks and spans hundreds of
    orders of magnitude; the log keeps the ranking. A zero sum (no path from input to output)
    or an overflowing one gets the floor."""
    net = run.take_net()
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.forward = _identity  # type: ignore[method-assign]
    with torch.no_grad():
        for t in net.state_dict().values():
            t.abs_()
    net.double()
    device = run.batches[0][0].device
    out = net(run.like_input(torch.ones((1, *run.input_shape), dtype=torch.float64,
                                        device=device)))
    if not out.requires_grad:
        return math.nan
    out.sum().backward()
    total = _sum([(m.weight * m.weight.grad).abs().sum() for m in _layers(net)
                  if m.weight.grad is not None])
    return math.log(total) if 0 < total < math.inf else math.nan


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@_proxy("jacob_cov", needs=("jacobian",))
def _jacob_cov(run: _Run) -> float:
    """jacob_cov (Mellor et al. 2021 v1, zero-cost-nas ``jacob_cov``): J = ∂(Σ output)/∂x per
    sample, the eigenvalues v of the samples' correlation matrix of J, and
    −Σ (log(v + k) + 1/(v + k)) with k = 1e-5. Deviation: ``eigvalsh`` (the matrix is
    symmetric) where the reference calls the general ``eig``; computed in torch (numpy's
    OpenBLAS threads would compete with torch's for the cores)."""
    corr = torch.corrcoef(run.shared.jacobian).reshape(len(run.shared.jacobian), -1).cpu()
    if not bool(corr.isfinite().all()):
        return math.nan
    v = torch.linalg.eigvalsh(corr)
    return -float((torch.log(v + _K) + 1.0 / (v + _K)).sum())


@_proxy("zico", multi_batch=True, worst=FLOOR)
def _zico(run: _Run) -> float:
    """ZiCo (Li et al. 2023, SLDGroup/ZiCo ``getzico``): the cross-entropy gradient of every
    conv / linear weight on each of several batches (ZiCo's search uses 2); per layer,
    s = Σ over weights whose gradient varies across batches of mean|g| / std(g); the score
    is Σ over layers with s ≠ 0 of log s. Given one batch, its two halves are the batches
    (NASLib's convention). No layer with varying gradients (a network whose gradients are
    zero) gets the floor, where the reference returns 0. Deviation: ``getzico`` never zeroes
    the gradients between batches, so what it stores for batch i is the sum of batches 0..i;
    here each batch's own gradient, as the paper defines the statistics (and as NASLib's port
    and most others do, with ``zero_grad``)."""
    pairs = run.batches if len(run.batches) >= 2 else _halves(run.batches[0])
    grads = [run.grads(x, y, first=i == 0 and len(run.batches) >= 2)
             for i, (x, y) in enumerate(pairs)]
    if not grads[0]:
        return math.nan  # no conv / linear layer
    # Every layer's weights in one vector per batch; the statistics over batches element by
    # element (the population std, two passes), then summed per layer. (A std over a
    # stacked (batches, weights) matrix reduces along its short axis: 10× slower on a CPU.)
    flat = [torch.cat([t.reshape(-1) for t in per_batch]).double() for per_batch in grads]
    k = len(flat)
    mean = sum(flat) / k
    std = (sum((f - mean).square() for f in flat) / k).sqrt()
    mean_abs = sum(f.abs() for f in flat) / k
    ratio = torch.where(std != 0, mean_abs / std, torch.zeros((), dtype=std.dtype,
                                                              device=std.device))
    sizes = [t.numel() for t in grads[0]]
    per_layer = torch.stack([r.sum() for r in ratio.split(sizes)]).tolist()
    used = [math.log(v) for v in per_layer if v != 0]
    return math.fsum(used) if used else math.nan


def _halves(batch: tuple[torch.Tensor, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    x, y = batch
    h = len(x) // 2
    return [(x[:h], y[:h]), (x[h:], y[h:])]


@_proxy("epe_nas", needs=("jacobian",), batch_size=256, worst=0.0)
def _epe_nas(run: _Run) -> float:
    """EPE-NAS (Lopes et al. 2021, VascoLopes/EPE-NAS ``eval_score_perclass``): the input
    Jacobians J of jacob_cov grouped by label; per class c, s_c = Σ log(|corr(J_c)| + k),
    k = 1e-5 (a class with one sample gives log(1 + k), as ``corrcoef`` of one row is 1); the
    score is Σ_c |s_c| for up to 100 classes, else the mean over classes of Σ_c' |s_c − s_c'|
    with s_c divided by the class's sample count. Deviation: the class count is the network's
    number of outputs; the reference's script never passes it, so it always took the first
    branch. Its batch is 256. Computed in torch, as jacob_cov."""
    labels = run.batches[0][1].detach()
    jac = run.shared.jacobian
    many = run.shared.num_classes > 100
    terms = []
    for c in torch.unique(labels):
        rows = jac[labels == c]
        if len(rows) == 1:
            if many:
                continue  # the reference's len() of a 0-d array raises: class skipped
            terms.append(torch.full((), math.log(1 + _K), dtype=jac.dtype, device=jac.device))
            continue
        s = torch.log(torch.corrcoef(rows).abs() + _K).sum()
        terms.append(s / len(rows) if many else s)
    if not terms:
        return math.nan
    v = torch.stack(terms)
    if not many:
        return float(v.abs().sum())
    return float((v[:, None] - v[None, :]).abs().sum() / len(v))


@_proxy("plain", needs=("grad",))
def _plain(run: _Run) -> float:
    """zero-cost-nas ``plain``: Σ W ⊙ ∂L/∂W, signed."""
    s = run.shared
    if s.silent:
        return math.nan
    return _sum([(w * g).sum() for w, g in zip(s.weights, s.grads, strict=True)])


