"""SMAC3's Bayesian optimization, driven ask/tell, as an Optuna sampler: the strategies ``smac``
(random-forest BO, SMAC's HPO facade; or its black-box facade, a Gaussian process) and
``smac_hyperband`` (the multi-fidelity facade), registered here.

SMAC proposes each configuration on the space's ConfigSpace (``to_configspace``, lossless) and
is told every result; Optuna records each evaluation as an ordinary trial whose params are the
config, so SMAC runs land in the same study as every other strategy. The wrapping is ours
because SMAC and Optuna have no bridge: SMAC's ``ask`` happens before an Optuna trial starts,
its ``tell`` after the trial finishes. A configuration ConfigSpace hands out that the space
does not accept (ConfigSpace's sampler can break a forbidden clause) is told to SMAC as a crash
and redrawn, never evaluated. A resumed study replays its finished trials into SMAC first.

With ``fidelity`` set, SMAC's multi-fidelity facade (Hyperband intensifier over a random-forest
model, BOHB-like) runs instead: each (config, budget) SMAC asks for is one Optuna trial, the
budget handed to the objective as ``Context.fidelity`` (e.g. ``{"epochs": 3}``) through the
trial's system attribute ``nas_hpo:fidelity`` and stored with it.

The random forest of both is SMAC's with its categorical choices one-hot encoded
(``forest = "onehot"``, ``_smac_forest``): SMAC 2.x's scikit-learn trees split a choice's index
at a threshold, as if the choices were ordered. ``forest = "smac"`` keeps SMAC's own. The
acquisition maximizer of every facade hands the selector each candidate it scored that was not
evaluated yet (``maximizer = "unseen"``, ``_smac_maximizer``): SMAC 2.x's returns only its
local searches' few end points, on a discrete space mostly evaluated ones, and its selector
then proposes random configurations. ``maximizer = "smac"`` keeps SMAC's own.

``facade = "blackbox"`` runs SMAC's ``BlackBoxFacade`` instead of the HPO facade: a Gaussian
process (Matérn kernel on numbers, Hamming kernel on categorical choices) with expected
improvement, which SMAC recommends for low-dimensional spaces and few evaluations. On
NB201-digits (six categorical choices, 100 evaluations) it is what makes SMAC beat random
search by more than its seed spread; the random forest, one-hot or not, does not
(benchmarks/README.md).
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

from nas_hpo._options import AtLeast1, AtLeast2, Positive, Probability
from nas_hpo.space import configspace_values
from nas_hpo.strategies import FIDELITY_ATTR, Setting, Strategy, _one_direction, register

if TYPE_CHECKING:
    from nas_hpo.space import SearchSpace

_REDRAWS = 100


def _order_start_points(local_search: Any) -> None:
    """Make SMAC's local search start from its points in a fixed order.

    SMAC 2.x's ``LocalSearch._get_initial_points`` returns its start points as
    ``list(set(...))``. A ``Configuration`` hashes its string values, and Python salts string
    hashes per process (``PYTHONHASHSEED``), so the order of the start points, and with it
    which random numbers each local search draws, changed from one process to the next: the
    same seed proposed other configurations in another run (best values 6.0 to 7.5 on the toy
    space for one seed). SMAC sets no order on these points; sorting them by their vector
    (inactive values as -1) gives one, and makes a seeded SMAC study repeat exactly.
    """
    import numpy as np

    unordered = getattr(local_search, "_get_initial_points", None)
    if unordered is None:  # a SMAC whose local search is built otherwise: nothing to order
        return

    def ordered(*args: Any, **kwargs: Any) -> list[Any]:
        points = unordered(*args, **kwargs)
        return sorted(points, key=lambda c: tuple(np.nan_to_num(c.get_array(), nan=-1.0)))

    local_search._get_initial_points = ordered


class SmacSampler(BaseSampler):
    """SMAC3's ``HyperparameterOptimizationFacade`` behind Optuna's sampler interface."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        n_initial: int = 10,
        fidelity: str | None = None,
        min_budget: float = 1,
        max_budget: float = 10,
        eta: int = 3,
        facade: str = "hpo",
        forest: str = "onehot",
        maximizer: str = "unseen",
        random_probability: float | None = None,
        skip_equivalent: bool | None = None,
    ) -> None:
        if facade not in ("hpo", "blackbox"):
            raise ValueError(f"facade must be 'hpo' or 'blackbox', got {facade!r}")
        if forest not in ("onehot", "smac"):
            raise ValueError(f"forest must be 'onehot' or 'smac', got {forest!r}")
        if maximizer not in ("unseen", "smac"):
            raise ValueError(f"maximizer must be 'unseen' or 'smac', got {maximizer!r}")
        if skip_equivalent is None:  # unset: on where the maximizer can skip
            skip_equivalent = maximizer == "unseen"
        if skip_equivalent and maximizer != "unseen":
            raise ValueError("skip_equivalent needs maximizer = 'unseen' (SMAC's own maximizer "
                             "has no way to skip a network the study has)")
        if facade == "blackbox" and fidelity is not None:
            raise ValueError("the black-box facade has no fidelities; use the HPO facade")
        if random_probability is not None and not 0 <= random_probability <= 1:
            raise ValueError(f"random_probability must be in [0, 1], got {random_probability}")
        if n_initial < 1:
            raise ValueError(f"n_initial must be >= 1, got {n_initial}")
        if fidelity is not None and not 0 < min_budget < max_budget:
            raise ValueError(f"need 0 < min_budget < max_budget, got {min_budget}, {max_budget}")
        if eta < 2:
            raise ValueError(f"eta must be >= 2, got {eta}")
        self.fidelity, self.min_budget, self.max_budget, self.eta = (
            fidelity,
            min_budget,
            max_budget,
            eta,
        )
        self.space = space
        self.facade = facade
        self.forest = forest
        self.maximizer = maximizer
        self.random_probability = random_probability
        self.skip_equivalent = skip_equivalent
        self.seed = seed
        self.n_initial = n_initial
        self._smac: Any = None
        self._pending: dict[int, tuple[Any, dict[str, Any]]] = {}
        self._fallback = RandomSampler(seed=seed)

    def _start(self, study: optuna.Study) -> None:
        try:
            from smac import BlackBoxFacade as BB
            from smac import HyperparameterOptimizationFacade as HPO
            from smac import MultiFidelityFacade as MF
            from smac import Scenario
        except ImportError as e:  # pragma: no cover - smac is a dependency
            raise ImportError(f"the smac strategy needs SMAC3: pip install smac ({e})") from e
        cs = self.space.to_configspace()
        # SMAC writes its scenario and run history into an output folder; ours lives as long
        # as this sampler (removed when it is collected, or at exit), not for ever in /tmp.
        output = tempfile.mkdtemp(prefix="nas-hpo-smac-")
        weakref.finalize(self, shutil.rmtree, output, ignore_errors=True)
        scenario = Scenario(
            cs,
            deterministic=True,
            # SMAC's budget is ours to enforce (the study's n_trials / timeout); its own is
            # only an upper bound here.
            n_trials=10**9,
            seed=self.seed,
            output_directory=output,
            **(
                {"min_budget": self.min_budget, "max_budget": self.max_budget}
                if self.fidelity
                else {}
            ),
        )
        facade = MF if self.fidelity else BB if self.facade == "blackbox" else HPO
        extra = {"intensifier": MF.get_intensifier(scenario, eta=self.eta)} if self.fidelity else {}
        if facade is not BB and self.forest == "onehot":
            from nas_hpo.strategies._smac_forest import OneHotRandomForest

            # SMAC's HPO-facade forest (HyperparameterOptimizationFacade.get_model's
            # settings) on one-hot categorical columns instead of choice indices.
            extra["model"] = OneHotRandomForest(
                scenario.configspace, log_y=True, n_trees=10, bootstrapping=True,
                ratio_features=1.0, min_samples_split=2, min_samples_leaf=1, max_depth=2**20,
                instance_features=scenario.instance_features, seed=scenario.seed)
        maximizer = facade.get_acquisition_maximizer(scenario)
        if self.maximizer == "unseen":
            from nas_hpo.strategies._smac_maximizer import UnseenLocalAndSortedRandomSearch

            # The facade's maximizer with its settings, proposing only new configurations.
            maximizer.__class__ = UnseenLocalAndSortedRandomSearch
            if self.skip_equivalent:
                maximizer.key = _network_key(self.space)
        _order_start_points(getattr(maximizer, "_local_search", None))
        if self.random_probability is not None:
            extra["random_design"] = facade.get_random_design(
                scenario, probability=self.random_probability)
        self._smac = facade(
            scenario,
            target_function=lambda config, seed=0, budget=None: 0.0,  # ask/tell only
            initial_design=facade.get_initial_design(scenario, n_configs=self.n_initial),
            acquisition_maximizer=maximizer,
            overwrite=True,
            logging_level=40,
            **extra,
        )
        # A resumed study: SMAC learns what the study already knows.
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if self.space.is_valid(t.params):
                budget = t.system_attrs.get(FIDELITY_ATTR, {}).get(self.fidelity or "")
                self._tell_config(study, t.params, t.value, budget)

    def _cost(self, study: optuna.Study, value: float) -> float:
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        return -value if maximize else value

    def _tell_config(
        self, study: optuna.Study, params: dict[str, Any], value: Any, budget: Any = None
    ) -> None:
        from ConfigSpace import Configuration
        from smac.runhistory.dataclasses import TrialInfo, TrialValue

        config = Configuration(self._smac.scenario.configspace, values=dict(params))
        if self.fidelity and budget is None:
            return  # a trial of another strategy, at no known budget: nothing to tell
        self._smac.tell(
            TrialInfo(config=config, seed=self.seed, budget=budget),
            TrialValue(cost=self._cost(study, float(value))),
            save=False,
        )

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if len(study.directions) != 1:
            raise ValueError("the smac strategy optimizes one objective")
        if "fixed_params" in trial.system_attrs:
            return
        if self._smac is None:
            self._start(study)
        from smac.runhistory.dataclasses import TrialValue
        from smac.runhistory.enumerations import StatusType

        for _ in range(_REDRAWS):
            info = self._smac.ask()
            config = configspace_values(dict(info.config).items())
            if self.space.is_valid(config):
                self._pending[trial._trial_id] = (info, config)
                if self.fidelity:
                    # SMAC's budgets are floats; whole ones (epochs) are handed out as ints.
                    budget = float(info.budget)
                    value = int(budget) if budget.is_integer() else budget
                    study._storage.set_trial_system_attr(
                        trial._trial_id, FIDELITY_ATTR, {self.fidelity: value}
                    )
                return
            self._smac.tell(info, TrialValue(cost=float("inf"), status=StatusType.CRASHED))
        raise RuntimeError(f"SMAC proposed {_REDRAWS} invalid configurations in a row")

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        entry = self._pending.get(trial._trial_id)
        if entry is not None and param_name in entry[1]:
            return entry[1][param_name]
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        entry = self._pending.pop(trial._trial_id, None)
        if entry is None:
            return
        from smac.runhistory.dataclasses import TrialValue
        from smac.runhistory.enumerations import StatusType

        info, _ = entry
        if state == TrialState.COMPLETE and values:
            self._smac.tell(info, TrialValue(cost=self._cost(study, float(values[0]))), save=False)
        else:
            # A failed or pruned evaluation: SMAC's crash cost keeps it from coming back.
            self._smac.tell(
                info, TrialValue(cost=float("inf"), status=StatusType.CRASHED), save=False
            )


