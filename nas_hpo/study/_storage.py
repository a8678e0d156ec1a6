"""Storage URLs → Optuna storages.

Every form a user may write in ``[study] storage`` / ``--storage``:

- ``sqlite:///path.db`` (the default ``sqlite:///nas_hpo.db``): Optuna's RDB storage on SQLite,
  with a long lock timeout so that several worker processes on one machine wait for each other's
  writes instead of failing with ``database is locked``, in SQLite's write-ahead-log mode (one
  fsync per commit instead of the rollback journal's several, and readers such as the dashboard
  never block a writer; still ``synchronous=FULL``, so a committed trial survives a power cut).
  A database on a network file system keeps the rollback journal: WAL needs shared memory
  that NFS-like file systems do not provide.
- ``postgresql://user:pass@host/db``, ``mysql+pymysql://...``, any SQLAlchemy URL: Optuna's RDB
  storage, shared by workers on any number of machines.
- ``journal:path.log`` (or ``journal:///abs/path.log``): Optuna's journal file storage (append-only,
  file-locked; for NFS-like shared folders where SQLite locking is unreliable).
- ``:memory:``: Optuna's in-memory storage (one process, nothing persists).

Heartbeats: server RDB storages get Optuna's heartbeat (``heartbeat_s``; off for SQLite unless
asked for, whose workers share one machine and are covered by ``_recovery``'s process check),
so a RUNNING trial whose worker vanished on another machine is failed once its heartbeat is
older than the grace period.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from typing import Any

import optuna

__all__ = [
    "MEMORY",
    "StorageError",
    "check_url",
    "describe",
    "mask_in",
    "open_existing_storage",
    "open_storage",
    "storage_file",
]

MEMORY = ":memory:"
JOURNAL = "journal:"
# SQLite's busy timeout (seconds): how long a writer waits for another process's lock.
_SQLITE_TIMEOUT_S = 120


class StorageError(ValueError):
    """A storage URL that cannot be opened (the message names the URL and the cause)."""


_SECRET_QUERY = re.compile(r"(?i)([?&](?:password|passwd|pwd|secret|token)=)[^&]*")
_SECRET_QUERY_VALUE = re.compile(r"(?i)[?&](?:password|passwd|pwd|secret|token)=([^&]+)")


_CREDENTIALS = re.compile(r"^([A-Za-z][\w+.-]*:(?://)?[^:@/]*):([^@]*)@")


def describe(url: str) -> str:
    """The URL without its password (``user:***@host``, ``?password=***``): the one helper
    every message, log line, report and hint that shows a storage URL goes through."""
    if not isinstance(url, str):
        return repr(url)
    return _SECRET_QUERY.sub(r"\1***", _CREDENTIALS.sub(r"\1:***@", url))


def mask_in(text: str, url: str) -> str:
    """``text`` (e.g. a driver's error message) with ``url`` and its password masked."""
    text = text.replace(url, describe(url))
    for password in (_password(url), *_SECRET_QUERY_VALUE.findall(url)):
        if password:
            text = text.replace(password, "***")
    return text


def _password(url: str) -> str | None:
    found = _CREDENTIALS.match(url)
    return found.group(2) or None if found else None


def journal_path(url: str) -> str | None:
    """The file of a ``journal:`` URL, or ``None`` for other URLs."""
    if not url.startswith(JOURNAL):
        return None
    path = url[len(JOURNAL):]
    if path.startswith("///"):
        path = "/" + path[3:]
    elif path.startswith("//"):
        path = path[2:]
    if not path:
        raise StorageError(f"{url!r}: a journal storage needs a file, e.g. journal:study.log")
    return path


def check_url(url: str) -> str | None:
    """What is wrong with a storage URL's form (None: nothing), before anything is opened."""
    if url == MEMORY:
        return None
    try:
        journal_path(url)
    except StorageError as e:
        return str(e)
    if not url.startswith(JOURNAL) and "://" not in url:
        return (f"{describe(url)!r} is not a storage URL; use sqlite:///file.db, "
                f"postgresql://user@host/db, journal:file.log or {MEMORY}")
    return None


def _folder_for(url: str, path: str, kind: str) -> None:
    """Make the folder of the storage file ``path``; a path that is a folder, or lies under a
    regular file, is a ``StorageError`` naming the URL and the culprit."""
    if os.path.isdir(path):
        raise StorageError(f"{describe(url)}: {path!r} is a folder, not a {kind} file")
    parent = os.path.dirname(os.path.abspath(path))
    probe = parent
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if probe and not os.path.isdir(probe):
        raise StorageError(f"{describe(url)}: cannot put the {kind} file under {probe!r}, "
                           "which is a file, not a folder")
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise StorageError(f"{describe(url)}: cannot create the folder {parent!r}: "
                           f"{e.strerror or e}") from None


def _check_journal_lines(path: str) -> None:
    """``ValueError`` where a complete line of the journal is not a JSON object. (Optuna
    reports a bad line only once another line follows it, i.e. after this run's first
    write; a last line without its newline is a write in progress, and allowed.)"""
    import json

    if not os.path.exists(path):
        return
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                return
            try:
                if not isinstance(json.loads(line), dict):
                    raise ValueError("not an object")
            except ValueError as e:
                raise ValueError(f"line {number}: {e}") from None


def _journal(url: str, path: str) -> optuna.storages.BaseStorage:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    try:
        _check_journal_lines(path)
        storage = JournalStorage(JournalFileBackend(path))
        storage.get_all_studies()  # replays the log now: a damaged file is named here
        return storage
    except (ValueError, KeyError, TypeError) as e:  # a log line Optuna cannot read back
        raise StorageError(f"{describe(url)}: {path!r} is not a journal file Optuna can read "
                           f"({type(e).__name__}: {e})") from None
    except OSError as e:
        raise StorageError(f"{describe(url)}: cannot open {path!r}: {e.strerror or e}") from None


def open_storage(url: str, *, heartbeat_s: int | None = 30) -> optuna.storages.BaseStorage:
    """The Optuna storage behind ``url`` (see the module docstring for the forms)."""
    if url == MEMORY:
        return optuna.storages.InMemoryStorage()
    path = journal_path(url)
    if path is not None:
        _folder_for(url, path, "journal")
        return _journal(url, path)
    problem = check_url(url)
    if problem:
        raise StorageError(problem)
    kwargs: dict[str, Any] = {}
    wal = False
    if url.startswith("sqlite:"):
        path = _sqlite_path(url)
        if path is not None:
            _folder_for(url, path, "SQLite")
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": _SQLITE_TIMEOUT_S}}
        wal = path is not None and not _on_network_fs(path)
    else:
        # Connections of a long study outlive server-side idle timeouts; test them before use.
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    if heartbeat_s:
        kwargs["heartbeat_interval"] = int(heartbeat_s)
    try:
        for attempt in range(3):
            try:
                with warnings.catch_warnings():
                    # Optuna marks the heartbeat "experimental"; we rely on it knowingly.
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    storage = optuna.storages.RDBStorage(url, **kwargs)
                if wal:
                    _use_wal(storage)
                return storage
            except Exception as e:
                # Two processes creating the schema of a new database at once: the loser sees
                # "table ... already exists", or a duplicate alembic_version row (the Ray
                # cluster test met both); the schema is there now, so open it again.
                race = "already exists" in str(e) or "alembic_version" in str(e)
                if not race or attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")
    except ImportError as e:
        raise StorageError(
            f"{describe(url)}: the database driver is missing ({e}); for PostgreSQL "
            "pip install 'psycopg[binary]', for MySQL pip install pymysql"
        ) from None
    except Exception as e:  # sqlalchemy's OperationalError & co: unreachable, refused, ...
        raise StorageError(f"{describe(url)}: cannot open the storage: "
                           f"{mask_in(str(e).splitlines()[0], url)}") from None


def _sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///`` URL (None: another URL, or in-memory SQLite)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = url[len(prefix):].split("?", 1)[0]
    return None if not path or path == ":memory:" else path


def storage_file(url: str) -> str | None:
    """The file behind a SQLite or journal URL (None for a server or an in-memory storage)."""
    return journal_path(url) or _sqlite_path(url)


def open_existing_storage(url: str) -> optuna.storages.BaseStorage:
    """A storage opened for reading a study (report, dashboard, correlate), which never
    creates nor changes a database: a SQLite or journal file that is not there, and a
    database without Optuna's tables, are errors naming it; a SQLite file is opened read-only
    (no table created, no journal mode changed)."""
    if url == MEMORY:
        raise StorageError(f"{MEMORY}: an in-memory storage holds nothing to read")
    path = storage_file(url)
    if path is not None and not os.path.exists(path):
        raise StorageError(f"{describe(url)}: no such file {path!r} (nothing was created)")
    if path is not None and os.path.isdir(path):
        raise StorageError(f"{describe(url)}: {path!r} is a folder, not a storage file")
    if journal_path(url) is not None:
        return _journal(url, path)
    problem = check_url(url)
    if problem:
        raise StorageError(problem)
    read_url = url
    if path is not None:  # SQLite, read-only: SQLite's URI form with mode=ro
        read_url = f"sqlite:///file:{os.path.abspath(path)}?mode=ro&uri=true"
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(read_url)
        try:
            tables = set(sqlalchemy.inspect(engine).get_table_names())
        finally:
            engine.dispose()
    except ImportError as e:
        raise StorageError(f"{describe(url)}: the database driver is missing ({e})") from None
    except Exception as e:
        raise StorageError(f"{describe(url)}: cannot open the storage: "
                           f"{mask_in(str(e).splitlines()[0], url)}") from None
    missing = [t for t in ("studies", "trials", "version_info") if t not in tables]
    if missing:
        where = repr(path) if path is not None else "the database"
        raise StorageError(f"{describe(url)}: {where} is not an Optuna storage (no "
                           f"{missing[0]!r} table); nothing was changed")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(read_url, skip_table_creation=True)
    except Exception as e:
        raise StorageError(f"{describe(url)}: cannot read the storage: "
                           f"{mask_in(str(e).splitlines()[0], url)}") from None


# File systems on which SQLite's WAL mode is unsafe (no shared memory between machines).
_NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph",
               "glusterfs", "fuse.sshfs", "fuse.glusterfs", "fuse.ceph", "9p", "afs")


def _on_network_fs(path: str, mounts: str | None = None) -> bool:
    """Whether ``path`` lies on a network file system, by the deepest mount point holding it
    in ``mounts`` (the text of /proc/mounts, read when None; no such file: False)."""
    target = os.path.realpath(os.path.dirname(os.path.abspath(path)) or ".")
    if mounts is None:
        try:
            with open("/proc/mounts") as f:
                mounts = f.read()
        except OSError:
            return False
    best, fstype = "", ""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = fields[1].replace("\\040", " ")
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > len(best):
            best, fstype = mount, fields[2]
    return fstype in _NETWORK_FS


def _use_wal(storage: optuna.storages.RDBStorage) -> None:
    """Switch every connection of ``storage`` to SQLite's write-ahead log (see the module
    docstring). The mode is stored in the file; setting it again is a no-op."""
    from sqlalchemy import event

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
        except Exception:
            # Another process holds a lock while the mode would change: that connection keeps
            # the file's current mode, which is correct either way.
            pass
        finally:
            cursor.close()

    event.listen(storage.engine, "connect", on_connect)
    # Connections opened while the storage was created predate the listener.
    storage.engine.dispose()
