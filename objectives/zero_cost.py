"""``zero_cost``: score an untrained network from one minibatch (zero-cost proxies).

Every proxy is oriented so that **higher is better**, works on a copy of the model (the model
passed in is never modified), and never raises on a degenerate network: a score that comes out
NaN or infinite (a cell of ``none`` edges whose output does not depend on its input, an
all-zero gradient under a logarithm) becomes ``WORST``. Which reference each proxy follows, and
where it deviates, is in its function's docstring; the shared conventions, as in
SamsungLabs/zero-cost-nas (Abdelfattah et al. 2021), are: the network in training mode
(BatchNorm on batch statistics), cross-entropy on the batch's labels, sums over the weights of
every ``Conv2d`` and ``Linear`` layer.

Proxies that use the same pass share it when requested together: grad_norm, snip, plain and
fisher one cross-entropy forward/backward; jacob_cov and epe_nas one input-Jacobian pass;
nwot and swap one forward with ReLU hooks.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_hpo import cost, data
from nas_hpo._objective import Context, Objective, Result
from nas_hpo.objectives import register
from nas_hpo.space import SearchSpace

__all__ = ["PROXIES", "VOTE_DEFAULT", "WORST", "ZeroCost", "score", "score_config", "vote"]

#: The score of a network a proxy cannot rank (NaN / inf result): below any real score.
WORST = -1.0e9
#: The ensemble ``vote`` averages the rank of these (Abdelfattah et al. 2021's choice of
#: synflow + jacob_cov + snip, plus NASWOT).
VOTE_DEFAULT = ("synflow", "jacob_cov", "snip", "nwot")

_LAYERS = (nn.Conv2d, nn.Linear)


def _weights(model: nn.Module) -> list[nn.Parameter]:
    return [m.weight for m in model.modules() if isinstance(m, _LAYERS)]


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else WORST


def _copy(model: nn.Module) -> nn.Module:
    clone = copy.deepcopy(model)
    clone.train()
    for p in clone.parameters():
        p.requires_grad_(True)
        p.grad = None
    return clone


# --- proxies sharing one cross-entropy forward/backward -----------------------------------

def _gradient_family(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     names: set[str]) -> dict[str, float]:
    """grad_norm, snip, plain, fisher from one forward/backward of the cross-entropy.

    - ``grad_norm`` (zero-cost-nas ``grad_norm``): Σ over layers of ‖∂L/∂W‖₂.
    - ``snip`` (Lee et al. 2019, zero-cost-nas ``snip``): Σ |W ⊙ ∂L/∂W|, the gradient of the
      loss with respect to a multiplicative mask of ones, computed without the mask since the
      two are equal.
    - ``plain`` (zero-cost-nas ``plain``): Σ W ⊙ ∂L/∂W (signed).
    - ``fisher`` (Theis et al. 2018 via Turner et al. 2020, zero-cost-nas ``fisher``): for the
      output activation ``a`` of each layer, 0.5 · mean over the batch of (Σ_spatial a·∂L/∂a)²,
      summed over channels and layers. Deviation: zero-cost-nas inserts an identity after each
      layer to hook; forward hooks on the layers' outputs give the same ``a`` and ``∂L/∂a``.
    """
    model = _copy(model)
    acts: list[torch.Tensor] = []
    hooks = []
    if "fisher" in names:
        def keep(_m: nn.Module, _i: Any, out: torch.Tensor) -> None:
            if out.requires_grad:
                out.retain_grad()
                acts.append(out)

        hooks = [m.register_forward_hook(keep) for m in model.modules() if isinstance(m, _LAYERS)]
    try:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    finally:
        for h in hooks:
            h.remove()
    out: dict[str, float] = {}
    pairs = [(w.detach(), w.grad.detach() if w.grad is not None else torch.zeros_like(w))
             for w in _weights(model)]
    if "grad_norm" in names:
        out["grad_norm"] = sum(float(g.norm()) for _, g in pairs)
    if "snip" in names:
        out["snip"] = sum(float((w * g).abs().sum()) for w, g in pairs)
    if "plain" in names:
        out["plain"] = sum(float((w * g).sum()) for w, g in pairs)
    if "fisher" in names:
        total = 0.0
        for a in acts:
            if a.grad is None:
                continue
            prod = a.detach() * a.grad
            if prod.dim() == 4:
                prod = prod.sum(dim=(2, 3))
            total += float((0.5 * prod.pow(2).mean(0)).sum())
        out["fisher"] = total
    return out


def grasp(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """GraSP (Wang et al. 2020) as zero-cost-nas ``grasp``: with g = ∂L/∂W (no graph) and
    Hg the Hessian-gradient product (gradient of gᵀ·∂L/∂W), the score is Σ −W ⊙ Hg. Deviation:
    one batch instead of zero-cost-nas' split into ``split_data`` chunks (same sum for a loss
    that is a mean, up to the chunks' weighting)."""
    model = _copy(model)
    weights = _weights(model)
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, weights, allow_unused=True)
    grads = [g.detach() if g is not None else torch.zeros_like(w) for g, w in zip(grads, weights,
                                                                                   strict=True)]
    loss = F.cross_entropy(model(x), y)
    grads2 = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    z = sum((g2 * g).sum() for g2, g in zip(grads2, grads, strict=True) if g2 is not None)
    if not isinstance(z, torch.Tensor) or not z.requires_grad:
        return 0.0
    hg = torch.autograd.grad(z, weights, allow_unused=True)
    return sum(float((-w.detach() * h).sum()) for w, h in zip(weights, hg, strict=True)
               if h is not None)


