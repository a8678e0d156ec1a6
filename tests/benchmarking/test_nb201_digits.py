"""The NB201-digits table that ships: its checksum, its shape (every cell, two seeds, every
epoch), isomorphic cells answered by their class's representative, and the seed agreement its
card states, recomputed from the table."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import kendalltau

from nas_hpo import objectives, spaces
from nas_hpo.objectives.tabular import shipped_table
from nas_hpo.spaces import nb201

ROOT = Path(__file__).resolve().parents[2]
TABLE = shipped_table("nb201_digits")
CARD = ROOT / "benchmarks" / "nb201_digits.md"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.read_parquet(TABLE)


def test_the_shipped_table_has_its_checksum():
    digest, name = TABLE.with_suffix(".parquet.sha256").read_text().split()
    assert name == TABLE.name
    assert hashlib.sha256(TABLE.read_bytes()).hexdigest() == digest


def test_every_cell_has_two_seeds_and_every_epoch(frame):
    assert frame.arch.nunique() == 15_625
    counts = frame.groupby("arch").size()
    epochs = frame.epoch.max()
    assert set(counts) == {2 * epochs}
    assert set(frame.seed) == {0, 1}
    for column in ("val_accuracy", "test_accuracy", "train_accuracy"):
        assert frame[column].between(0, 1).all()
    assert (frame.epoch_time > 0).all() and (frame.params > 0).all() and (frame.flops > 0).all()


def test_isomorphic_cells_share_their_representatives_rows(frame):
    assert frame.unique.nunique() == 5_273
    sample = frame[frame.arch.isin(frame.arch.drop_duplicates().sample(200, random_state=0))]
    for arch, unique in sample[["arch", "unique"]].drop_duplicates().itertuples(index=False):
        assert nb201.canonical(nb201.from_arch_str(arch)) == nb201.canonical(
            nb201.from_arch_str(unique))
    mine = frame[frame.arch == sample.arch.iloc[0]].reset_index(drop=True)
    theirs = frame[frame.arch == mine.unique.iloc[0]].reset_index(drop=True)
    assert mine.val_accuracy.tolist() == theirs.val_accuracy.tolist()


def test_the_card_states_the_seed_agreement_of_the_table(frame):
    last = frame[(frame.epoch == frame.epoch.max()) & (frame.arch == frame.unique)]
    wide = last.pivot(index="arch", columns="seed", values="val_accuracy")
    tau = kendalltau(wide[0], wide[1]).statistic
    card = CARD.read_text()
    stated = re.search(r"all 5,273 classes: Kendall τ = ([0-9.]+)", card)
    assert stated, "the card states the seed agreement over all classes"
    assert float(stated.group(1)) == pytest.approx(tau, abs=5e-4)


def test_the_tabular_objective_answers_from_the_shipped_table_by_name():
    objective = objectives.get("tabular", path="nb201_digits", metrics=["val_accuracy"],
                               fidelity="epoch", cost="time", attrs=["test_accuracy"])
    space = spaces.get("nb201")
    from nas_hpo import Context

    result = objective(space.sample(seed=0), space=space, ctx=Context())
    assert 0 <= result.values[0] <= 1 and result.user_attrs["table_rows"] == 2
    arch, best, test = objective.best("test_accuracy")
    assert 0.5 < best <= 1 and 0 < test <= 1
