"""The NB201-digits table that ships, and the one its generator made on a GPU
(benchmarks/nb201_digits_h200.parquet): their checksums, their shape (every cell, two seeds,
every epoch), isomorphic cells answered by their class's representative, and the agreements
the card states, recomputed from the tables."""

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
GPU_TABLE = ROOT / "benchmarks" / "nb201_digits_h200.parquet"
CARD = ROOT / "benchmarks" / "nb201_digits.md"


@pytest.fixture(scope="module", params=[TABLE, GPU_TABLE], ids=["shipped", "h200"])
def table(request) -> Path:
    return request.param


@pytest.fixture(scope="module")
def frame(table) -> pd.DataFrame:
    return pd.read_parquet(table)


def _seed_tau(frame: pd.DataFrame) -> float:
    last = frame[(frame.epoch == frame.epoch.max()) & (frame.arch == frame.unique)]
    wide = last.pivot(index="arch", columns="seed", values="val_accuracy")
    return kendalltau(wide[0], wide[1]).statistic


def test_the_table_has_its_checksum(table):
    digest, name = table.with_suffix(".parquet.sha256").read_text().split()
    assert name == table.name
    assert hashlib.sha256(table.read_bytes()).hexdigest() == digest


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


def test_the_card_states_the_seed_agreement_of_the_tables():
    card = CARD.read_text()
    for path, pattern in ((TABLE, r"all 5,273 classes: Kendall τ = ([0-9.]+)"),
                          (GPU_TABLE, r"GPU table's seeds agree.*?Kendall τ = ([0-9.]+)")):
        stated = re.search(pattern, card, re.S)
        assert stated, f"the card states the seed agreement of {path.name}"
        assert float(stated.group(1)) == pytest.approx(_seed_tau(pd.read_parquet(path)),
                                                       abs=5e-4)


def test_the_card_states_how_the_two_tables_agree():
    """Kendall τ between the two tables' seed-mean final validation accuracies per class."""
    means = []
    for path in (TABLE, GPU_TABLE):
        f = pd.read_parquet(path)
        last = f[(f.epoch == f.epoch.max()) & (f.arch == f.unique)]
        means.append(last.groupby("arch").val_accuracy.mean())
    tau = kendalltau(means[0], means[1].loc[means[0].index]).statistic
    stated = re.search(r"across the two machines.*?Kendall τ = ([0-9.]+)", CARD.read_text(),
                       re.S)
    assert stated, "the card states how the two tables agree"
    assert float(stated.group(1)) == pytest.approx(tau, abs=5e-4)
    assert means[0].idxmax() == means[1].idxmax() or means[1][means[0].idxmax()] == \
        means[1].max(), "the card says both tables have the same best class"


def test_the_tabular_objective_answers_from_the_shipped_table_by_name():
    objective = objectives.get("tabular", path="nb201_digits", metrics=["val_accuracy"],
                               fidelity="epoch", cost="time", attrs=["test_accuracy"])
    space = spaces.get("nb201")
    from nas_hpo import Context

    result = objective(space.sample(seed=0), space=space, ctx=Context())
    assert 0 <= result.values[0] <= 1 and result.user_attrs["table_rows"] == 2
    arch, best, test = objective.best("test_accuracy")
    assert 0.5 < best <= 1 and 0 < test <= 1