def synflow(model: nn.Module, x: torch.Tensor) -> float:
    """SynFlow (Tanaka et al. 2020) as zero-cost-nas ``synflow``: in float64, BatchNorm
    bypassed (zero-cost-nas builds the network without BN), weights replaced by their absolute
    values, an all-ones input of one sample; R = Σ output, score = Σ |W ⊙ ∂R/∂W| over conv and
    linear weights. Reported as the natural log of that sum (its raw value overflows float32
    for deep networks); a zero sum (no path from input to output) gives ``WORST``."""
    model = _copy(model).double()
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(module, child_name, nn.Identity())
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    model(ones).sum().backward()
    total = sum(float((w.detach() * w.grad).abs().sum()) for w in _weights(model)
                if w.grad is not None)
    return math.log(total) if total > 0 else WORST


def _input_jacobian(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    model = _copy(model)
    x = x.clone().requires_grad_(True)
    out = model(x)
    if out.requires_grad:
        out.backward(torch.ones_like(out))
    if x.grad is None:  # the output does not depend on the input (e.g. only `none` edges)
        return np.zeros((len(x), x[0].numel()))
    return x.grad.detach().reshape(len(x), -1).cpu().double().numpy()


def jacob_cov(jacobian: np.ndarray) -> float:
    """jacob_cov (Mellor et al. 2021 v1, zero-cost-nas ``jacob_cov``): the input Jacobian of
    the summed output per sample, its sample correlation matrix's eigenvalues v, and
    −Σ (log(v + k) + 1/(v + k)) with k = 1e-5."""
    with np.errstate(all="ignore"):
        corr = np.corrcoef(jacobian)
        if not np.isfinite(corr).all():
            return WORST
        v = np.linalg.eigvalsh(corr)
        k = 1e-5
        return _finite(-float(np.sum(np.log(np.clip(v, 0, None) + k) + 1.0 / (v + k))))


def epe_nas(jacobian: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """EPE-NAS (Lopes et al. 2021, the authors' ``eval_score_perclass``): per class, the sum of
    log(|corr| + k) over the correlation matrix of that class's input Jacobians (k = 1e-5);
    the score is Σ_c |s_c| for up to 100 classes, else the mean pairwise |s_c − s_c'|.
    Classes with a single sample have no correlation matrix and are skipped, as there."""
    k = 1e-5
    per_class = {}
    with np.errstate(all="ignore"):
        for c in np.unique(labels):
            rows = jacobian[labels == c]
            if len(rows) < 2:
                continue
            corr = np.corrcoef(rows)
            s = float(np.sum(np.log(np.abs(corr) + k)))
            if num_classes > 100:
                s /= len(corr)
            per_class[int(c)] = s
    if not per_class:
        return WORST
    values = np.array(list(per_class.values()))
    if num_classes <= 100:
        return _finite(float(np.abs(values).sum()))
    return _finite(float(np.abs(values[:, None] - values[None, :]).sum() / len(values)))


def _relu_family(model: nn.Module, x: torch.Tensor, names: set[str]) -> dict[str, float]:
    """nwot and swap from one forward with hooks on every ReLU (training mode, no gradients).

    - ``nwot`` (NASWOT, Mellor et al. 2021, BayesWatch/nas-without-training ``hook_logdet``):
      the binary code c of each sample (which ReLU inputs are > 0), the kernel
      K = C Cᵀ + (1 − C)(1 − C)ᵀ summed over ReLUs, score = log|det K|.
    - ``swap`` (SWAP-Score, Peng et al. ICLR 2024, without the parameter-count regulariser
      whose μ, σ are tuned per space): the sign patterns of all ReLU outputs, each neuron's
      pattern over the batch a vector; the score is the number of distinct vectors.
    """
    model = _copy(model)
    n = len(x)
    kernel = torch.zeros((n, n), dtype=torch.float64, device=x.device)
    patterns: list[torch.Tensor] = []

    def hook(_m: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if "nwot" in names:
            codes = (inputs[0].detach().reshape(n, -1) > 0).double()
            kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)
        if "swap" in names:
            patterns.append((output.detach().reshape(n, -1) > 0).T)

    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, (nn.ReLU, nn.ReLU6))]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    out = {}
    if "nwot" in names:
        sign, logdet = torch.linalg.slogdet(kernel)
        out["nwot"] = _finite(float(logdet)) if float(sign) != 0 else WORST
    if "swap" in names:
        if patterns:
            out["swap"] = float(torch.unique(torch.cat(patterns), dim=0).shape[0])
        else:
            out["swap"] = WORST
    return out


