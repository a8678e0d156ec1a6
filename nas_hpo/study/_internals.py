"""Where nas-hpo reaches into Optuna's storages for speed: every trial's bookkeeping (its worker,
seed, architecture, costs, what the objective measured) goes into the storage transactions
Optuna makes anyway, instead of one transaction per attribute.

Each piece uses Optuna's own internals (optuna 3.x-5.x) and falls back to the public API where
they differ; each is undone when the run ends (``AttrWriter.close``, the functions ``stamp``
returns), so the storage object is Optuna's own again afterwards.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

import optuna
import optuna.study._tell as _optuna_tell

from nas_hpo.space import FORBIDDEN_ATTR
from nas_hpo.strategies import NOT_COUNTED_ATTR
from nas_hpo.study._recovery import WORKER_ATTR

__all__ = ["DUPLICATE_ATTR", "FINISHED", "AttrWriter", "count_query", "counted", "jsonable",
           "rdb_backend", "stamp_new_trials", "tell"]

FINISHED = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)
#: A trial answered from an earlier trial of the same architecture: that trial's number.
DUPLICATE_ATTR = "duplicate_of"


def tell(study: optuna.Study, trial: optuna.trial.Trial | int, value: Any,
         state: optuna.trial.TrialState) -> None:
    """What ``Study.tell`` does, without the deep copy of the trial it returns (a fifth of a
    cheap sampler's trial in memory): Optuna's own tell, which ``Study.optimize`` calls
    (looked up at each call; ``Study.tell`` where Optuna has no such function)."""
    own = getattr(_optuna_tell, "_tell_with_warning", None)
    if own is None:  # pragma: no cover - another Optuna
        study.tell(trial, value, state=state)
    else:
        own(study=study, trial=trial, value_or_values=value, state=state)


def rdb_backend(study: optuna.Study) -> optuna.storages.RDBStorage | None:
    """The RDB storage under ``study`` (also under Optuna's cached wrapper), or None."""
    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


_PLAIN = (str, int, float, bool, type(None))


def jsonable(value: Any) -> Any:
    """User attributes go through JSON in Optuna's storages; numpy and torch scalars don't."""
    if type(value) in _PLAIN:  # most attributes: no need to try a dump
        return value
    try:
        json.dumps(value)
        return value
    except TypeError:
        if hasattr(value, "item"):
            return value.item()
        if isinstance(value, Mapping):
            return {str(k): jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [jsonable(v) for v in value]
        return str(value)




class AttrWriter:
    """Writes a trial's user attributes with the least storage work: on a database in the
    transaction that finishes the trial (one multi-row upsert with the final state); in
    memory held and written in one step before the trial is told; elsewhere (journal files)
    one by one. ``put`` everything before the trial's state is told."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self._defer: Callable[[int, str, Any], None] | None = None
        self._undo: Callable[[], None] = lambda: None
        self._held: dict[int, dict[str, Any]] | None = None
        if type(study._storage) is optuna.storages.InMemoryStorage:
            self._held = {}
        else:
            defer, self._undo = _attrs_at_finish(study)
            self._defer = defer

    def put(self, trial_id: int, key: str, value: Any) -> None:
        if self._defer is not None:
            self._defer(trial_id, key, value)
        elif self._held is not None:
            self._held.setdefault(trial_id, {})[key] = jsonable(value)
        else:
            self.study._storage.set_trial_user_attr(trial_id, key, jsonable(value))

    def put_all(self, trial_id: int, attrs: Mapping[str, Any]) -> None:
        for key, value in attrs.items():
            self.put(trial_id, key, value)

    def before_tell(self, trial_id: int, trial: optuna.trial.Trial | None = None) -> None:
        """Write what is held in memory for ``trial_id`` (nothing to do elsewhere)."""
        if self._held:
            held = self._held.pop(trial_id, None)
            if held:
                _write_user_attrs(self.study._storage, trial_id, held, trial)

    def close(self) -> None:
        self._undo()
        if self._held is not None:
            self._held.clear()


def _write_user_attrs(storage: Any, trial_id: int, attrs: dict[str, Any],
                      trial: optuna.trial.Trial | None) -> None:
    """``trial.set_user_attr`` for several attributes in one step on an in-memory storage,
    where Optuna copies the trial for each (its steps, for several keys)."""
    try:  # optuna 3.x-5.x internals of InMemoryStorage.set_trial_user_attr
        with storage._lock:
            frozen = storage._get_trial(trial_id)
            storage.check_trial_is_updatable(trial_id, frozen.state)
            clone = object.__new__(frozen.__class__)  # copy.copy's result, without detours
            clone.__dict__.update(frozen.__dict__)
            clone._user_attrs = {**frozen._user_attrs, **attrs}
            storage._set_trial(trial_id, clone)
    except AttributeError:
        for key, value in attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)
    cached = getattr(trial, "_cached_frozen_trial", None)
    if cached is not None:  # as set_user_attr keeps the trial's own view
        cached.user_attrs.update(attrs)


def _attrs_at_finish(
    study: optuna.Study,
) -> tuple[Callable[[int, str, Any], None] | None, Callable[[], None]]:
    """On an RDB storage, write a trial's user attributes in the transaction that finishes it.

    Each ``set_user_attr`` is one transaction of its own (a commit, an fsync on SQLite: ~1 ms),
    and Optuna has no batch write; a trial that records its seed, architecture, costs and the
    objective's attributes paid one per attribute. Returns ``defer(trial_id, key, value)``,
    which holds an attribute until the trial's state becomes final (COMPLETE, PRUNED or FAIL:
    Optuna's ``tell`` always comes, Ctrl-C included), and an undo function; ``defer`` is None
    where this does not apply (in-memory and journal storages, another Optuna schema), and
    the caller writes at once. What is deferred is gone if the process is killed during the
    trial (``recover_stale`` then fails it with its parameters and worker, without them)."""
    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    none: tuple[None, Callable[[], None]] = (None, lambda: None)
    if not isinstance(backend, optuna.storages.RDBStorage):
        return none
    try:  # Optuna's own pieces of set_trial_state_values (optuna 3.x-5.x)
        import sqlalchemy.exc
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        parts = (backend._set_trial_attr_without_commit, backend._set_trial_value_without_commit,
                 backend.check_trial_is_updatable, models.TrialModel.find_or_raise_by_id)
    except (ImportError, AttributeError):
        return none
    set_attr, set_value, check, find = parts
    pending: dict[int, dict[str, Any]] = {}
    finish = backend.set_trial_state_values
    table = models.TrialUserAttributeModel
    dialect = backend.engine.name
    if dialect in ("sqlite", "postgresql"):
        # One upsert for all rows (Optuna runs a SELECT and an upsert per attribute); the same
        # statement as Optuna's, on the same unique (trial_id, key).
        from sqlalchemy.dialects import postgresql, sqlite

        insert = (sqlite if dialect == "sqlite" else postgresql).insert(table.__table__)
        # Built once (SQLAlchemy then reuses its compiled form), run for all rows at once.
        upsert = insert.on_conflict_do_update(
            index_elements=["trial_id", "key"], set_={"value_json": insert.excluded.value_json}
        )

        def write_attrs(session: Any, trial_id: int, attrs: dict[str, Any]) -> None:
            session.execute(upsert, [
                {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)}
                for k, v in attrs.items()
            ])
    else:
        def write_attrs(session: Any, trial_id: int, attrs: dict[str, Any]) -> None:
            for key, value in attrs.items():
                set_attr(session, table, trial_id, key, value)

    def defer(trial_id: int, key: str, value: Any) -> None:
        # Made JSON here (as Optuna would, at once): nothing can fail later in Optuna's tell.
        pending.setdefault(trial_id, {})[key] = jsonable(value)

    def set_trial_state_values(trial_id: int, state: optuna.trial.TrialState,
                               values: Any = None) -> bool:
        attrs = pending.get(trial_id) if state.is_finished() else None
        if not attrs:
            return finish(trial_id, state, values)
        # Held until written: a write a Ctrl-C broke off is made again when the engine fails
        # the interrupted trial (_fail_interrupted).
        try:
            with _create_scoped_session(backend.scoped_session) as session:
                trial = find(trial_id, session, for_update=True)
                check(trial_id, trial.state)
                write_attrs(session, trial_id, attrs)
                for objective, v in enumerate(values or ()):
                    set_value(session, trial, objective, v)
                trial.state = state
                trial.datetime_complete = datetime.datetime.now()
            pending.pop(trial_id, None)
            return True
        except sqlalchemy.exc.IntegrityError:
            pending.pop(trial_id, None)
            return False
        except TypeError:
            # Optuna's internals changed under us: the slow, public way (rolled back above).
            for key, value in pending.pop(trial_id).items():
                backend.set_trial_user_attr(trial_id, key, value)
            return finish(trial_id, state, values)

    backend.set_trial_state_values = set_trial_state_values  # type: ignore[method-assign]

    def undo() -> None:
        del backend.set_trial_state_values
        pending.clear()

    return defer, undo


def stamp_new_trials(study: optuna.Study, worker: str) -> Callable[[], None]:
    """Make the trials this process creates carry their worker from their creation (so that a
    later run can tell a trial whose process died, ``recover_stale``): a template trial, what
    ``enqueue_trial`` uses, puts the attribute into the creation's own storage transaction
    rather than one more (~1 ms each on SQLite). Trials popped from the queue are not created
    here; the trial function writes their worker. Returns a function that undoes the patch."""
    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    if isinstance(backend, optuna.storages.RDBStorage):
        undo = _stamp_in_creation_transaction(backend, worker)
        if undo is not None:
            return undo
    create = storage.create_new_trial

    def create_new_trial(study_id: int, template_trial: Any = None) -> int:
        if template_trial is not None:
            return create(study_id, template_trial)
        template = optuna.trial.FrozenTrial(
            number=-1, state=optuna.trial.TrialState.RUNNING, value=None, values=None,
            datetime_start=datetime.datetime.now(), datetime_complete=None, params={},
            distributions={}, user_attrs={}, system_attrs={WORKER_ATTR: worker},
            intermediate_values={}, trial_id=-1,
        )
        return create(study_id, template)

    storage.create_new_trial = create_new_trial  # type: ignore[method-assign]

    def undo() -> None:
        del storage.create_new_trial

    return undo


def _stamp_in_creation_transaction(
    backend: optuna.storages.RDBStorage, worker: str
) -> Callable[[], None] | None:
    """``_stamp_new_trials`` on a database: Optuna creates the plain trial as usual and one
    prepared INSERT adds the worker in the same transaction. (Optuna's template path deep-copies
    the template and runs a SELECT and a freshly built upsert per attribute: ~1 ms a trial on
    SQLite, most of it SQLAlchemy building statements.) None where Optuna's internals differ
    (optuna 3.x-5.x); the caller then uses the template."""
    try:
        import sqlalchemy as sa
        from optuna.storages._rdb import models

        prepare, create = backend._get_prepared_new_trial, backend._create_new_trial
        insert = sa.insert(models.TrialSystemAttributeModel.__table__)
    except (ImportError, AttributeError):
        return None
    value_json = json.dumps(worker)

    def get_prepared_new_trial(study_id: int, template_trial: Any, session: Any) -> Any:
        trial = prepare(study_id, template_trial, session)  # flushed: it has its id
        if template_trial is None:
            session.execute(insert, {"trial_id": trial.trial_id, "key": WORKER_ATTR,
                                     "value_json": value_json})
        return trial

    def create_new_trial(study_id: int, template_trial: Any = None) -> Any:
        frozen = create(study_id, template_trial)
        if template_trial is None:  # what the row now holds (the trial's cached view)
            frozen.system_attrs[WORKER_ATTR] = worker
        return frozen

    backend._get_prepared_new_trial = get_prepared_new_trial  # type: ignore[method-assign]
    backend._create_new_trial = create_new_trial  # type: ignore[method-assign]

    def undo() -> None:
        del backend._get_prepared_new_trial, backend._create_new_trial

    return undo


def counted(study: optuna.Study) -> int:
    """Trials that count against ``n_trials``: finished ones and those running now, except the
    forbidden draws (pruned before any evaluation, with a ``forbidden`` user attribute) and
    the trials a strategy recorded without an evaluation (``NOT_COUNTED_ATTR``)."""
    return _counted(study) - int(study._storage.get_study_system_attrs(study._study_id)
                                 .get(NOT_COUNTED_ATTR, 0))


def _counted(study: optuna.Study) -> int:
    states = (*FINISHED, optuna.trial.TrialState.RUNNING)
    backend = rdb_backend(study)
    if backend is not None:
        # One COUNT query instead of loading the unfinished trials with their params and
        # attributes (what get_trials does): this runs after every trial.
        try:
            with backend.engine.connect() as connection:
                return int(connection.execute(count_query(study._study_id)).scalar_one())
        except Exception:  # another Optuna schema: the public, slower way
            pass
    return sum(FORBIDDEN_ATTR not in t.user_attrs
               for t in study.get_trials(deepcopy=False, states=states))


@functools.lru_cache(maxsize=64)
def count_query(study_id: int) -> Any:
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    states = (*FINISHED, optuna.trial.TrialState.RUNNING)
    trial, attr = models.TrialModel, models.TrialUserAttributeModel
    forbidden = sa.exists().where(attr.trial_id == trial.trial_id, attr.key == FORBIDDEN_ATTR)
    # Only a pruned trial can be a forbidden draw: the attribute lookup is skipped for the rest
    # (it tripled the query's time on a 5,000-trial SQLite study).
    pruned = optuna.trial.TrialState.PRUNED
    return (sa.select(sa.func.count()).select_from(trial)
            .where(trial.study_id == study_id, trial.state.in_(states),
                   sa.or_(trial.state != pruned, ~forbidden)))
