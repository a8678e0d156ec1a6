"""Search strategies by name: each is a factory returning the Optuna sampler (and pruner) to use.

Strategies come from the optimizers (Optuna here); nas-hpo only chooses the settings that
conditional spaces need. A factory is called as ``f(setting, **options)``: ``setting`` carries
what the study decides (space, seed, directions) and ``options`` are exactly the keys the user
wrote in the ``[strategy]`` section, passed on to the backend's constructor.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna

from nas_hpo._objective import DataSource
from nas_hpo._options import AtLeast1, AtLeast2, NonNegative, Probability
from nas_hpo._registry import Registry
from nas_hpo.space import SearchSpace
from nas_hpo.strategies._extrapolation import ExtrapolationPruner

__all__ = ["FIDELITY_ATTR", "NOT_COUNTED_ATTR", "REGISTRY", "ExtrapolationPruner", "Setting", "Strategy", "factory", "get", "names",
           "register"]

#: The trial system attribute where a multi-fidelity sampler writes the fidelity it chose
#: (e.g. ``{"epochs": 3}``); the engine hands it to the objective (``Context.fidelity``).
FIDELITY_ATTR = "nas_hpo:fidelity"
#: The study system attribute holding how many of its trials a strategy recorded without an
#: evaluation by the objective (a one-shot search's epochs): ``n_trials`` does not count them.
NOT_COUNTED_ATTR = "nas_hpo:not_counted"


@dataclass(frozen=True)
class Setting:
    """What the study fixes for its strategy."""

    space: SearchSpace
    seed: int
    directions: tuple[str, ...]
    #: The fidelities the objective accepts through ``Context.fidelity`` (e.g. ``epochs``).
    fidelities: tuple[str, ...] = ()
    #: ``proxies(config, names) -> {name: score}``: zero-cost proxies of a config's untrained
    #: network on the objective's data with the study seed (what warm starts use), for
    #: strategies that filter their proposals by a proxy; ``None`` where the space builds no
    #: network.
    proxies: Callable[[Mapping[str, Any], tuple[str, ...]], Mapping[str, float]] | None = None
    #: The data the objective evaluates on (None: it names none; the embedded default).
    data_source: DataSource | None = None


@dataclass(frozen=True)
class Strategy:
    """The Optuna sampler and pruner of a study."""

    name: str
    sampler: optuna.samplers.BaseSampler
    pruner: optuna.pruners.BasePruner
    #: Upper bounds on trial user attributes (e.g. ``{"params": 1e6}``); the engine sets each
    #: trial's Optuna constraint ``value - bound`` (feasible when <= 0) for samplers that use them.
    constraints: dict[str, float] = field(default_factory=dict)
    #: The sampler chooses each trial's fidelity (the ``nas_hpo:fidelity`` system attribute),
    #: so the engine reads it back; other strategies spare that storage read per trial.
    multi_fidelity: bool = False
    #: The sampler cannot see a space's forbidden clauses and keeps proposing configurations
    #: they forbid (a GP over a fixed-length vector): after each forbidden draw the engine
    #: makes the nearest valid config (``SearchSpace.repair``) the next trial.
    repair_forbidden: bool = False
    #: Work the strategy does once before the study's first trial (a one-shot search that
    #: records its epochs as trials); the lifecycle calls it on every backend. Trials it
    #: records are not counted against ``n_trials`` (``NOT_COUNTED_ATTR``).
    before_study: Callable[[optuna.Study], None] | None = None


#: Name → factory ``f(setting, **options) -> Strategy``; metadata: ``test_options`` (cheap
#: options for the contract tests), ``objectives`` (how many values it optimizes: "one",
#: "several" or "any"), ``fidelity`` (it needs an objective with a fidelity).
REGISTRY: Registry[Callable[..., Strategy]] = Registry("strategy")


def register(name: str, **meta: Any) -> Callable[[Callable[..., Strategy]],
                                                 Callable[..., Strategy]]:
    """Register a strategy factory under ``name`` (a duplicate name is an error)."""
    return REGISTRY.register(name, **meta)


def get(name: str, setting: Setting, **options: Any) -> Strategy:
    return REGISTRY.entry(name)(setting, **options)


def factory(name: str) -> Callable[..., Strategy]:
    return REGISTRY.entry(name)


def names() -> list[str]:
    return REGISTRY.names()


@register("random", objectives="any")
def random(setting: Setting) -> Strategy:
    """Uniform random search (Optuna's ``RandomSampler``): the baseline every NAS paper needs."""
    return Strategy("random", optuna.samplers.RandomSampler(seed=setting.seed),
                    optuna.pruners.NopPruner())


@register("tpe", objectives="any")
def tpe(
    setting: Setting,
    *,
    n_startup_trials: NonNegative = 10,
    n_ei_candidates: AtLeast1 = 24,
    multivariate: bool = True,
    group: bool = True,
    constant_liar: bool = True,
    unseen: bool = True,
    skip_equivalent: bool = True,
) -> Strategy:
    """Optuna's TPE. ``multivariate`` with ``group`` models the parameters that are active
    together jointly, which is what a conditional space needs (independent TPE would model each
    layer's parameters without the depth that activates them). ``unseen``: a proposal of an
    architecture the study already has is asked again, then replaced by a new neighbour
    (``_unseen``; TPE repeats itself often on a NAS space); with ``skip_equivalent`` also one
    that builds the same network as one the study has (``space.network_key``: isomorphic NB201
    cells)."""
    with warnings.catch_warnings():
        # ``group`` is still marked experimental in Optuna; choosing it is deliberate here.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            n_startup_trials=n_startup_trials,
            n_ei_candidates=n_ei_candidates,
            multivariate=multivariate,
            group=group,
            constant_liar=constant_liar,
            seed=setting.seed,
        )
    if unseen:
        from nas_hpo.strategies._unseen import UnseenSampler

        sampler = UnseenSampler(sampler, setting.space, seed=setting.seed,
                                skip_equivalent=skip_equivalent)
    return Strategy("tpe", sampler, optuna.pruners.NopPruner())