def _network_key(space: SearchSpace) -> Callable[[Any], Any]:
    """A ConfigSpace configuration's ``space.network_key`` (an invalid one: itself)."""

    def key(config: Any) -> Any:
        values = configspace_values(dict(config).items())
        return space.network_key(values) if space.is_valid(values) else config

    return key


@register("smac", objectives="one", test_options={"n_initial": 2})
def smac(setting: Setting, *, n_initial: AtLeast1 = 10,
         facade: Literal["hpo", "blackbox"] = "hpo",
         forest: Literal["onehot", "smac"] = "onehot",
         maximizer: Literal["unseen", "smac"] = "unseen",
         random_probability: Probability | None = None,
         skip_equivalent: bool | None = None) -> Strategy:
    """SMAC3's BO on the space's ConfigSpace, ask/tell (see ``_smac``): ``facade = "hpo"``
    (random forest, SMAC's default for categorical and conditional spaces) or ``"blackbox"``
    (Gaussian process); ``n_initial`` Sobol configurations before the model takes over.
    ``forest = "onehot"`` fits the forest to one-hot categorical choices (``_smac_forest``),
    ``"smac"`` SMAC's own forest on choice indices. ``maximizer = "unseen"`` ranks every
    candidate the acquisition search scored and was not evaluated yet (``_smac_maximizer``),
    ``"smac"`` hands over SMAC's own few local-search end points. ``random_probability``: the
    share of proposals SMAC interleaves at random (its facade's: 0.2 for ``hpo``, 0.084 for
    ``blackbox``). ``skip_equivalent`` (with ``maximizer = "unseen"`` only; unset: on with it):
    the maximizer also leaves out configurations building a network the study has
    (``space.network_key``: NB201's isomorphic cells; on other spaces the same as without)."""
    _one_direction("smac", setting)
    sampler = SmacSampler(setting.space, seed=setting.seed, n_initial=n_initial, facade=facade,
                          forest=forest, maximizer=maximizer,
                          random_probability=random_probability,
                          skip_equivalent=skip_equivalent)
    return Strategy("smac", sampler, optuna.pruners.NopPruner())


