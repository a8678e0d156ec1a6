"""Reserving a trial of a shared study: the check that the study has room for one more trial
and the creation of that trial happen under one lock that every process adding trials to the
study takes, so that runs joining one study stop at exactly ``n_trials``. (Checked without the
lock, two processes that look at the same instant both see room for the last trial.)

The lock is a file next to a SQLite or journal file (``<file>.nas-hpo.lock``: their processes
share a machine), an advisory lock on PostgreSQL (``pg_advisory_lock``) and MySQL
(``GET_LOCK``), keyed by the study; other databases have none (two processes may then add one
trial more between them). An in-memory study is one process's alone.
"""

from __future__ import annotations

import contextlib
import functools
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import optuna

from nas_hpo._locks import file_lock
from nas_hpo.study._internals import rdb_backend
from nas_hpo.study._storage import MEMORY, storage_file

__all__ = ["reservation"]


def reservation(study: optuna.Study, url: str
                ) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """A maker of the lock under which a process checks the budget and asks for a trial of
    ``study`` (a fresh context manager for each trial)."""
    if url == MEMORY:
        return contextlib.nullcontext
    path = storage_file(url)
    if path is not None:
        return functools.partial(file_lock, f"{path}.nas-hpo.lock")
    backend = rdb_backend(study)
    if backend is None:
        return contextlib.nullcontext
    key = zlib.crc32(f"nas-hpo:{study.study_name}".encode())
    if backend.engine.name == "postgresql":
        return functools.partial(_advisory, backend, "SELECT pg_advisory_lock(:k)",
                                 "SELECT pg_advisory_unlock(:k)", key)
    if backend.engine.name in ("mysql", "mariadb"):
        return functools.partial(_advisory, backend, "SELECT GET_LOCK(:k, 600)",
                                 "SELECT RELEASE_LOCK(:k)", f"nas-hpo:{key}")
    return contextlib.nullcontext


@contextlib.contextmanager
def _advisory(backend: optuna.storages.RDBStorage, take: str, give: str, key: Any
              ) -> Iterator[None]:
    import sqlalchemy as sa

    with backend.engine.connect() as connection:
        connection.execute(sa.text(take), {"k": key})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(sa.text(give), {"k": key})
            connection.commit()