@register("gp", objectives="any", test_options={"n_startup_trials": 2})
def gp(setting: Setting, *, n_startup_trials: NonNegative = 10,
       deterministic_objective: bool = False,
       encoding: Literal["auto", "intersection", "space"] = "auto",
       acquisition: Literal["ei", "ucb", "its", "mean"] = "ei") -> Strategy:
    """Gaussian-process BO. ``encoding = "intersection"`` is Optuna's ``GPSampler``: it models
    the parameters every trial has and draws the conditional rest at random; it cannot see
    forbidden clauses (and ignores the pruned trials that record them), so a forbidden draw is
    followed by its nearest valid config (``Strategy.repair_forbidden``). ``"space"`` fits
    scikit-learn's GP to the space's fixed-length encoding (inactive parameters as their own
    state, ``SearchSpace.encoding``) and maximises ``acquisition`` over mutations of the best
    configs and random ones, which are valid by construction (``_guided``); it optimizes one
    objective. ``"auto"``: ``"space"`` for a conditional single-objective study, else
    Optuna's."""
    conditional = bool(setting.space.conditions)
    if encoding == "space" or (encoding == "auto" and conditional
                               and len(setting.directions) == 1):
        from nas_hpo.strategies._guided import PredictorGuidedSampler

        _one_direction("gp with encoding = \"space\"", setting)
        sampler = PredictorGuidedSampler(setting.space, predictor="gp", acquisition=acquisition,
                                         n_startup_trials=n_startup_trials, seed=setting.seed)
        return Strategy("gp", sampler, optuna.pruners.NopPruner())
    sampler = optuna.samplers.GPSampler(
        seed=setting.seed,
        n_startup_trials=n_startup_trials,
        deterministic_objective=deterministic_objective,
        warn_independent_sampling=False,
    )
    return Strategy("gp", sampler, optuna.pruners.NopPruner(), repair_forbidden=True)


