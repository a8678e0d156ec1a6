"""Gradient-based one-shot search over a space's supernet: one algorithm, four methods.

Every categorical parameter of the space with more than one choice gets architecture weights
α (DARTS' initialisation: 1e-3 · N(0, 1)); the supernet runs the relaxed config they make
(``_relax``). Bilevel optimisation as in DARTS: the training split is halved (fixed by the
seed); each step first updates α on a batch of the second half (Adam, ``arch_lr``,
``arch_weight_decay``), then the network weights on a batch of the first half (SGD with
momentum, cosine from ``lr`` to ``lr_min``, gradient norm clipped at 5), each with the other's
tensors left untouched. After each epoch the *derived* architecture — each active
parameter's argmax, walked in the space's order so conditions hold — is scored by its path's
accuracy on the objective's validation split (batch norms recalibrated on training batches,
as SPOS scores a path).

Methods (references; deviations):

- ``darts`` (Liu, Simonyan & Yang, ICLR 2019): softmax(α) mixes the operations. ``order = 1``
  is the first-order approximation; ``order = 2`` the unrolled gradient
  ``∇α L_val(w', α) - ξ ∇²_{α,w} L_train(w, α) · ∇_{w'} L_val(w', α)`` with
  ``w' = w - ξ ∇w L_train`` (ξ the current weight learning rate) and the Hessian-vector
  product by central finite differences at ``ε = 0.01 / ‖∇_{w'} L_val‖`` (DARTS' eq. 8). The
  virtual step is plain SGD (DARTS' includes the momentum buffer).
- ``gdas`` (Dong & Yang, CVPR 2019): a Gumbel-softmax sample of log softmax(α) at temperature
  τ (linearly from ``tau_max`` to ``tau_min`` over the epochs), made one-hot with a
  straight-through gradient, so one operation per choice runs each step (the others'
  weights are added as their value, zero, to keep their gradients).
- ``pc_darts`` (Xu et al., ICLR 2020): DARTS on 1/``partial_channels`` of each edge's channels
  (the rest bypasses; channel shuffle), through a supernet built for it. Its edge
  normalisation (weights on a node's inputs) is what the relaxation of a space's
  input-choice parameters gives where a space has them (``darts``' input pairs); on
  ``nb201``, whose nodes sum all their inputs, there is none to add.
- ``beta_darts`` (Ye et al., CVPR 2022): DARTS plus the Beta-Decay regulariser
  ``λ_t · mean_p logsumexp(α_p)`` on the α loss, λ_t rising linearly from 0 to
  ``beta_lambda`` over the epochs — the remedy for DARTS' collapse into parameter-free
  operations chosen here (rather than DrNAS).

The collapse guard: after each epoch, the share of the derived architecture's choices that
are parameter-free operations (skip connections, pools, the zero op: what the supernet's ops
for that choice hold no weights) is recorded; above ``collapse_share`` the epoch is marked
collapsed, and with ``on_collapse = "stop"`` the search stops there and returns the last
architecture derived before the collapse (DARTS+'s early stopping, by another criterion).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from nas_hpo.oneshot._relax import Relaxed
from nas_hpo.space import Categorical, SearchSpace
from nas_hpo.training import SupernetPath, evaluate, recalibrate_batch_norms

METHODS = ("darts", "gdas", "pc_darts", "beta_darts")


@dataclass
class Epoch:
    """What one epoch of the search found."""

    epoch: int
    config: dict[str, Any]
    val_accuracy: float
    #: softmax(α) per relaxed parameter, in its choices' order.
    alphas: dict[str, list[float]]
    train_loss: float
    seconds: float
    parameter_free_share: float
    collapsed: bool
    extra: dict[str, Any] = field(default_factory=dict)


def relaxable(space: SearchSpace) -> dict[str, list[Any]]:
    """The parameters the search relaxes (categoricals of 2+ choices) and their choices; any
    other parameter with more than one value is an error naming it."""
    out: dict[str, list[Any]] = {}
    for name, p in space.params.items():
        values = p.values()
        if isinstance(p, Categorical) and len(p.choices) > 1:
            out[name] = list(p.choices)
        elif values is None or len(values) > 1:
            raise ValueError(
                f"differentiable search relaxes categorical parameters; parameter {name!r} of "
                f"space {space.name or '(unnamed)'} is {p.domain_text()}")
    return out


def finite_difference_hvp(loss: Callable[[dict[str, torch.Tensor]], torch.Tensor],
                          weights: dict[str, torch.Tensor], alphas: list[torch.Tensor],
                          vector: dict[str, torch.Tensor], eps: float) -> list[torch.Tensor]:
    """``∇²_{α,w} L · v`` by central differences: ``(∇α L(w + εv) - ∇α L(w - εv)) / 2ε``
    (DARTS' eq. 8), ``loss`` taking the weights by name."""
    grads = []
    for sign in (1.0, -1.0):
        shifted = {k: (w + sign * eps * vector[k]).detach() if k in vector else w
                   for k, w in weights.items()}
        grads.append(torch.autograd.grad(loss(shifted), alphas, allow_unused=True))
    return [(torch.zeros_like(a) if gp is None else (gp - gm) / (2 * eps))
            for a, gp, gm in zip(alphas, grads[0], grads[1], strict=True)]


class OneShotSearch:
    """A differentiable search over ``space``'s supernet; ``run`` it on data splits."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        method: Literal["darts", "gdas", "pc_darts", "beta_darts"] = "darts",
        order: int = 1,
        epochs: int = 50,
        batch_size: int = 64,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        arch_lr: float = 3e-4,
        arch_weight_decay: float = 1e-3,
        warmup_epochs: int = 0,
        tau_max: float = 10.0,
        tau_min: float = 0.1,
        partial_channels: int = 4,
        beta_lambda: float = 0.5,
        collapse_share: float = 0.5,
        on_collapse: Literal["report", "stop"] = "report",
        bn_batches: int = 4,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {order}")
        if order == 2 and method != "darts":
            raise ValueError(f"order = 2 is DARTS' unrolled gradient; method {method} is "
                             "first order")
        if not space.has_supernet:
            raise ValueError(f"space {space.name or '(unnamed)'} has no supernet; "
                             "differentiable search runs on one")
        self.space, self.method, self.order = space, method, order
        self.choices = relaxable(space)
        self.epochs, self.batch_size = epochs, batch_size
        self.lr, self.lr_min, self.momentum, self.weight_decay = lr, lr_min, momentum, weight_decay
        self.arch_lr, self.arch_weight_decay = arch_lr, arch_weight_decay
        self.warmup_epochs = warmup_epochs
        self.tau_max, self.tau_min = tau_max, tau_min
        self.partial = partial_channels if method == "pc_darts" else 1
        self.beta_lambda = beta_lambda
        self.collapse_share, self.on_collapse = collapse_share, on_collapse
        self.bn_batches, self.seed = bn_batches, seed
        self.device = torch.device(device)
        self.model: nn.Module | None = None
        gen = torch.Generator().manual_seed(seed)
        self.alphas = {n: (1e-3 * torch.randn(len(c), generator=gen)).to(self.device)
                       .requires_grad_() for n, c in self.choices.items()}
        self.tau = tau_max
        self._gumbel = torch.Generator(device=self.device).manual_seed(seed + 1)

    # ------------------------------------------------------------------ the relaxation

    def probabilities(self) -> dict[str, torch.Tensor]:
        return {n: torch.softmax(a, dim=0) for n, a in self.alphas.items()}

    def weights(self) -> dict[str, torch.Tensor]:
        """The mixing weights of a step: softmax(α), or GDAS' hard Gumbel sample."""
        if self.method != "gdas":
            return self.probabilities()
        out = {}
        for n, a in self.alphas.items():
            u = torch.rand(a.shape, generator=self._gumbel, device=a.device).clamp_(1e-10, 1)
            soft = torch.softmax((torch.log_softmax(a, 0) - torch.log(-torch.log(u))) / self.tau,
                                 dim=0)
            hard = torch.zeros_like(soft).scatter_(0, soft.argmax().view(1), 1.0)
            out[n] = hard - soft.detach() + soft  # straight-through
        return out

    def relaxed(self, weights: Mapping[str, torch.Tensor] | None = None) -> Relaxed:
        fixed = {n: p.values()[0] for n, p in self.space.params.items() if n not in self.choices}
        return Relaxed(self.weights() if weights is None else weights, self.choices, fixed,
                       partial=self.partial)

    def derive(self) -> dict[str, Any]:
        """Each active parameter's most weighted choice, in the space's order."""
        config: dict[str, Any] = {}
        for name in self.space.order:
            if not self.space.is_active(name, config):
                continue
            if name in self.choices:
                config[name] = self.choices[name][int(torch.argmax(self.alphas[name]))]
            else:
                config[name] = self.space[name].values()[0]
        return config if self.space.is_valid(config) else self.space.repair(config)

    def one_hot(self, config: Mapping[str, Any]) -> Relaxed:
        """``config`` as a relaxed config of one-hot weights: its path, run through the mixed
        operations (so also on a supernet of partial channels)."""
        weights = {}
        for n, c in self.choices.items():
            w = torch.zeros(len(c), device=self.device)
            # An inactive parameter keeps its argmax: what it weighs is zeroed by its parent.
            w[c.index(config[n]) if n in config else int(torch.argmax(self.alphas[n]))] = 1.0
            weights[n] = w
        return self.relaxed(weights)

    def parameter_free_share(self, config: Mapping[str, Any],
                             free: Mapping[str, set[Any]]) -> float:
        """The share of ``config``'s choices (among parameters that offer both kinds) that are
        parameter-free operations."""
        judged = [config[n] in free[n] for n in config
                  if n in free and 0 < len(free[n]) < len(self.choices.get(n, ()))]
        return sum(judged) / len(judged) if judged else 0.0

    # ------------------------------------------------------------------ training

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            options = {"partial_channels": self.partial} if self.partial > 1 else {}
            model = self.space.build_supernet(input_shape=input_shape, num_classes=num_classes,
                                              **options)
        return model.to(self.device)

    def optimizers(self, model: nn.Module) -> tuple[torch.optim.Optimizer,
                                                    torch.optim.Optimizer]:
        """DARTS' two: SGD with momentum for the weights, Adam (β1 0.5) for α."""
        w_opt = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=self.momentum,
                                weight_decay=self.weight_decay)
        arch_opt = torch.optim.Adam(list(self.alphas.values()), lr=self.arch_lr,
                                    betas=(0.5, 0.999), weight_decay=self.arch_weight_decay)
        return w_opt, arch_opt

    def alpha_step(self, model: nn.Module, xt: torch.Tensor, yt: torch.Tensor,
                    xv: torch.Tensor, yv: torch.Tensor, lr_now: float, epoch: int,
                    arch_opt: torch.optim.Optimizer) -> None:
        loss_fn = nn.functional.cross_entropy
        alphas = list(self.alphas.values())
        arch_opt.zero_grad(set_to_none=True)
        if self.order == 1:
            loss = loss_fn(model(xv, self.relaxed()), yv) + self._regulariser(epoch)
            grads = torch.autograd.grad(loss, alphas, allow_unused=True)
        else:
            grads = self._unrolled(model, xt, yt, xv, yv, lr_now, epoch)
        for a, g in zip(alphas, grads, strict=True):
            a.grad = torch.zeros_like(a) if g is None else g.detach()
        arch_opt.step()

    def weight_step(self, model: nn.Module, xb: torch.Tensor, yb: torch.Tensor,
                     w_opt: torch.optim.Optimizer) -> float:
        """One SGD step of the network weights under this step's mixing weights, α held
        (their weights detached: α gets no gradient)."""
        w_opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            frozen = {n: w.detach() for n, w in self.weights().items()}
        loss = nn.functional.cross_entropy(model(xb, self.relaxed(frozen)), yb)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        w_opt.step()
        return float(loss.detach())

    def _regulariser(self, epoch: int) -> torch.Tensor | float:
        if self.method != "beta_darts":
            return 0.0
        lam = self.beta_lambda * epoch / max(self.epochs, 1)
        return lam * torch.stack([torch.logsumexp(a, 0) for a in self.alphas.values()]).mean()

    def _unrolled(self, model: nn.Module, xt: torch.Tensor, yt: torch.Tensor,
                  xv: torch.Tensor, yv: torch.Tensor, xi: float, epoch: int
                  ) -> list[torch.Tensor]:
        """DARTS' second-order α gradient (module docstring)."""
        loss_fn = nn.functional.cross_entropy
        params = {k: v for k, v in model.named_parameters()}
        buffers = {k: v for k, v in model.named_buffers()}
        alphas = list(self.alphas.values())

        def train_loss(w: dict[str, torch.Tensor]) -> torch.Tensor:
            return loss_fn(functional_call(model, {**w, **buffers}, (xt, self.relaxed())), yt)

        g_train = torch.autograd.grad(train_loss(params), list(params.values()),
                                      allow_unused=True)
        virtual = {k: (w - xi * ((g if g is not None else 0) + self.weight_decay * w)).detach()
                   .requires_grad_() for (k, w), g in zip(params.items(), g_train, strict=True)}
        val = loss_fn(functional_call(model, {**virtual, **buffers}, (xv, self.relaxed())), yv)
        val = val + self._regulariser(epoch)
        g = torch.autograd.grad(val, [*alphas, *virtual.values()], allow_unused=True)
        d_alpha, d_w = g[: len(alphas)], g[len(alphas):]
        vector = {k: d for k, d in zip(virtual, d_w, strict=True) if d is not None}
        norm = torch.sqrt(sum((d * d).sum() for d in vector.values()))
        eps = 0.01 / max(float(norm), 1e-12)
        hvp = finite_difference_hvp(train_loss, params, alphas, vector, eps)
        return [(torch.zeros_like(a) if da is None else da) - xi * h
                for a, da, h in zip(alphas, d_alpha, hvp, strict=True)]

    def run(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
            *, num_classes: int, on_epoch: Callable[[Epoch], None] | None = None
            ) -> list[Epoch]:
        """Search on the training data ``(x, y)`` (halved: weights | α), scoring each epoch's
        derived architecture on ``(x_val, y_val)``; ``on_epoch`` sees every epoch."""
        model = self.build(tuple(x.shape[1:]), num_classes)
        self.model = model
        x, y = x.to(self.device), y.to(self.device)
        gen = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(len(x), generator=gen)
        half = len(x) // 2
        w_idx, a_idx = order[:half], order[half:]
        w_opt, arch_opt = self.optimizers(model)
        steps_per_epoch = max(1, math.ceil(half / self.batch_size))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            w_opt, T_max=self.epochs * steps_per_epoch, eta_min=self.lr_min)
        history: list[Epoch] = []
        for epoch in range(1, self.epochs + 1):
            start = time.perf_counter()
            if self.method == "gdas":
                frac = (epoch - 1) / max(self.epochs - 1, 1)
                self.tau = self.tau_max - (self.tau_max - self.tau_min) * frac
            pw = w_idx[torch.randperm(len(w_idx), generator=gen)]
            pa = a_idx[torch.randperm(len(a_idx), generator=gen)]
            model.train()
            losses = []
            for s in range(steps_per_epoch):
                bw = pw[s * self.batch_size: (s + 1) * self.batch_size]
                ba = pa[(s * self.batch_size) % len(pa):][: self.batch_size]
                if len(bw) < 2 or len(ba) < 2:
                    continue
                if epoch > self.warmup_epochs:
                    self.alpha_step(model, x[bw], y[bw], x[ba], y[ba],
                                     sched.get_last_lr()[0], epoch, arch_opt)
                losses.append(self.weight_step(model, x[bw], y[bw], w_opt))
                sched.step()
            mean_loss = float(np.mean(losses)) if losses else float("nan")
            if not math.isfinite(mean_loss):
                raise RuntimeError(f"the supernet's training loss became {mean_loss} in epoch "
                                   f"{epoch}")
            record = self._score(model, epoch, x[w_idx], x_val, y_val, mean_loss,
                                 time.perf_counter() - start)
            history.append(record)
            if on_epoch is not None:
                on_epoch(record)
            if record.collapsed and self.on_collapse == "stop":
                break
        return history

    @torch.no_grad()
    def _score(self, model: nn.Module, epoch: int, x_calib: torch.Tensor,
               x_val: torch.Tensor, y_val: torch.Tensor, loss: float, seconds: float) -> Epoch:
        config = self.derive()
        probe = self.relaxed(self.probabilities())
        model.eval()
        model(x_val[:2].to(self.device), probe)  # collects which choices are parameter-free
        share = self.parameter_free_share(config, probe.parameter_free)
        acc = path_accuracy(model, self.one_hot(config), x_calib, x_val.to(self.device),
                            y_val.to(self.device), self.bn_batches, self.batch_size)
        alphas = {n: [round(float(v), 5) for v in p] for n, p in self.probabilities().items()}
        extra = {"tau": round(self.tau, 4)} if self.method == "gdas" else {}
        return Epoch(epoch, config, acc, alphas, round(loss, 5), round(seconds, 3),
                     round(share, 4), share > self.collapse_share, extra)


def path_accuracy(model: nn.Module, config: Mapping[str, Any], x_calib: torch.Tensor,
                  x_val: torch.Tensor, y_val: torch.Tensor, bn_batches: int,
                  batch_size: int) -> float:
    """The validation accuracy of one path of the supernet, its batch norms' statistics
    recomputed on the first ``bn_batches`` batches of ``x_calib`` (SPOS's recalibration, as
    the ``supernet`` objective scores a path)."""
    path = SupernetPath(model, config)
    batches = [x_calib[b * batch_size: (b + 1) * batch_size].to(x_val.device)
               for b in range(bn_batches)]
    batches = [xb for xb in batches if len(xb) >= 2]
    if batches:  # else the statistics training left
        recalibrate_batch_norms(path, batches)
    return evaluate(path, x_val, y_val)[0]