@register("smac_hyperband", objectives="one", fidelity=True,
          test_options={"n_initial": 2, "max_budget": 3})
def smac_hyperband(
    setting: Setting,
    *,
    fidelity: str = "epochs",
    min_budget: Positive = 1,
    max_budget: Positive = 9,
    eta: AtLeast2 = 3,
    n_initial: AtLeast1 = 10,
    forest: Literal["onehot", "smac"] = "onehot",
    maximizer: Literal["unseen", "smac"] = "unseen",
    random_probability: Probability | None = None,
    skip_equivalent: bool | None = None,
) -> Strategy:
    """SMAC3's multi-fidelity facade (Hyperband intensifier + random forest, BOHB-like); each
    (config, budget) run is a trial whose objective gets ``{fidelity: budget}``; ``forest``,
    ``maximizer``, ``random_probability`` (SMAC's: 0.2) and ``skip_equivalent`` as for
    ``smac`` (unset: on with ``maximizer = "unseen"``)."""
    _one_direction("smac_hyperband", setting)
    if fidelity not in setting.fidelities:
        has = ", ".join(setting.fidelities) or "none"
        raise ValueError(
            f"smac_hyperband needs an objective with the fidelity {fidelity!r}; the objective's "
            f"fidelities: {has}"
        )
    sampler = SmacSampler(setting.space, seed=setting.seed, n_initial=n_initial,
                          fidelity=fidelity, min_budget=min_budget, max_budget=max_budget,
                          eta=eta, forest=forest, maximizer=maximizer,
                          random_probability=random_probability,
                          skip_equivalent=skip_equivalent)
    return Strategy("smac_hyperband", sampler, optuna.pruners.NopPruner(), multi_fidelity=True)