def zen(model: nn.Module, x: torch.Tensor, *, seed: int, mixup_gamma: float = 1e-2,
        repeats: int = 1) -> float:
    """Zen-score (Lin et al. 2021, idstcv/ZenNAS ``compute_zen_score``): weights re-drawn from
    N(0, 1) (BN weight 1, bias 0), Gaussian inputs x and x + γε (γ = 0.01), training mode;
    score = log E|f(x) − f(x + γε)| + Σ_BN log √mean(running_var), f the feature map before
    global average pooling. Deviations: f is the input of the network's last
    ``AdaptiveAvgPool2d`` (the last ``Linear``'s input when it has none), which is ZenNAS'
    ``forward_pre_GAP`` for our spaces; ``repeats`` = 1 by default where the paper averages 32
    draws (one draw ranks networks nearly the same at 1/32 of the cost)."""
    model = _copy(model)
    pools = [m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    target = pools[-1] if pools else (linears[-1] if linears else None)
    if target is None:
        return WORST
    feats: list[torch.Tensor] = []
    handle = target.register_forward_hook(lambda _m, i, _o: feats.append(i[0].detach()))
    gen = torch.Generator(device=x.device).manual_seed(seed)
    scores = []
    try:
        for _ in range(repeats):
            with torch.no_grad():
                for m in model.modules():
                    if isinstance(m, _LAYERS):
                        m.weight.normal_(generator=gen)
                        if m.bias is not None:
                            m.bias.zero_()
                    elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                        m.weight.fill_(1.0)
                        m.bias.zero_()
                a = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
                b = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
                feats.clear()
                model(a)
                model(a + mixup_gamma * b)
                delta = float((feats[0] - feats[1]).abs().mean())
                bn = sum(math.log(math.sqrt(float(m.running_var.mean())))
                         for m in model.modules()
                         if isinstance(m, nn.modules.batchnorm._BatchNorm)
                         and m.running_var is not None)
                scores.append(math.log(delta) + bn if delta > 0 else -math.inf)
    finally:
        handle.remove()
    return _finite(float(np.mean(scores)))


def zico(model: nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """ZiCo (Li et al. 2023, SLDGroup/ZiCo ``getzico``): the gradient of each conv / linear
    weight on each of several batches; per layer, Σ over weights with non-zero std of
    mean|g| / std(g) across batches, and the score Σ over layers of the log of that sum
    (layers whose sum is 0 are skipped, as there). Needs at least two batches."""
    model = _copy(model)
    weights = _weights(model)
    per_batch: list[list[np.ndarray]] = []
    for bx, by in batches:
        model.zero_grad()
        F.cross_entropy(model(bx), by).backward()
        per_batch.append([(w.grad if w.grad is not None else torch.zeros_like(w))
                          .detach().reshape(-1).cpu().double().numpy() for w in weights])
    total = 0.0
    for i in range(len(weights)):
        grads = np.stack([b[i] for b in per_batch])
        std = grads.std(axis=0)
        nz = std != 0
        s = float(np.sum(np.abs(grads).mean(axis=0)[nz] / std[nz]))
        if s != 0:
            total += math.log(s)
    return _finite(total) if total != 0 else WORST


def l2_norm(model: nn.Module) -> float:
    """zero-cost-nas ``l2_norm``: Σ over conv / linear layers of ‖W‖₂ at initialization."""
    return sum(float(w.detach().norm()) for w in _weights(model))


PROXIES = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov", "nwot", "zen",
           "zico", "epe_nas", "l2_norm", "plain", "swap", "params", "flops", "vote")


def _check(names: Iterable[str]) -> list[str]:
    names = list(names)
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise ValueError(f"unknown proxy {unknown[0]!r}; known: {', '.join(PROXIES)}")
    if "vote" in names:
        raise ValueError("vote ranks a population of architectures, not one network: score "
                         f"its members ({', '.join(VOTE_DEFAULT)}) and combine them with "
                         "zero_cost.vote(), or use the zero_cost objective with proxy='vote'")
    return names


def score(model: nn.Module, names: str | Sequence[str], *, data: tuple[torch.Tensor,
          torch.Tensor], seed: int = 0, num_classes: int | None = None) -> dict[str, float]:
    """The requested proxies of ``model`` (any ``nn.Module`` classifier returning logits) on
    the minibatch ``data = (x, y)``, as ``{name: float}``; higher is better for every proxy.
    ``model`` is not modified. ``seed`` fixes the Gaussian draws of ``zen``; ``zico`` splits
    the batch into two halves (its two batches)."""
    wanted = _check([names] if isinstance(names, str) else names)
    x, y = data
    device = next((p.device for p in model.parameters()), x.device)
    x, y = x.to(device), y.to(device)
    classes = num_classes or int(y.max()) + 1
    want = set(wanted)
    out: dict[str, float] = {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        grad_family = want & {"grad_norm", "snip", "plain", "fisher"}
        if grad_family:
            out.update(_gradient_family(model, x, y, grad_family))
        if "grasp" in want:
            out["grasp"] = grasp(model, x, y)
        if "synflow" in want:
            out["synflow"] = synflow(model, x)
        if want & {"jacob_cov", "epe_nas"}:
            jac = _input_jacobian(model, x)
            if "jacob_cov" in want:
                out["jacob_cov"] = jacob_cov(jac)
            if "epe_nas" in want:
                out["epe_nas"] = epe_nas(jac, y.cpu().numpy(), classes)
        relu_family = want & {"nwot", "swap"}
        if relu_family:
            out.update(_relu_family(model, x, relu_family))
        if "zen" in want:
            out["zen"] = zen(model, x, seed=seed)
        if "zico" in want:
            half = max(1, len(x) // 2)
            out["zico"] = zico(model, [(x[:half], y[:half]), (x[half:], y[half:])])
        if "l2_norm" in want:
            out["l2_norm"] = l2_norm(model)
        if "params" in want:
            out["params"] = float(cost.count_params(model))
        if "flops" in want:
            out["flops"] = float(cost.count_flops(copy.deepcopy(model).eval(),
                                                  tuple(x.shape[1:])))
    return {n: _finite(out[n]) for n in wanted}


def vote(rows: Sequence[Mapping[str, float]], names: Sequence[str] = VOTE_DEFAULT
         ) -> list[float]:
    """The ensemble of Abdelfattah et al. 2021: each architecture's mean rank over ``names``
    within the population ``rows``, as a fraction in [0, 1] (1 = best on every proxy)."""
    from scipy.stats import rankdata

    if len(rows) < 2:
        return [1.0] * len(rows)
    ranks = [(rankdata([r[n] for r in rows]) - 1) / (len(rows) - 1) for n in names]
    return [float(v) for v in np.mean(ranks, axis=0)]


_DATA: dict[tuple[str, str | None, int], data.Splits] = {}


def _splits(dataset: str, data_dir: str | None, split_seed: int) -> data.Splits:
    key = (dataset, data_dir, split_seed)
    if key not in _DATA:
        _DATA[key] = data.load(dataset, data_dir=data_dir, split_seed=split_seed)
    return _DATA[key]


def batch(splits: data.Splits, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` training images drawn with ``seed`` (the same for every architecture of
    a study, so that all are scored on the same minibatch)."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(splits.y_train), generator=gen)[:batch_size]
    return splits.x_train[idx], splits.y_train[idx]


def score_config(space: SearchSpace, config: Mapping[str, Any], names: Sequence[str], *,
                 dataset: str = data.DEFAULT, data_dir: str | None = None, seed: int = 0,
                 batch_size: int = 64, device: str = "cpu", split_seed: int = 0
                 ) -> dict[str, float]:
    """The proxies of ``config``'s network: built for ``dataset``'s input with weights drawn
    from ``seed``, scored on a ``batch_size`` minibatch of its training split drawn from
    ``seed`` (what ``also_score``, warm starts and ``nas-hpo correlate`` use)."""
    splits = _splits(dataset, data_dir, split_seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = space.build(dict(config), input_shape=splits.input_shape,
                            num_classes=splits.num_classes).to(device)
    return score(model, names, data=batch(splits, batch_size, seed), seed=seed,
                 num_classes=splits.num_classes)


@register("zero_cost")
@dataclass(frozen=True)
class ZeroCost(Objective):
    """Proxies of the untrained network as the study's values (one per proxy, maximized).

    ``proxy`` is a name or a list; ``"vote"`` is the mean rank of ``vote_of`` among the
    architectures this objective scored so far in this process (a running population: the
    first architecture gets 1.0, and a value depends on what came before it)."""

    proxy: str | list[str] = "synflow"
    dataset: str = data.DEFAULT
    data_dir: str | None = None
    split_seed: int = 0
    batch_size: int = 64
    device: str = "cpu"
    vote_of: list[str] | tuple[str, ...] = VOTE_DEFAULT

    def __post_init__(self) -> None:
        names = [self.proxy] if isinstance(self.proxy, str) else list(self.proxy)
        if not names:
            raise ValueError("proxy: give at least one of " + ", ".join(PROXIES))
        _check([n for n in names if n != "vote"] + [n for n in self.vote_of])
        if self.dataset not in data.names():
            raise ValueError(f"dataset: unknown {self.dataset!r}; known: {', '.join(data.names())}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        if torch.device(self.device).type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device: {self.device!r} asked for, but CUDA is not available")
        object.__setattr__(self, "directions", ("maximize",) * len(names))
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_seen", [])

    @property
    def cost_device(self) -> str:  # type: ignore[override]
        return self.device

    def model_input(self) -> tuple[tuple[int, ...], int]:
        splits = _splits(self.dataset, self.data_dir, self.split_seed)
        return splits.input_shape, splits.num_classes

    def __call__(self, config: Mapping[str, Any], *, space: SearchSpace, ctx: Context) -> Result:
        names: list[str] = self._names  # type: ignore[attr-defined]
        direct = [n for n in names if n != "vote"]
        needed = list(dict.fromkeys(direct + (list(self.vote_of) if "vote" in names else [])))
        start = time.perf_counter()
        scores = score_config(space, config, needed, dataset=self.dataset,
                              data_dir=self.data_dir, seed=ctx.seed, batch_size=self.batch_size,
                              device=self.device, split_seed=self.split_seed)
        if "vote" in names:
            seen: list[dict[str, float]] = self._seen  # type: ignore[attr-defined]
            seen.append({n: scores[n] for n in self.vote_of})
            scores["vote"] = vote(seen, self.vote_of)[-1]
        attrs: dict[str, Any] = {f"zc_{k}": v for k, v in scores.items()}
        attrs["zc_time_s"] = round(time.perf_counter() - start, 4)
        return Result(tuple(scores[n] for n in names), attrs)

