"""``zero_cost``: score an untrained network from a minibatch (zero-cost proxies).

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
layout; the ``channels_last`` option of ``score``, ``score_config`` and the objective)
unless grasp is asked for (its double backward is faster in the default layout), and the
copy's average pooling runs as a depthwise convolution (``train.avg_pools_as_convs``): the
same scores up to float rounding, each pass faster.

**vote** ranks a population, not one network: ``vote(rows)`` combines scores of several
architectures; the ``zero_cost`` objective's ``"vote"`` value ranks each architecture among
those scored before it in the study (see ``ZeroCost``).
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_hpo import cost, data
from nas_hpo._objective import Context, Objective, Result
from nas_hpo.objectives import register
from nas_hpo.objectives.train import (
    avg_pools_as_convs,
    avoid_strided_pointwise_convs,
    pytorch_avg_pools,
)
from nas_hpo.space import SearchSpace

__all__ = [
    "PROXIES",
    "REGISTRY",
    "VOTE_DEFAULT",
    "Proxy",
    "Scores",
    "ZeroCost",
    "batches",
    "get",
    "score",
    "score_config",
    "vote",
]

#: The floor of the proxies without a natural lower bound.
FLOOR = -1.0e9
#: The ensemble ``vote`` averages the rank percentiles of these: Abdelfattah et al. 2021's
#: vote of synflow, jacob_cov and snip, plus NASWOT.
VOTE_DEFAULT = ("synflow", "jacob_cov", "snip", "nwot")

_LAYERS = (nn.Conv2d, nn.Linear)
_K = 1e-5  # the regulariser of jacob_cov's and epe_nas's logarithms, as in their references


# ------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Proxy:
    """A registered proxy: how it is computed and how ``score_config`` feeds it.

    ``needs`` are the products of the shared forward pass it reads; ``batch_size`` is its
    reference's minibatch (``None``: the proxy does not look at the data, only its shape);
    ``multi_batch`` proxies read every batch given, the others the first; ``repeats`` is the
    default number of random weight draws averaged (0: the proxy draws none); ``worst`` is
    its floor."""

    name: str
    fn: Callable[[_Run], float] = field(repr=False)
    needs: frozenset[str]
    batch_size: int | None
    worst: float
    multi_batch: bool = False
    repeats: int = 0

    @property
    def doc(self) -> str:
        """The reference, deviations and conventions (the function's docstring)."""
        return self.fn.__doc__ or ""


_PROXIES: dict[str, Proxy] = {}
#: Name → ``Proxy`` of every proxy that scores one network (``vote`` is not one).
REGISTRY: Mapping[str, Proxy] = MappingProxyType(_PROXIES)


def _proxy(name: str, *, needs: Sequence[str] = (), batch_size: int | None = 64,
           worst: float = FLOOR, multi_batch: bool = False, repeats: int = 0
           ) -> Callable[[Callable[[_Run], float]], Callable[[_Run], float]]:
    def deco(fn: Callable[[_Run], float]) -> Callable[[_Run], float]:
        if name in _PROXIES:
            raise ValueError(f"zero-cost proxy {name!r} is registered already")
        _PROXIES[name] = Proxy(name, fn, frozenset(needs), batch_size, worst, multi_batch,
                               repeats)
        return fn

    return deco


_VOTE_ERROR = (
    "vote ranks a population of architectures, not one network: score its members "
    "(e.g. {members}) for each architecture and combine them with zero_cost.vote(rows), or "
    "use the zero_cost objective with proxy='vote'"
)


def get(name: str) -> Proxy:
    """The registered proxy ``name``; an unknown name is a ``ValueError`` listing the known."""
    if name == "vote":
        raise ValueError(_VOTE_ERROR.format(members=", ".join(VOTE_DEFAULT)))
    try:
        return _PROXIES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown zero-cost proxy {name!r}; known: {', '.join(PROXIES)}"
        ) from None


class Scores(dict):
    """``{name: float}`` as ``score`` returns it; ``worst`` holds the names of the proxies
    that could not rank this network and were given their floor."""

    def __init__(self, values: Mapping[str, float] = (), worst: Sequence[str] = ()) -> None:
        super().__init__(values)
        self.worst: frozenset[str] = frozenset(worst)


# ------------------------------------------------------------------------------- passes


_TAKES_NET = frozenset({"synflow"})


