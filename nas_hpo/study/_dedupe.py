"""Architectures already evaluated: a proposal whose architecture (at the same fidelity) has a
finished, complete trial in the study is answered from that trial instead of evaluated again.

NAS spaces are small next to HPO's and samplers repeat themselves (random search on
NAS-Bench-201 draws a repeat within ~150 trials; evolution and NSGA-II breed children equal to
a parent). The repeat is recorded as a trial of its own (the sampler sees its value; it counts
towards ``n_trials``) with ``duplicate_of``: the number of the trial it was answered from.
Failed and pruned trials are evaluated again (a failure may be transient, a pruning depends on
the trials around it). A repeat of an architecture this process is evaluating right now (a Ray
driver runs several trials at once) waits for that evaluation and takes its outcome, whatever
it is. ``[strategy] reevaluate = true`` evaluates every proposal (noisy objectives). Two
processes proposing the same new architecture at the same moment both evaluate it: across
processes only finished trials are looked up.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import optuna

from nas_hpo.study._internals import rdb_backend

__all__ = ["OWN_ATTRS", "Answer", "ArchRecord", "answer_attrs", "fidelity_key"]

#: Attributes of the answering trial that describe its run, not the architecture.
OWN_ATTRS = frozenset({"seed", "fail_reason", "fail_traceback", "duplicate_of", "warm_start",
                       "ray_trial_id", "budget"})


def fidelity_key(fidelity: Any) -> str:
    return "" if not fidelity else json.dumps(fidelity, sort_keys=True)


class ArchRecord:
    """The complete trials of a study by (architecture key, fidelity): read from the storage
    once, then kept up to date with what this process records; read again only while other
    processes add trials to the study (``find(..., others=True)``)."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self._table: dict[tuple[str, str], int] | None = None
        # The values and attributes of trials this process recorded: a repeat of one is
        # answered without reading the storage.
        self._own: dict[int, Answer] = {}
        self._memory = type(study._storage) is optuna.storages.InMemoryStorage
        self._backend = rdb_backend(study)

    def add(self, arch: str, fidelity: Any, number: int, values: tuple[float, ...],
            attrs: dict[str, Any]) -> None:
        """A complete trial this process recorded."""
        self._own[number] = Answer(number, tuple(values), dict(attrs))
        if self._table is not None:
            self._table.setdefault((arch, fidelity_key(fidelity)), number)

    def find(self, arch: str, fidelity: Any, *, others: bool = False) -> Answer | None:
        """The complete trial of ``arch`` at ``fidelity``, or None. ``others``: processes other
        than this one added trials since the last look, so the storage is read again."""
        if self._table is None or (others and not self._memory):
            self._table = self._load()
        number = self._table.get((arch, fidelity_key(fidelity)))
        if number is None:
            return None
        known = self._own.get(number)
        if known is not None:
            return known
        storage = self.study._storage
        trial = storage.get_trial(storage.get_trial_id_from_study_id_trial_number(
            self.study._study_id, number))
        return Answer(trial.number, tuple(trial.values), dict(trial.user_attrs))

    def _load(self) -> dict[tuple[str, str], int]:
        rows: list[tuple[int, str | None, Any]] = []
        if self._backend is not None:
            try:
                with self._backend.engine.connect() as connection:
                    found = connection.execute(_arch_query(self.study._study_id)).all()
                rows = [(int(n), json.loads(a), None if b is None else json.loads(b))
                        for n, a, b in found]
            except Exception:  # another Optuna schema: the public, slower way
                self._backend = None
        if self._backend is None:
            rows = [(t.number, t.user_attrs.get("arch"), t.user_attrs.get("budget"))
                    for t in self.study.get_trials(deepcopy=False,
                                                   states=(optuna.trial.TrialState.COMPLETE,))]
        table: dict[tuple[str, str], int] = {}
        for number, arch, budget in sorted(rows, key=lambda r: r[0]):
            if isinstance(arch, str):
                table.setdefault((arch, fidelity_key(budget)), number)
        return table


@dataclass(frozen=True)
class Answer:
    """What a repeat is answered from: the evaluated trial's number, values and attributes."""

    number: int
    values: tuple[float, ...]
    user_attrs: dict[str, Any]


def answer_attrs(original: Answer) -> dict[str, Any]:
    """What a repeat of ``original`` records: its measurements and ``duplicate_of``."""
    attrs = {k: v for k, v in original.user_attrs.items() if k not in OWN_ATTRS}
    attrs["duplicate_of"] = original.user_attrs.get("duplicate_of", original.number)
    return attrs


@functools.lru_cache(maxsize=64)
def _arch_query(study_id: int) -> Any:
    """(number, arch JSON, budget JSON) of the study's complete trials."""
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    trial, attr = models.TrialModel, models.TrialUserAttributeModel
    arch = sa.orm.aliased(attr)
    budget = sa.orm.aliased(attr)
    return (sa.select(trial.number, arch.value_json, budget.value_json)
            .join(arch, sa.and_(arch.trial_id == trial.trial_id, arch.key == "arch"))
            .outerjoin(budget, sa.and_(budget.trial_id == trial.trial_id,
                                       budget.key == "budget"))
            .where(trial.study_id == study_id,
                   trial.state == optuna.trial.TrialState.COMPLETE))
