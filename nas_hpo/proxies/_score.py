"""Scoring: ``score`` (a model and batches), ``score_config`` (a config of a space, built and
fed from a dataset), ``batches`` and the population ensemble ``vote``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from nas_hpo import data
from nas_hpo.proxies import _activations, _gradients  # noqa: F401 (they register the proxies)
from nas_hpo.proxies._passes import _TAKES_NET, _Run
from nas_hpo.proxies._registry import _PROXIES, VOTE_DEFAULT, Scores, get, in_order
from nas_hpo.space import SearchSpace

in_order()
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