def _copy(model: nn.Module, channels_last: bool = False) -> nn.Module:
    """A copy as the references see a fresh network: training mode, every parameter
    requiring gradients, no stored gradients; with ``channels_last``, its 4-D weights in
    that layout (the values are the same; see ``score``)."""
    return _prepare(copy.deepcopy(model), channels_last)


def _prepare(net: nn.Module, channels_last: bool) -> nn.Module:
    """``_copy``'s changes, made to ``net`` itself."""
    on_cpu = next(net.parameters(), torch.empty(0)).device.type == "cpu"
    if channels_last:
        net.to(memory_format=torch.channels_last)
        if on_cpu:
            avoid_strided_pointwise_convs(net)
    if on_cpu:
        avg_pools_as_convs(net)
    net.train()
    for p in net.parameters():
        p.requires_grad_(True)
        p.grad = None
    return net


def _layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, _LAYERS)]


def _is_relu(module: nn.Module) -> bool:
    # NASWOT hooks every module whose type name contains "ReLU"; leaf modules only, as NASLib
    # does, so that composite blocks named like ``ReLUConvBN`` do not count their input twice.
    return "ReLU" in type(module).__name__ and next(module.children(), None) is None


def _reachable(root: Any) -> set[Any]:
    """The autograd nodes a backward pass from ``root`` visits."""
    seen: set[Any] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(nxt for nxt, _ in node.next_functions if nxt is not None)
    return seen


