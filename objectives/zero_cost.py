"""``zero_cost``: the study's values are zero-cost proxies of the untrained network.

The proxies themselves (their references, floors, shared passes and layout) are the library
``nas_hpo.proxies``; this objective builds each trial's network with the trial's seed, scores
it on batches of the study's data and records every proxy computed. The population ensemble
``vote`` ranks each architecture among the study's completed trials (``Context.population``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas_hpo import data
from nas_hpo._objective import Context, DataSource, Objective, Result
from nas_hpo._options import check_declared, option
from nas_hpo.objectives import register
from nas_hpo.proxies import PROXIES, REGISTRY, VOTE_DEFAULT, score_config, vote
from nas_hpo.space import SearchSpace
from nas_hpo.training import check_device, resolve_device

__all__ = ["ZeroCost"]


@register("zero_cost", test_options={"proxy": "synflow"})
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
    among the completed trials of the study that stored them, itself included: the engine
    hands them over as ``Context.population`` on every backend (outside a study, with a
    context that has no population, among the architectures this objective scored in this
    process). It is the population vote of Abdelfattah et al. 2021 as far as the
    population is known when the trial runs: early trials are ranked among few, so the
    value of the same architecture drifts as the study grows; ``vote(rows)`` over the final
    ``zc_*`` attributes gives the vote over the whole population."""

    proxy: str | list[str] = "synflow"
    dataset: str = option(data.DEFAULT, choices=data.names)
    data_dir: str | None = None
    download: bool = True
    split_seed: int = 0
    batch_size: int | None = None
    n_batches: int = option(2, ge=1)
    data_seed: int | None = 0
    device: str = option("cpu", check=check_device)
    vote_of: list[str] | tuple[str, ...] = VOTE_DEFAULT
    repeats: dict[str, int] | None = None
    channels_last: bool | None = None

    def __post_init__(self) -> None:
        check_declared(self)
        names = [self.proxy] if isinstance(self.proxy, str) else list(self.proxy)
        if not names:
            raise ValueError("proxy: give at least one of " + ", ".join(PROXIES))
        if len(set(names)) != len(names):
            raise ValueError(f"proxy: {names!r} names a proxy twice")
        for key, given in (("proxy", [n for n in names if n != "vote"]),
                           ("vote_of", list(self.vote_of))):
            for n in given:
                if n not in REGISTRY:
                    raise ValueError(f"{key}: unknown zero-cost proxy {n!r}; known: "
                                     f"{', '.join(PROXIES if key == 'proxy' else REGISTRY)}")
        if "vote" in names and not self.vote_of:
            raise ValueError("vote_of: give the proxies that vote")
        if self.batch_size is not None and self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (BatchNorm and correlations need two "
                             f"samples), got {self.batch_size}")
        draws = [p.name for p in REGISTRY.values() if p.repeats]
        for name, k in (self.repeats or {}).items():
            if name not in draws or not isinstance(k, int) or k < 1:
                raise ValueError(f"repeats: {name} = {k!r}; give >= 1 draws for one of "
                                 f"{', '.join(draws)}")
        object.__setattr__(self, "directions", ("maximize",) * len(names))
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_seen", [])
        members = tuple(f"zc_{m}" for m in self.vote_of) if "vote" in names else ()
        object.__setattr__(self, "population_attrs", members)

    @property
    def cost_device(self) -> str:  # type: ignore[override]
        return str(resolve_device(self.device))

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(self._names)  # type: ignore[attr-defined]

    def data_source(self) -> DataSource:
        return DataSource(self.dataset, self.data_dir)

    def model_input(self) -> tuple[tuple[int, ...], int]:
        splits = data.load(self.dataset, data_dir=self.data_dir, download=self.download,
                           split_seed=self.split_seed)
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
            device=self.cost_device, repeats=self.repeats, channels_last=self.channels_last,
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
            "batch_size": {n: self.batch_size or REGISTRY[n].batch_size for n in needed},
            "n_batches": self.n_batches,
        }
        return Result(tuple(values[n] for n in names), attrs)

    def _vote(self, row: dict[str, float], ctx: Context) -> float:
        if ctx.population is not None:  # the study's, from the engine, on every backend
            keys = [f"zc_{m}" for m in self.vote_of]
            population = [{m: p[k] for m, k in zip(self.vote_of, keys, strict=True)}
                          for p in ctx.population]
        else:  # a stand-alone call: the architectures scored so far in this process
            population = list(self._seen)  # type: ignore[attr-defined]
            self._seen.append(row)  # type: ignore[attr-defined]
        return vote([*population, row], self.vote_of)[-1]
