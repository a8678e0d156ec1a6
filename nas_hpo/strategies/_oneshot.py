"""Differentiable one-shot search (``nas_hpo.oneshot``) as a strategy of a study: "search,
then evaluate" in one command.

Before the study's first trial (``Strategy.before_study``, which the lifecycle calls on every
backend) the search runs in this process on the objective's data (its ``data_source()``,
else the embedded default): the training split for the bilevel optimisation, the
validation split to score each epoch. Every epoch's derived architecture is recorded as a
complete trial of the study — its config as the params, its one-shot validation accuracy as
the value, its ``arch``, the epoch, softmax(α) per parameter, the collapse guard's share of
parameter-free choices in the ``oneshot`` attribute, and ``budget = "one-shot"`` so that the
record never answers a real evaluation of that architecture with it; ``n_trials`` does not
count them. The study's trials after that are evaluated by its objective (``train`` by default): the first is the derived
architecture; later ones (a larger ``n_trials``) sample the learned distribution softmax(α).

The final α is kept in the study's system attributes: a resumed study does not search again.
An interrupted search is run again from the start (its recorded epochs stay in the study).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from nas_hpo.space import optuna_distribution
from nas_hpo.strategies import NOT_COUNTED_ATTR
from nas_hpo.strategies._decided import DecidedSampler

if TYPE_CHECKING:
    from nas_hpo._objective import DataSource
    from nas_hpo.oneshot import Epoch, OneShotSearch
    from nas_hpo.space import SearchSpace

RESULT_ATTR = "nas_hpo:oneshot:result"
EPOCH_ATTR = "nas_hpo:oneshot:epoch"
ONE_SHOT_BUDGET = "one-shot"


class OneShotSampler(DecidedSampler):
    """Runs ``search`` before the first trial, then proposes its architecture (and samples of
    its distribution)."""

    def __init__(self, space: SearchSpace, search: OneShotSearch, *,
                 data_source: DataSource | None, seed: int) -> None:
        super().__init__(space, seed=seed)
        self.search = search
        self.data_source = data_source

    # ------------------------------------------------------------------ the search

    def before_study(self, study: optuna.Study) -> None:
        """Search, unless the study holds a finished search."""
        if _result(study) is None:
            self._search(study)

    def _search(self, study: optuna.Study) -> None:
        from nas_hpo import data

        source = self.data_source
        splits = data.load(source.dataset if source else data.DEFAULT,
                           data_dir=source.data_dir if source else None)
        method = self.search.method + (f" (order {self.search.order})"
                                       if self.search.method == "darts" else "")
        distributions = {n: optuna_distribution(p) for n, p in self.space.params.items()}

        def record(epoch: Epoch) -> None:
            attrs = {
                "arch": self.space.arch_key(epoch.config),
                "budget": ONE_SHOT_BUDGET,
                "seed": self.search.seed,
                "oneshot": {"method": method, "epoch": epoch.epoch,
                            "train_loss": epoch.train_loss, "seconds": epoch.seconds,
                            "parameter_free_share": epoch.parameter_free_share,
                            "collapsed": epoch.collapsed, **epoch.extra},
                "alphas": epoch.alphas,
            }
            study.add_trial(optuna.trial.create_trial(
                params=epoch.config,
                distributions={n: distributions[n] for n in epoch.config},
                values=[epoch.val_accuracy], user_attrs=attrs,
                system_attrs={EPOCH_ATTR: epoch.epoch}))
            storage = study._storage
            held = storage.get_study_system_attrs(study._study_id).get(NOT_COUNTED_ATTR, 0)
            storage.set_study_system_attr(study._study_id, NOT_COUNTED_ATTR, held + 1)
            if epoch.collapsed:
                optuna.logging.get_logger("optuna.nas_hpo").warning(
                    "%s epoch %d: %.0f%% of the derived architecture's choices are "
                    "parameter-free operations (collapse)%s", method, epoch.epoch,
                    100 * epoch.parameter_free_share,
                    "; stopping" if self.search.on_collapse == "stop" else "")

        history = self.search.run(splits.x_train, splits.y_train, splits.x_val, splits.y_val,
                                  num_classes=splits.num_classes, on_epoch=record)
        final = history[-1]
        if self.search.on_collapse == "stop":
            before = [e for e in history if not e.collapsed]
            final = before[-1] if before else final
        study._storage.set_study_system_attr(study._study_id, RESULT_ATTR, {
            "config": final.config, "epoch": final.epoch,
            "alphas": {n: [float(v) for v in p.detach()]
                       for n, p in self.search.probabilities().items()},
        })

    # ------------------------------------------------------------------ proposals

    def propose(self, study: optuna.Study, trial: FrozenTrial
                ) -> tuple[dict[str, Any], dict[str, Any]]:
        result = _result(study)
        if result is None:  # before_study was not called (a bare Optuna study): search now
            self.before_study(study)
            result = _result(study)
            assert result is not None
        evaluated = any(EPOCH_ATTR not in t.system_attrs
                        for t in study.get_trials(deepcopy=False) if t.number != trial.number)
        if not evaluated:
            return dict(result["config"]), {"nas_hpo:oneshot:derived": result["epoch"]}
        rng = np.random.default_rng([self.seed, trial.number])
        return self._sample(result["alphas"], rng), {"nas_hpo:oneshot:derived": None}

    def _sample(self, alphas: dict[str, list[float]], rng: np.random.Generator
                ) -> dict[str, Any]:
        """A config drawn from the learned distribution, in the space's order."""
        config: dict[str, Any] = {}
        for name in self.space.order:
            if not self.space.is_active(name, config):
                continue
            p = self.space[name]
            if name in alphas:
                probs = np.asarray(alphas[name], dtype=float)
                config[name] = p.values()[int(rng.choice(len(probs), p=probs / probs.sum()))]
            else:
                config[name] = p.values()[0]
        return config if self.space.is_valid(config) else self.space.repair(config)


def _result(study: optuna.Study) -> dict[str, Any] | None:
    return study._storage.get_study_system_attrs(study._study_id).get(RESULT_ATTR)