def _ce_grads(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """∂ mean cross-entropy / ∂W for every conv / linear weight (zeros where unused)."""
    weights = [m.weight for m in _layers(net)]
    loss = F.cross_entropy(net(x), y)
    grads = (torch.autograd.grad(loss, weights, allow_unused=True)
             if loss.requires_grad and weights else [None] * len(weights))
    return [torch.zeros_like(w) if g is None else g.detach() for w, g in zip(weights, grads,
                                                                               strict=True)]


@dataclass
class _Shared:
    """What one forward pass of the first batch (and the backward passes on its graph) gave."""

    weights: list[torch.Tensor]
    num_classes: int
    grads: list[torch.Tensor] = field(default_factory=list)
    constant: bool = False  # the output does not depend on the input
    silent: bool = False  # constant, or every weight gradient is exactly zero
    fisher: float = math.nan
    grasp: float = math.nan
    jacobian: torch.Tensor | None = None  # (samples, input size), float64, on the device
    kernel: torch.Tensor | None = None


def _shared_pass(net: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 needs: frozenset[str]) -> _Shared:
    layers = _layers(net)
    weights = [m.weight for m in layers]
    acts: list[tuple[int, torch.Tensor]] = []
    relu_calls: list[tuple[nn.Module, torch.Tensor, Any]] = []
    n = len(x)

    def keep_output(i: int, _m: nn.Module, _inp: Any, out: torch.Tensor) -> torch.Tensor:
        # fisher needs ∂L/∂(layer output) at the output's own value: later ops get a copy, so
        # an in-place op downstream (a ReLU(inplace=True)) cannot change it.
        acts.append((i, out))
        return out.clone()

    def relu_kernel(module: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        # K_ij = number of units where samples i and j agree on "input > 0", computed at once
        # (the binary codes of a layer are not kept): D − s_i − s_j + 2 (C Cᵀ)_ij.
        codes = (inp[0].detach().reshape(n, -1) > 0)
        d = codes.shape[1]
        # float32 sums of 0/1 products are exact below 2^24 units.
        c = codes.to(torch.float32 if d < 2**24 else torch.float64)
        s = c.sum(1)
        k = (2 * (c @ c.T) - s[:, None] - s[None, :] + d).double()
        relu_calls.append((module, k, out.grad_fn))

    handles = []
    if "fisher" in needs:
        handles += [m.register_forward_hook(functools.partial(keep_output, i))
                    for i, m in enumerate(layers)]
    if "relu" in needs:
        handles += [m.register_forward_hook(relu_kernel) for m in net.modules() if _is_relu(m)]
    # The input requires gradients so that the graph shows whether the output depends on it;
    # backward passes that do not ask for ∂/∂x skip computing it. (Integer inputs cannot.)
    x_in = x.detach().clone().requires_grad_(x.is_floating_point())
    try:
        out = net(x_in)
    finally:
        for h in handles:
            h.remove()
    reach = _reachable(out.grad_fn)
    shared = _Shared([w.detach() for w in weights], int(out.shape[-1]))
    shared.constant = x_in.requires_grad and not any(
        getattr(node, "variable", None) is x_in for node in reach)

    if needs & {"grad", "fisher", "grasp"}:
        loss = F.cross_entropy(out, y)
        want_w = bool(needs & {"grad", "grasp"})
        targets = (weights if want_w else []) + [a for _, a in acts]
        grads: Sequence[torch.Tensor | None] = [None] * len(targets)
        if targets and loss.requires_grad:
            grads = torch.autograd.grad(loss, targets, allow_unused=True, retain_graph=True,
                                        create_graph="grasp" in needs)
        w_grads = list(grads[: len(weights)]) if want_w else []
        if want_w:
            shared.grads = [torch.zeros_like(w) if g is None else g.detach()
                            for w, g in zip(shared.weights, w_grads, strict=True)]
            shared.silent = shared.constant or not _any_nonzero(shared.grads)
        if "fisher" in needs:
            shared.fisher = math.nan if shared.constant else _fisher(layers, acts,
                                                                      grads[len(w_grads):])
        if "grasp" in needs:
            shared.grasp = _grasp(weights, w_grads, shared.silent)

    if "jacobian" in needs:
        jac = None
        if out.requires_grad:
            (jac,) = torch.autograd.grad(out, x_in, torch.ones_like(out), allow_unused=True,
                                         retain_graph=True)
        jac = torch.zeros_like(x_in) if jac is None else jac
        shared.jacobian = jac.detach().reshape(n, -1).double()

    if "relu" in needs:
        visited = {id(m) for m, _, fn in relu_calls if fn is not None and fn in reach}
        kernel = torch.zeros((n, n), dtype=torch.float64, device=x.device)
        for m, k, _ in relu_calls:
            if id(m) in visited:
                kernel += k
        shared.kernel = kernel
    return shared


def _any_nonzero(tensors: Sequence[torch.Tensor]) -> bool:
    return bool(torch.stack([t.any() for t in tensors]).any()) if tensors else False


def _fisher(layers: list[nn.Module], acts: list[tuple[int, torch.Tensor]],
            grads: Sequence[torch.Tensor | None]) -> float:
    terms, seen = [], []
    for (i, a), g in zip(acts, grads, strict=True):
        if g is None:
            continue
        seen.append(g)
        prod = a.detach() * g.detach()
        if isinstance(layers[i], nn.Linear):
            per_channel = prod.reshape(len(prod), -1, prod.shape[-1]).sum(1)
        else:
            per_channel = prod.flatten(2).sum(2)
        fan = layers[i].weight[0].numel()  # the weights each channel's value is broadcast to
        terms.append(0.5 * per_channel.double().pow(2).mean(0).sum() * fan)
    return _sum(terms) if _any_nonzero(seen) else math.nan


def _grasp(weights: list[torch.Tensor], grads: list[torch.Tensor | None],
           silent: bool) -> float:
    if silent:
        return math.nan
    z = sum(((g.detach() * g).sum() for g in grads if g is not None and g.requires_grad),
            torch.zeros((), device=weights[0].device))
    if not z.requires_grad:
        return 0.0  # the loss is linear in every weight: H g = 0
    hg = torch.autograd.grad(z, weights, allow_unused=True, retain_graph=True)
    return float(sum(((-w.detach() * h).sum() for w, h in zip(weights, hg, strict=True)
                      if h is not None), torch.zeros((), device=weights[0].device)))


class _Run:
    """The passes that the requested proxies need, each run once, on demand."""

    def __init__(self, model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]],
                 needs: frozenset[str], seed: int, repeats: Mapping[str, int],
                 channels_last: bool = False, owned: bool = False) -> None:
        self.model = model
        self.batches = batches
        self.needs = needs
        self.seed = seed
        self.repeats = repeats
        self.channels_last = channels_last
        self.owned = owned  # the caller hands the model over: ``net`` may be the model itself

    def copy(self) -> nn.Module:
        """A fresh copy of the model, in the layout of the batches."""
        return _copy(self.model, self.channels_last)

    def like_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the layout of the batches."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @functools.cached_property
    def net(self) -> nn.Module:
        """One copy for every pass that leaves the weights as they are (the model itself,
        the first time, when it was handed over)."""
        if self.owned:
            self.owned = False
            return _prepare(self.model, self.channels_last)
        return self.copy()

    def take_net(self) -> nn.Module:
        """A network that its proxy may change (synflow): the shared copy, handed over, when
        the passes on it are done (``score`` runs such proxies last; a pass asking for
        ``net`` afterwards gets a fresh copy), else what ``net`` would make (a new copy, or
        the model itself when it was handed over). Copying a network is not free: ~40 ms
        for nb201 C=16 N=5, more than synflow's own passes."""
        net = self.__dict__.pop("net", None)
        if net is None:  # no pass made one: the model itself when it was handed over
            net = self.net
            del self.__dict__["net"]
        net.train()
        for p in net.parameters():
            p.grad = None
        return net

    @functools.cached_property
    def shared(self) -> _Shared:
        return _shared_pass(self.net, *self.batches[0], self.needs)

    def grads(self, x: torch.Tensor, y: torch.Tensor, first: bool) -> list[torch.Tensor]:
        """The cross-entropy gradients of a batch (the shared pass's for the first one)."""
        if first and self.needs & {"grad", "grasp"}:
            return self.shared.grads
        return _ce_grads(self.net, x, y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.batches[0][0].shape[1:])


