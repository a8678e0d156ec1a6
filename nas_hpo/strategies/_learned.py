"""The strategies that learn a distribution over architectures: the REINFORCE controller
(``_reinforce``) and the differentiable one-shot methods (``_oneshot``, ``nas_hpo.oneshot``),
registered here (imported by the package)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import optuna

from nas_hpo._options import Allowed, AtLeast1, AtLeast2, NonNegative, Positive
from nas_hpo.strategies import Setting, Strategy, _one_direction, register


@register("reinforce", objectives="one")
def reinforce(setting: Setting, *, learning_rate: Positive = 0.05,
              baseline_decay: Annotated[float, Allowed(ge=0, lt=1)] = 0.9,
              entropy_weight: Annotated[float, Allowed(ge=0)] = 0.05,
              hidden: AtLeast1 = 32, unseen: bool = True,
              skip_equivalent: bool = True) -> Strategy:
    """An RL controller trained with REINFORCE (Zoph & Le 2017; see ``_reinforce``): an LSTM
    policy over the space's active parameters in the space's order, a moving-average baseline
    (``baseline_decay``) and an entropy bonus (``entropy_weight``), one Adam step
    (``learning_rate``) per finished trial. ``unseen``: a draw repeating an architecture the
    study has is drawn again from the policy (then a new one-step mutation of it, then a new
    random architecture is taken), with ``skip_equivalent`` also one building the same network
    (``space.network_key``); ``unseen = false``, ``learning_rate = 0.01`` is Zoph & Le's
    sampling at the old default (on NB201-digits the policy then collapses onto cells it has,
    and a larger step makes it collapse sooner). With
    the ``supernet`` objective it searches one shared supernet, as ENAS does."""
    from nas_hpo.strategies._reinforce import ReinforceSampler

    _one_direction("reinforce", setting)
    sampler = ReinforceSampler(setting.space, learning_rate=learning_rate,
                               baseline_decay=baseline_decay, entropy_weight=entropy_weight,
                               hidden=hidden, unseen=unseen,
                               skip_equivalent=skip_equivalent, seed=setting.seed)
    return Strategy("reinforce", sampler, optuna.pruners.NopPruner())


def _one_shot(setting: Setting, method: str, options: dict[str, Any], dataset: str | None,
              data_dir: str | None) -> Strategy:
    """The strategy of a differentiable search (``_oneshot``, ``nas_hpo.oneshot``). It
    searches on ``dataset`` (in ``data_dir``) where given, else on the objective's data, else
    on the embedded default."""
    from nas_hpo import data
    from nas_hpo._objective import DataSource
    from nas_hpo.oneshot import OneShotSearch
    from nas_hpo.strategies._oneshot import OneShotSampler
    from nas_hpo.training import check_device

    why = check_device(options["device"])
    if why is not None:
        raise ValueError(f"device: {why}")
    source = setting.data_source
    if dataset is not None:
        if dataset not in data.names():
            raise ValueError(f"dataset: unknown dataset {dataset!r}; known: "
                             f"{', '.join(data.names())}")
        source = DataSource(dataset, data_dir)

    if setting.directions != ("maximize",):
        raise ValueError(f"{method} records each epoch's one-shot validation accuracy as a "
                         "trial's value: the study must maximize one value (an accuracy); its "
                         f"directions are {list(setting.directions)}")
    search = OneShotSearch(setting.space, method=method, seed=setting.seed, **options)
    sampler = OneShotSampler(setting.space, search, data_source=source, seed=setting.seed)
    return Strategy(method, sampler, optuna.pruners.NopPruner(),
                    before_study=sampler.before_study)


_Share = Annotated[float, Allowed(ge=0, le=1)]
_Rate = Annotated[float, Allowed(gt=0)]
_Decay = Annotated[float, Allowed(ge=0)]
_ONE_SHOT_TEST = {"epochs": 1, "batch_size": 256}


@register("darts", objectives="one", test_options=_ONE_SHOT_TEST, supernet=True)
def darts(setting: Setting, *, order: Literal[1, 2] = 1, epochs: AtLeast1 = 50,
          batch_size: AtLeast2 = 64, lr: _Rate = 0.025, lr_min: _Decay = 0.001,
          arch_lr: _Rate = 3e-4, arch_weight_decay: _Decay = 1e-3,
          warmup_epochs: NonNegative = 0, collapse_share: _Share = 0.5,
          on_collapse: Literal["report", "stop"] = "report", device: str = "cpu",
          dataset: str | None = None, data_dir: str | None = None) -> Strategy:
    """DARTS (Liu et al. 2019): softmax-mixed operations on the space's supernet, bilevel
    first- (``order = 1``) or second-order; each epoch's argmax architecture is a trial, the
    last one is evaluated by the objective (see ``nas_hpo.oneshot``)."""
    return _one_shot(setting, "darts", dict(
        order=order, epochs=epochs, batch_size=batch_size, lr=lr, lr_min=lr_min,
        arch_lr=arch_lr, arch_weight_decay=arch_weight_decay, warmup_epochs=warmup_epochs,
        collapse_share=collapse_share, on_collapse=on_collapse, device=device), dataset, data_dir)


@register("gdas", objectives="one", test_options=_ONE_SHOT_TEST, supernet=True)
def gdas(setting: Setting, *, epochs: AtLeast1 = 50, batch_size: AtLeast2 = 64,
         lr: _Rate = 0.025, lr_min: _Decay = 0.001, arch_lr: _Rate = 3e-4,
         arch_weight_decay: _Decay = 1e-3, tau_max: _Rate = 10.0, tau_min: _Rate = 0.1,
         collapse_share: _Share = 0.5, on_collapse: Literal["report", "stop"] = "report",
         device: str = "cpu",
         dataset: str | None = None, data_dir: str | None = None) -> Strategy:
    """GDAS (Dong & Yang 2019): one Gumbel-softmax sampled operation per choice and step,
    temperature from ``tau_max`` down to ``tau_min``."""
    return _one_shot(setting, "gdas", dict(
        epochs=epochs, batch_size=batch_size, lr=lr, lr_min=lr_min, arch_lr=arch_lr,
        arch_weight_decay=arch_weight_decay, tau_max=tau_max, tau_min=tau_min,
        collapse_share=collapse_share, on_collapse=on_collapse, device=device), dataset, data_dir)


@register("pc_darts", objectives="one", test_options={**_ONE_SHOT_TEST, "partial_channels": 2},
          supernet=True)
def pc_darts(setting: Setting, *, partial_channels: AtLeast2 = 4, epochs: AtLeast1 = 50,
             batch_size: AtLeast2 = 64, lr: _Rate = 0.025, lr_min: _Decay = 0.001,
             arch_lr: _Rate = 6e-4, arch_weight_decay: _Decay = 1e-3,
             warmup_epochs: NonNegative = 0, collapse_share: _Share = 0.5,
             on_collapse: Literal["report", "stop"] = "report", device: str = "cpu",
             dataset: str | None = None, data_dir: str | None = None) -> Strategy:
    """PC-DARTS (Xu et al. 2020): DARTS on 1/``partial_channels`` of each edge's channels
    (PC-DARTS warms up the weights before α for 15 of 50 epochs: ``warmup_epochs``)."""
    return _one_shot(setting, "pc_darts", dict(
        partial_channels=partial_channels, epochs=epochs, batch_size=batch_size, lr=lr,
        lr_min=lr_min, arch_lr=arch_lr, arch_weight_decay=arch_weight_decay,
        warmup_epochs=warmup_epochs, collapse_share=collapse_share, on_collapse=on_collapse,
        device=device), dataset, data_dir)


@register("beta_darts", objectives="one", test_options=_ONE_SHOT_TEST, supernet=True)
def beta_darts(setting: Setting, *, beta_lambda: _Decay = 0.5, epochs: AtLeast1 = 50,
               batch_size: AtLeast2 = 64, lr: _Rate = 0.025, lr_min: _Decay = 0.001,
               arch_lr: _Rate = 3e-4, arch_weight_decay: _Decay = 1e-3,
               collapse_share: _Share = 0.5,
               on_collapse: Literal["report", "stop"] = "report", device: str = "cpu",
               dataset: str | None = None, data_dir: str | None = None) -> Strategy:
    """β-DARTS (Ye et al. 2022): DARTS with the Beta-Decay regulariser on α (weight rising to
    ``beta_lambda``), the remedy for DARTS' collapse into skip connections."""
    return _one_shot(setting, "beta_darts", dict(
        beta_lambda=beta_lambda, epochs=epochs, batch_size=batch_size, lr=lr, lr_min=lr_min,
        arch_lr=arch_lr, arch_weight_decay=arch_weight_decay, collapse_share=collapse_share,
        on_collapse=on_collapse, device=device), dataset, data_dir)