def _one_direction(what: str, setting: Setting) -> None:
    if len(setting.directions) != 1:
        raise ValueError(f"{what} optimizes one objective; the study has "
                         f"{len(setting.directions)} directions (use nsga2 / nsga3 for several)")


@register("qmc", objectives="any")
def qmc(setting: Setting, *, qmc_type: Literal["sobol", "halton"] = "sobol",
        scramble: bool = True) -> Strategy:
    """Optuna's quasi-Monte Carlo sampler: low-discrepancy coverage of the shared parameters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.QMCSampler(
            qmc_type=qmc_type, scramble=scramble, seed=setting.seed,
            warn_independent_sampling=False,
        )
    return Strategy("qmc", sampler, optuna.pruners.NopPruner())


@register("re", objectives="one", test_options={"population_size": 3, "sample_size": 2})
def regularized_evolution(
    setting: Setting, *, population_size: AtLeast2 = 20, sample_size: AtLeast1 = 5,
    zero_cost_filter: NonNegative = 0, zero_cost_by: str = "synflow", unseen: bool = True,
    skip_equivalent: bool = True,
) -> Strategy:
    """Regularized (aging) evolution, Real et al. 2019: not in Optuna, so ours (see
    ``_evolution``); children come from ``space.mutate`` and inherit their parent's values.
    ``zero_cost_filter = k`` (k >= 2) draws k mutations of the parent and keeps the one the
    proxy ``zero_cost_by`` scores best (Abdelfattah et al. 2021's zero-cost move proposal).
    ``unseen``: children that repeat an architecture the study has are drawn again, with
    ``skip_equivalent`` also those that build the same network (``space.network_key``)."""
    from nas_hpo.strategies._evolution import RegularizedEvolutionSampler

    _one_direction("re", setting)
    proxy = None
    if zero_cost_filter >= 2:
        proxy = _proxy_of(setting, "zero_cost_by", zero_cost_by)
    sampler = RegularizedEvolutionSampler(
        setting.space, population_size=population_size, sample_size=sample_size,
        seed=setting.seed, zero_cost_filter=zero_cost_filter, proxy=proxy, unseen=unseen,
        skip_equivalent=skip_equivalent,
    )
    return Strategy("re", sampler, optuna.pruners.NopPruner())


def _proxy_of(setting: Setting, key: str, name: str) -> Callable[[Mapping[str, Any]], float]:
    """The score of one zero-cost proxy, checked before any trial runs."""
    from nas_hpo import proxies

    if name not in proxies.names():
        raise ValueError(f"{key}: unknown proxy {name!r}; known: {', '.join(proxies.names())}")
    if setting.proxies is None or not setting.space.can_build:
        raise ValueError(f"{key}: the space builds no network for a proxy to score")
    score = setting.proxies

    def one(config: Mapping[str, Any]) -> float:
        return float(score(config, (name,))[name])

    return one


def _base(setting: Setting, sampler: str, pruner: str) -> Strategy:
    if sampler in _PRUNERS:
        raise ValueError(f"sampler: {sampler!r} is a pruner; pick a sampler for {pruner}")
    return get(sampler, setting)


def _pruned(name: str, base: Strategy, pruner: optuna.pruners.BasePruner) -> Strategy:
    return Strategy(name, base.sampler, pruner, repair_forbidden=base.repair_forbidden)


@register("hyperband", objectives="one", steps=True)
def hyperband(
    setting: Setting,
    *,
    sampler: str = "tpe",
    min_resource: AtLeast1 = 1,
    max_resource: AtLeast1 | Literal["auto"] = "auto",
    reduction_factor: AtLeast2 = 3,
) -> Strategy:
    """Optuna's ``HyperbandPruner`` over the intermediate values the objective reports (epochs
    for ``train``), with any sampler above (``sampler = "tpe"``)."""
    pruner = optuna.pruners.HyperbandPruner(
        min_resource=min_resource, max_resource=max_resource, reduction_factor=reduction_factor
    )
    return _pruned("hyperband", _base(setting, sampler, "hyperband"), pruner)


@register("asha", objectives="one", steps=True)
def asha(
    setting: Setting,
    *,
    sampler: str = "tpe",
    min_resource: AtLeast1 | Literal["auto"] = "auto",
    reduction_factor: AtLeast2 = 4,
    min_early_stopping_rate: NonNegative = 0,
) -> Strategy:
    """Asynchronous successive halving: Optuna's ``SuccessiveHalvingPruner``."""
    pruner = optuna.pruners.SuccessiveHalvingPruner(
        min_resource=min_resource,
        reduction_factor=reduction_factor,
        min_early_stopping_rate=min_early_stopping_rate,
    )
    return _pruned("asha", _base(setting, sampler, "asha"), pruner)


