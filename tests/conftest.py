"""Shared fixtures: every study in a test goes to its own SQLite file under tmp_path."""

from __future__ import annotations

import optuna
import pytest
import torch

# Two cores here: keep torch from oversubscribing when pytest runs beside other work.
torch.set_num_threads(2)
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def storage(tmp_path):
    return f"sqlite:///{tmp_path / 'study.db'}"