def _gaussian_init(net: nn.Module, gen: torch.Generator) -> None:
    """Zen-NAS's and SWAP's ``network_weight_gaussian_init``: conv and linear weights from
    N(0, 1), their biases 0; BatchNorm2d and GroupNorm weight 1, bias 0. Drawn in each
    weight's index order, whatever its memory layout (``normal_`` fills memory order)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, _LAYERS):
                w = m.weight
                if w.is_contiguous():
                    w.normal_(generator=gen)
                else:
                    w.copy_(torch.randn(w.shape, generator=gen, dtype=w.dtype, device=w.device))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
                m.weight.fill_(1.0)
                m.bias.zero_()


def _sum(values: Sequence[torch.Tensor]) -> float:
    # One synchronisation for the whole sum, not one per layer.
    if not values:
        return 0.0
    return float(torch.stack([v.detach().double() for v in values]).sum())


# ------------------------------------------------------------------------------- proxies


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


@_proxy("l2_norm", batch_size=None, worst=0.0)
def _l2_norm(run: _Run) -> float:
    """zero-cost-nas ``l2_norm``: Σ over conv / linear layers of ‖W‖₂ of the weights as
    given."""
    with torch.no_grad():
        weights = [m.weight for m in _layers(run.model)]
        return _sum([w.norm() for w in weights])


@_proxy("plain", needs=("grad",))
def _plain(run: _Run) -> float:
    """zero-cost-nas ``plain``: Σ W ⊙ ∂L/∂W, signed."""
    s = run.shared
    if s.silent:
        return math.nan
    return _sum([(w * g).sum() for w, g in zip(s.weights, s.grads, strict=True)])


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


#: Every proxy name, ``vote`` last: what a study file's ``proxy`` / ``also_score`` may name.
PROXIES: tuple[str, ...] = (*_PROXIES, "vote")


# ------------------------------------------------------------------------------- scoring


def _unique(names: str | Sequence[str]) -> list[str]:
    names = [names] if isinstance(names, str) else list(names)
    for n in names:
        get(n)
    return list(dict.fromkeys(names))


def _as_batches(data: Any, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    pairs = [data] if isinstance(data[0], torch.Tensor) else list(data)
    if not pairs:
        raise ValueError("data: give (x, y) or a list of (x, y) batches")
    return [(x.to(device), y.to(device)) for x, y in pairs]


def _use_channels_last(model: nn.Module, x: torch.Tensor, device: torch.device,
                       needs: frozenset[str]) -> bool:
    """The default layout: channels_last for image batches into a convolutional network on
    the CPU, where it was measured (``benchmarks/zero_cost_speed.py --layout``), unless
    grasp is asked for: PyTorch's double-backward formulas reduce channels_last tensors
    slowly (BatchNorm's sums over the batch, ReLU's gradient on mixed layouts), so grasp
    alone is ~1.4× and the gradient-based set ~1.2× faster in the default layout (nb201
    C=16 N=5, 2 CPU threads). On a GPU the default layout until it is measured there (no GPU
    has been lent to this project)."""
    return (x.dim() == 4 and x.is_floating_point() and device.type == "cpu"
            and "grasp" not in needs
            and any(isinstance(m, nn.Conv2d) for m in model.modules()))


def score(model: nn.Module, names: str | Sequence[str], *,
          data: tuple[torch.Tensor, torch.Tensor] | Sequence[tuple[torch.Tensor, torch.Tensor]],
          seed: int = 0, repeats: Mapping[str, int] | None = None,
          channels_last: bool | None = None, _owned: bool = False) -> Scores:
    """The proxies ``names`` of ``model`` (any ``nn.Module`` classifier returning logits
    ``(N, classes)``), higher is better for each; ``model`` is not modified.

    ``data`` is one batch ``(x, y)`` or a list of batches: every proxy scores the first,
    ``zico`` all of them (or the two halves of a single one). ``seed`` seeds the random
    draws (zen's and swap's Gaussian weights and inputs; dropout, where a network has it);
    ``repeats`` overrides the number of draws averaged by zen and swap (``{"swap": 8}``).
    Returns ``Scores``: ``{name: float}`` in the order asked, with ``.worst`` naming the
    proxies that got their floor.

    ``channels_last`` runs the passes with the copy's 4-D weights and the batches in that
    layout (``None``: for image batches into a network with ``Conv2d`` layers on the CPU,
    unless ``grasp`` is among ``names``). The scores are the same up to float rounding; on
    a CPU it is oneDNN's fast layout (nb201 C=16 N=5, batch 64: a forward+backward ~1.6×
    faster, each proxy that runs the batch ~1.3-1.6× faster), except for grasp's double
    backward, which is ~1.4× slower there (README, "Proxy speed"). On the CPU the copy's
    average pooling runs as a depthwise convolution (``train.avg_pools_as_convs``; PyTorch's
    CPU pooling is 4-8× slower).

    ``_owned`` (internal: ``score_config``) hands ``model`` over to be changed: its passes
    run on it instead of on a copy (a deep copy of nb201 C=16 N=5 costs ~40 ms, as much as
    scoring synflow)."""
    wanted = _unique(names)
    proxies = [_PROXIES[n] for n in wanted]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    draws = {p.name: p.repeats for p in _PROXIES.values() if p.repeats}
    for name, k in (repeats or {}).items():
        if name not in draws or int(k) < 1:
            raise ValueError(f"repeats: {name!r}: {k!r}; give >= 1 draws for one of "
                             f"{', '.join(draws)}")
        draws[name] = int(k)
    pairs = _as_batches(data, device)
    needs = frozenset().union(*(p.needs for p in proxies))
    if channels_last is None:
        channels_last = _use_channels_last(model, pairs[0][0], device, needs)
    elif channels_last and pairs[0][0].dim() != 4:
        raise ValueError(f"channels_last: needs 4-D image batches, got shape "
                         f"{tuple(pairs[0][0].shape)}")
    if channels_last:
        pairs = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in pairs]
    run = _Run(model, pairs, needs, seed, draws, channels_last, owned=_owned)
    raw: dict[str, float] = {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        # Proxies that change their network (synflow: |W|, float64) go last and take the
        # shared copy (``_Run.take_net``); they draw no random numbers, so the others' draws
        # are as in the order asked.
        for p in sorted(proxies, key=lambda p: p.name in _TAKES_NET):
            raw[p.name] = p.fn(run)
    values, worst = {}, []
    for p in proxies:
        v = float(raw[p.name])
        if not math.isfinite(v) or v < p.worst:
            v = p.worst
            worst.append(p.name)
        values[p.name] = v
    return Scores(values, worst)


def vote(rows: Sequence[Mapping[str, float]], names: Sequence[str] = VOTE_DEFAULT
         ) -> list[float]:
    """The ensemble of Abdelfattah et al. 2021 over a population: for each architecture (a
    row of scores), the mean over ``names`` of its rank percentile among ``rows`` (the
    fraction of the other rows it beats, ties counting half): 1 = best on every proxy,
    0 = worst; 0.5 for a population of one."""
    n = len(rows)
    if n == 0:
        return []
    if n == 1:
        return [0.5]
    from scipy.stats import rankdata

    ranks = [(rankdata([float(r[m]) for r in rows]) - 1) / (n - 1) for m in names]
    return [float(v) for v in np.mean(ranks, axis=0)]


def batches(splits: data.Splits, batch_size: int, n_batches: int, seed: int
            ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n_batches`` disjoint training batches of ``batch_size`` drawn with ``seed``. The
    order is one permutation, so a smaller batch size gives the first images of a larger one
    and every architecture of a study is scored on the same images."""
    need = batch_size * n_batches
    if need > len(splits.y_train):
        raise ValueError(f"batch_size: {n_batches} batch(es) of {batch_size} need {need} "
                         f"training images; the split has {len(splits.y_train)}")
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(splits.y_train), generator=gen)
    return [(splits.x_train[idx[i * batch_size:(i + 1) * batch_size]],
             splits.y_train[idx[i * batch_size:(i + 1) * batch_size]]) for i in range(n_batches)]