@register("median", objectives="one", steps=True)
def median(
    setting: Setting,
    *,
    sampler: str = "tpe",
    n_startup_trials: NonNegative = 5,
    n_warmup_steps: NonNegative = 0,
    interval_steps: AtLeast1 = 1,
) -> Strategy:
    """Optuna's ``MedianPruner``: stop a trial below the median of earlier trials at a step."""
    pruner = optuna.pruners.MedianPruner(
        n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps,
        interval_steps=interval_steps,
    )
    return _pruned("median", _base(setting, sampler, "median"), pruner)


@register("lce", objectives="one", steps=True)
def lce(
    setting: Setting,
    *,
    sampler: str = "tpe",
    target_step: AtLeast1 | None = None,
    n_startup_trials: AtLeast1 = 5,
    min_steps: int = 5,
    margin: float = 0.0,
    interval_steps: AtLeast1 = 1,
) -> Strategy:
    """Learning-curve extrapolation (Domhan et al. 2015; ``_extrapolation``): stop a trial
    whose curve, extrapolated to the last step, ends below the best finished trial."""
    if setting.directions != ("maximize",):
        raise ValueError(
            "lce extrapolates rising accuracy-like curves of one maximized objective; the "
            f"study's directions are {list(setting.directions)}"
        )
    pruner = ExtrapolationPruner(target_step=target_step, n_startup_trials=n_startup_trials,
                                 min_steps=min_steps, margin=margin,
                                 interval_steps=interval_steps)
    return _pruned("lce", _base(setting, sampler, "lce"), pruner)


_PRUNERS = ("hyperband", "asha", "median", "lce")


def _nsga_strategy(setting: Setting, which: str, population_size: int, mutation_prob: float,
          constraints: dict[str, float] | None) -> Strategy:
    from nas_hpo.strategies import _nsga

    if not 0 <= mutation_prob <= 1:
        raise ValueError(f"mutation_prob must be in [0, 1], got {mutation_prob}")
    if population_size < 2:
        raise ValueError(f"population_size must be >= 2, got {population_size}")
    cls = _nsga.SpaceNSGAIISampler if which == "nsga2" else _nsga.SpaceNSGAIIISampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = cls(
            setting.space,
            mutation_prob=mutation_prob,
            seed=setting.seed,
            population_size=population_size,
        )
    return Strategy(which, sampler, optuna.pruners.NopPruner(), dict(constraints or {}))


@register("nsga2", objectives="any", test_options={"population_size": 4})
def nsga2(setting: Setting, *, population_size: AtLeast2 = 20, mutation_prob: Probability = 0.5,
          constraints: dict[str, float] | None = None) -> Strategy:
    """NSGA-II (Optuna's selection) with offspring that respect the space's conditions (see
    ``_nsga``); ``constraints`` bound trial attributes, e.g. ``{params = 1e6}``."""
    return _nsga_strategy(setting, "nsga2", population_size, mutation_prob, constraints)


@register("nsga3", objectives="several", test_options={"population_size": 4})
def nsga3(setting: Setting, *, population_size: AtLeast2 = 20, mutation_prob: Probability = 0.5,
          constraints: dict[str, float] | None = None) -> Strategy:
    """NSGA-III (reference-point selection, for three or more objectives as well) with
    condition-respecting offspring."""
    if len(setting.directions) < 2:
        raise ValueError("nsga3 needs two or more objectives; the study has one direction")
    return _nsga_strategy(setting, "nsga3", population_size, mutation_prob, constraints)


