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
import time
import warnings
from typing import Any

import optuna

__all__ = [
    "MEMORY",
    "StorageError",
    "check_url",
    "describe",
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


def describe(url: str) -> str:
    """The URL without its password (for messages and the dashboard hint)."""
    if "://" in url and "@" in url.split("://", 1)[1]:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url


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
        return (f"{url!r} is not a storage URL; use sqlite:///file.db, "
                f"postgresql://user@host/db, journal:file.log or {MEMORY}")
    return None


def open_storage(url: str, *, heartbeat_s: int | None = 30) -> optuna.storages.BaseStorage:
    """The Optuna storage behind ``url`` (see the module docstring for the forms)."""
    if url == MEMORY:
        return optuna.storages.InMemoryStorage()
    path = journal_path(url)
    if path is not None:
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(path))
    if "://" not in url:
        raise StorageError(
            f"{url!r} is not a storage URL; use sqlite:///file.db, postgresql://user@host/db, "
            f"journal:file.log or {MEMORY}"
        )
    kwargs: dict[str, Any] = {}
    wal = False
    if url.startswith("sqlite:"):
        path = _ensure_sqlite_dir(url)
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
        raise StorageError(f"{describe(url)}: cannot open the storage: {e}") from None


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
    """``open_storage`` for reading a study (report, dashboard, correlate): a SQLite or journal
    file that is not there is an error, and is not created empty by opening it."""
    path = storage_file(url)
    if path is not None and not os.path.exists(path):
        raise StorageError(f"{describe(url)}: no such file {path!r} (nothing was created)")
    return open_storage(url, heartbeat_s=None)


def _ensure_sqlite_dir(url: str) -> str | None:
    """Create the folder of a SQLite file; returns the file's path (None: in-memory SQLite)."""
    path = _sqlite_path(url)
    parent = os.path.dirname(path) if path else ""
    if parent:
        os.makedirs(parent, exist_ok=True)
    return path


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
