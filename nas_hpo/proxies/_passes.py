"""The passes proxies share: a copy of the network as the references see a fresh one, one
forward pass of the first batch with the backward passes the requested proxies need (weight
gradients, GraSP's Hessian-gradient product, Fisher's activation gradients, the input
Jacobian, NASWOT's ReLU kernel), each run once per ``score`` call (``_Run``)."""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas_hpo.proxies._registry import _LAYERS
from nas_hpo.training import avg_pools_as_convs, avoid_strided_pointwise_convs

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