def score_config(space: SearchSpace, config: Mapping[str, Any], names: str | Sequence[str], *,
                 dataset: str = data.DEFAULT, data_dir: str | None = None,
                 download: bool = True, split_seed: int = 0, seed: int = 0,
                 data_seed: int | None = None, batch_size: int | None = None,
                 n_batches: int = 2, device: str = "cpu",
                 repeats: Mapping[str, int] | None = None,
                 channels_last: bool | None = None) -> Scores:
    """The proxies ``names`` of ``config``'s network, built for ``dataset``'s input after
    ``torch.manual_seed(seed)``, scored on batches of its training split drawn with
    ``data_seed`` (``seed`` where ``None``).

    With ``batch_size=None`` each proxy gets its reference's batch size (``Proxy.batch_size``)
    and proxies with the same one share their passes; ``zico`` gets ``n_batches`` batches.
    This is what the ``zero_cost`` objective, ``also_score``, warm starts and
    ``nas-hpo correlate`` call."""
    wanted = _unique(names)
    splits = data.load(dataset, data_dir=data_dir, download=download, split_seed=split_seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = space.build(dict(config), input_shape=splits.input_shape,
                            num_classes=splits.num_classes)
    model = model.to(device)
    groups: dict[int, list[str]] = {}
    free = []
    for name in wanted:
        size = batch_size or _PROXIES[name].batch_size
        if size is None:
            free.append(name)
        else:
            groups.setdefault(size, []).append(name)
    if free:  # data-free proxies (they read the input shape only) join any group
        groups.setdefault(next(iter(groups), 1), []).extend(free)
    out: dict[str, float] = {}
    worst: set[str] = set()
    draw_seed = seed if data_seed is None else data_seed
    for i, (size, group) in enumerate(groups.items()):
        k = n_batches if any(_PROXIES[n].multi_batch for n in group) else 1
        # The network is ours: the last group may change it rather than copy it.
        got = score(model, group, data=batches(splits, size, k, draw_seed), seed=seed,
                    repeats=repeats, channels_last=channels_last,
                    _owned=i == len(groups) - 1)
        out.update(got)
        worst |= got.worst
    return Scores({n: out[n] for n in wanted}, [n for n in wanted if n in worst])


# ------------------------------------------------------------------------------- objective


@register("zero_cost")
@dataclass(frozen=True)
class ZeroCost(Objective):
    """Zero-cost proxies of the untrained network as the study's values, one per proxy, each
    maximized.

    The network is built with the trial's seed (``ctx.seed``), as every objective does;
    the batches come from the training split drawn with ``data_seed``, the same images for
    every architecture of the study (``None``: drawn per trial from ``ctx.seed``). Every
    computed proxy is stored as ``zc_<name>``, with ``zc_worst`` (the proxies floored),
    ``zc_time_s`` and ``zc_data`` (what was scored).

    ``"vote"`` is the mean rank percentile of the ``vote_of`` proxies of this architecture
    among the completed trials of the study that stored them, itself included (outside an
    Optuna study, e.g. in a Ray worker, among the architectures this objective scored in
    this process). It is the population vote of Abdelfattah et al. 2021 as far as the
    population is known when the trial runs: early trials are ranked among few, so the
    value of the same architecture drifts as the study grows; ``vote(rows)`` over the final
    ``zc_*`` attributes gives the vote over the whole population."""

    proxy: str | list[str] = "synflow"
    dataset: str = data.DEFAULT
    data_dir: str | None = None
    download: bool = True
    split_seed: int = 0
    batch_size: int | None = None
    n_batches: int = 2
    data_seed: int | None = 0
    device: str = "cpu"
    vote_of: list[str] | tuple[str, ...] = VOTE_DEFAULT
    repeats: dict[str, int] | None = None
    channels_last: bool | None = None

    def __post_init__(self) -> None:
        names = [self.proxy] if isinstance(self.proxy, str) else list(self.proxy)
        if not names:
            raise ValueError("proxy: give at least one of " + ", ".join(PROXIES))
        if len(set(names)) != len(names):
            raise ValueError(f"proxy: {names!r} names a proxy twice")
        for key, given in (("proxy", [n for n in names if n != "vote"]),
                           ("vote_of", list(self.vote_of))):
            for n in given:
                if n not in _PROXIES:
                    raise ValueError(f"{key}: unknown zero-cost proxy {n!r}; known: "
                                     f"{', '.join(PROXIES if key == 'proxy' else _PROXIES)}")
        if "vote" in names and not self.vote_of:
            raise ValueError("vote_of: give the proxies that vote")
        if self.dataset not in data.names():
            raise ValueError(f"dataset: unknown {self.dataset!r}; known: {', '.join(data.names())}")
        if self.batch_size is not None and self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (BatchNorm and correlations need two "
                             f"samples), got {self.batch_size}")
        if self.n_batches < 1:
            raise ValueError(f"n_batches must be >= 1, got {self.n_batches}")
        draws = [p.name for p in _PROXIES.values() if p.repeats]
        for name, k in (self.repeats or {}).items():
            if name not in draws or not isinstance(k, int) or k < 1:
                raise ValueError(f"repeats: {name} = {k!r}; give >= 1 draws for one of "
                                 f"{', '.join(draws)}")
        try:
            dev = torch.device(self.device)
        except RuntimeError as e:
            raise ValueError(f"device: {e}") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device: {self.device!r} asked for, but CUDA is not available")
        object.__setattr__(self, "directions", ("maximize",) * len(names))
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_seen", [])

    @property
    def cost_device(self) -> str:  # type: ignore[override]
        return self.device

    def _splits(self) -> data.Splits:
        return data.load(self.dataset, data_dir=self.data_dir, download=self.download,
                         split_seed=self.split_seed)

    def model_input(self) -> tuple[tuple[int, ...], int]:
        splits = self._splits()
        return splits.input_shape, splits.num_classes

    def __call__(self, config: Mapping[str, Any], *, space: SearchSpace, ctx: Context) -> Result:
        names: list[str] = self._names  # type: ignore[attr-defined]
        members = list(self.vote_of) if "vote" in names else []
        needed = list(dict.fromkeys([n for n in names if n != "vote"] + members))
        data_seed = ctx.seed if self.data_seed is None else self.data_seed
        start = time.perf_counter()
        scores = score_config(
            space, config, needed, dataset=self.dataset, data_dir=self.data_dir,
            download=self.download, split_seed=self.split_seed, seed=ctx.seed,
            data_seed=data_seed, batch_size=self.batch_size, n_batches=self.n_batches,
            device=self.device, repeats=self.repeats, channels_last=self.channels_last,
        )
        values = dict(scores)
        if members:
            values["vote"] = self._vote({m: scores[m] for m in members}, ctx)
        attrs: dict[str, Any] = {f"zc_{k}": v for k, v in values.items()}
        attrs["zc_worst"] = sorted(scores.worst)
        attrs["zc_time_s"] = round(time.perf_counter() - start, 4)
        attrs["zc_data"] = {
            "dataset": self.dataset,
            "data_seed": data_seed,
            "batch_size": {n: self.batch_size or _PROXIES[n].batch_size for n in needed},
            "n_batches": self.n_batches,
        }
        return Result(tuple(values[n] for n in names), attrs)

    def _vote(self, row: dict[str, float], ctx: Context) -> float:
        study = getattr(getattr(ctx, "trial", None), "study", None)
        if study is not None:
            import optuna

            keys = [f"zc_{m}" for m in self.vote_of]
            trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            population = [{m: t.user_attrs[k] for m, k in zip(self.vote_of, keys, strict=True)}
                          for t in trials if all(k in t.user_attrs for k in keys)]
        else:
            population = list(self._seen)  # type: ignore[attr-defined]
            self._seen.append(row)  # type: ignore[attr-defined]
        return vote([*population, row], self.vote_of)[-1]