@register("local_search", objectives="one", test_options={"n_initial": 3})
def local_search(setting: Setting, *, n_initial: AtLeast1 = 10,
                 improvement: Literal["best", "first"] = "first",
                 restart: Literal["best", "random"] = "random",
                 skip_equivalent: bool = True,
                 order: Literal["additive", "mean", "random"] = "additive") -> Strategy:
    """Local search over ``space.neighbors`` (White et al. 2021; see ``_local``): starts from
    the best of ``n_initial`` random trials, moves to the ``first`` (or, once all are seen,
    the ``best``) improving neighbour, restarts at a local optimum from a ``random``
    architecture (or the best trial with unseen neighbours). ``skip_equivalent``: a neighbour
    that builds the same network as a trial (``space.network_key``) is not evaluated again, the
    walk knows its value. ``order``: the unseen neighbours are tried best-first by a
    least-squares fit of the finished trials' values as a sum of per-value effects
    (``additive``), by the mean value of the trials that have each of the neighbour's parameter
    values (``mean``), or at random (``random``, the paper's)."""
    from nas_hpo.strategies._local import LocalSearchSampler

    _one_direction("local_search", setting)
    sampler = LocalSearchSampler(setting.space, n_initial=n_initial, improvement=improvement,
                                 restart=restart, skip_equivalent=skip_equivalent,
                                 order=order, seed=setting.seed)
    return Strategy("local_search", sampler, optuna.pruners.NopPruner())


@register("bananas", objectives="one", test_options={"n_startup_trials": 3, "n_candidates": 20})
def bananas(
    setting: Setting,
    *,
    n_startup_trials: AtLeast1 = 10,
    predictor: Literal["ensemble", "gp"] = "ensemble",
    acquisition: Literal["its", "ucb", "ei", "mean"] = "ucb",
    n_candidates: AtLeast1 = 100,
    n_parents: AtLeast1 = 10,
    random_fraction: Probability = 0.2,
    beta: NonNegative = 1.0,
    members: AtLeast2 = 5,
    epochs: AtLeast1 = 200,
    encoding: Literal["space", "generic"] = "space",
    zero_cost: list[str] | None = None,
    skip_equivalent: bool = True,
) -> Strategy:
    """Predictor-guided search, BANANAS (White et al. 2021; see ``_guided``): an ensemble of
    ``members`` small MLPs on the space's encoding (``nb201``: path encoding), trained on the
    finished trials (with their fidelity when they ended at different steps), proposes the
    candidate — a mutation of one of the ``n_parents`` best configs, or a random one — with
    the best ``acquisition`` (``ucb``: mean + ``beta`` · std; ``its``: BANANAS' independent
    Thompson sampling). ``encoding =
    "generic"`` uses the one-hot / ordinal encoding even where the space has its own;
    ``zero_cost = ["synflow", ...]`` adds those proxies' scores as features;
    ``skip_equivalent`` (on by default) leaves out candidates that build the same network as a
    trial (``space.network_key``)."""
    from nas_hpo.strategies._guided import PredictorGuidedSampler

    _one_direction("bananas", setting)
    for name in zero_cost or ():
        _proxy_of(setting, "zero_cost", name)  # known, and the space builds networks
    options = {"members": members, "epochs": epochs} if predictor == "ensemble" else {}
    sampler = PredictorGuidedSampler(
        setting.space, predictor=predictor, acquisition=acquisition,
        n_startup_trials=n_startup_trials, n_candidates=n_candidates, n_parents=n_parents,
        random_fraction=random_fraction, beta=beta, predictor_options=options,
        encoding=encoding, zero_cost=tuple(zero_cost or ()), proxies=setting.proxies,
        skip_equivalent=skip_equivalent, seed=setting.seed)
    return Strategy("bananas", sampler, optuna.pruners.NopPruner())


# Registered by importing: SMAC3's strategies (``_smac``), the policy-gradient and the
# differentiable one-shot strategies (``_learned``).
from nas_hpo.strategies import _learned, _smac  # noqa: E402,F401
