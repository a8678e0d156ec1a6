"""NAS-Bench-201 / NATS-Bench importers on small files the tests write in each layout, their
results built the way the reference APIs' ``create_state_dict`` lays them out."""

from __future__ import annotations

import bz2
import collections
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from nas_hpo.benchmarking import importers

ARCHS = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
)
SEEDS = (777, 888)
ALL = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
# The sets each dataset is evaluated on, and those the 200-epoch runs evaluate only at the end,
# as in the benchmark files.
SETS = {"cifar10-valid": ("x-valid", "ori-test"), "cifar10": ("ori-test",),
        "cifar100": ("ori-test", "x-valid", "x-test"),
        "ImageNet16-120": ("ori-test", "x-valid", "x-test")}
LAST_ONLY = {"cifar10-valid": {"ori-test"}, "cifar10": set(), "cifar100": {"x-valid", "x-test"},
             "ImageNet16-120": {"x-valid", "x-test"}}
OFFSET = {"train": 0.0, "x-valid": 10.0, "x-test": 20.0, "ori-test": 30.0}


def _percent(name: str, index: int, seed: int, i: int) -> float:
    """The accuracy (percent) after 0-based epoch ``i``: different for every set, architecture,
    seed and epoch."""
    return 40 + OFFSET[name] + index + SEEDS.index(seed) / 2 + i / 8


def _trial(index: int, dataset: str, seed: int, epochs: int, old: bool) -> dict:
    """A ``ResultsCount`` state dict; ``old``: v1_0's trials without times or latency."""
    sets = SETS[dataset]
    at = {n: [epochs - 1] if epochs == 200 and n in LAST_ONLY[dataset] else range(epochs)
          for n in sets}
    train = [_percent("train", index, seed, i) for i in range(epochs)]
    return {
        "name": dataset, "net_state_dict": None, "train_acc5es": None,
        "train_acc1es": dict(enumerate(train)),
        "train_losses": {i: a / 50 for i, a in enumerate(train)},
        "train_times": None if old else collections.OrderedDict(
            (i, 5 + index + i / 4) for i in range(epochs)),
        "arch_config": {"channel": 16, "num_cells": 5, "arch_str": ARCHS[index],
                        "class_num": 10},
        "params": np.float64(0.5 + index / 10), "flop": 80.0 + index, "seed": f"{seed:04d}",
        "epochs": epochs, "latency": None if old else [np.float64(0.01 + index / 1000)],
        "eval_names": list(sets),
        "eval_acc1es": {f"{n}@{i}": _percent(n, index, seed, i) for n in sets for i in at[n]},
        "eval_losses": {f"{n}@{i}": _percent(n, index, seed, i) / 50 for n in sets
                        for i in at[n]},
        "eval_times": {} if old else {f"{n}@{i}": 1.5 for n in sets for i in range(epochs)},
    }


def _results(index: int, epochs: int, datasets: tuple[str, ...], old: bool = False) -> dict:
    """An ``ArchResults`` state dict."""
    return {"arch_index": index, "arch_str": ARCHS[index], "clear_net_done": True,
            "all_results": {(d, s): _trial(index, d, s, epochs, old)
                            for d in datasets for s in SEEDS},
            "dataset_seed": {d: list(SEEDS) for d in datasets}}


def _nb201(path, v1_0: bool = False, archs=ARCHS):
    less = ("cifar10-valid",) if v1_0 else ALL
    infos = {i: {"less": _results(i, 12, less, old=v1_0), "full": _results(i, 200, ALL, v1_0)}
             for i in range(len(ARCHS))}
    torch.save({"meta_archs": list(archs), "arch2infos": infos,
                "evaluated_indexes": list(infos)}, path)
    return path


def _save_pbz2(obj, path):
    with bz2.BZ2File(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)
    return path


def _nats_hps(i: int) -> dict:
    return collections.OrderedDict([("12", _results(i, 12, ALL)), ("200", _results(i, 200, ALL))])


def _nats_folder(folder):
    folder.mkdir()
    _save_pbz2({"meta_archs": list(ARCHS), "total_archs": len(ARCHS), "arch2infos": None,
                "evaluated_indexes": set()}, folder / "meta.pickle.pbz2")
    for i in range(len(ARCHS)):
        _save_pbz2(_nats_hps(i), folder / f"{i:06d}.pickle.pbz2")
    return folder


def _convert(tmp_path, source, **options) -> tuple[pd.DataFrame, dict]:
    summary = importers.convert(source, tmp_path / "out" / "table.parquet", **options)
    return pd.read_parquet(summary["out"]), summary


def _f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).astype(np.float32)


def test_a_row_per_architecture_seed_and_epoch_accuracies_as_fractions(tmp_path):
    frame, summary = _convert(tmp_path, _nb201(tmp_path / "NAS-Bench-201-v1_1-096897.pth"),
                              dataset="cifar10-valid")
    assert summary == {"rows": 3 * 2 * 200, "architectures": 3, "seeds": [777, 888],
                       "epochs": 200, "dataset": "cifar10-valid", "kind": "nas-bench-201",
                       "source": tmp_path / "NAS-Bench-201-v1_1-096897.pth",
                       "out": tmp_path / "out" / "table.parquet"}
    assert list(frame.columns) == list(importers.COLUMNS)
    assert pd.api.types.is_string_dtype(frame["arch"])
    assert {c: str(t) for c, t in frame.dtypes.items() if c != "arch"} == {
        "seed": "int64", "epoch": "int64", **{c: "float32" for c in importers.COLUMNS[3:]}}
    assert set(frame["arch"]) == set(ARCHS) and set(frame["seed"]) == set(SEEDS)
    run = frame[(frame["arch"] == ARCHS[1]) & (frame["seed"] == 888)]
    i = np.arange(200)
    assert run["epoch"].tolist() == list(range(1, 201))
    train = [_percent("train", 1, 888, k) for k in i]
    np.testing.assert_array_equal(run["train_accuracy"], _f32(np.asarray(train) / 100))
    np.testing.assert_array_equal(run["train_loss"], _f32(np.asarray(train) / 50))
    valid = np.asarray([_percent("x-valid", 1, 888, k) for k in i])
    np.testing.assert_array_equal(run["val_accuracy"], _f32(valid / 100))
    np.testing.assert_array_equal(run["val_loss"], _f32(valid / 50))
    # cifar10-valid's 200-epoch runs are tested on CIFAR-10's test set after the last epoch only
    assert run["test_accuracy"].iloc[:-1].isna().all() and run["test_loss"].iloc[:-1].isna().all()
    assert run["test_accuracy"].iloc[-1] == np.float32(_percent("ori-test", 1, 888, 199) / 100)
    steps = 6 + i / 4
    np.testing.assert_array_equal(run["epoch_time"], _f32(steps))
    np.testing.assert_array_equal(run["time"], _f32(np.cumsum(steps)))
    assert set(run["params_mb"]) == {np.float32(0.6)} and set(run["flops_m"]) == {np.float32(81)}
    assert set(run["latency_ms"]) == {np.float32(11.0)}


@pytest.mark.parametrize(("dataset", "val_set", "test_set"), [
    ("cifar10-valid", "x-valid", "ori-test"), ("cifar10", None, "ori-test"),
    ("cifar100", "x-valid", "x-test"), ("ImageNet16-120", "x-valid", "x-test")])
def test_validation_and_test_sets_are_the_reference_apis(tmp_path, dataset, val_set, test_set):
    frame, summary = _convert(tmp_path, _nb201(tmp_path / "nb201.pth"), dataset=dataset,
                              epochs=12)
    assert summary["rows"] == 3 * 2 * 12
    for (arch, seed), run in frame.groupby(["arch", "seed"]):
        index = ARCHS.index(arch)
        test = np.asarray([_percent(test_set, index, seed, k) for k in range(12)])
        np.testing.assert_array_equal(run["test_accuracy"], _f32(test / 100))
        if val_set is None:  # cifar10 trains on train + valid: no held-out validation set
            assert run["val_accuracy"].isna().all() and run["val_loss"].isna().all()
        else:
            valid = np.asarray([_percent(val_set, index, seed, k) for k in range(12)])
            np.testing.assert_array_equal(run["val_accuracy"], _f32(valid / 100))


@pytest.mark.parametrize("epochs", [12, 200])
def test_nats_folder_and_file_give_the_table_of_the_same_results(tmp_path, epochs):
    expected, _ = _convert(tmp_path, _nb201(tmp_path / "nb201.pth"), dataset="cifar100",
                           epochs=epochs)
    folder = _nats_folder(tmp_path / "NATS-tss-v1_0-3ffb9-simple")
    single = _save_pbz2({"meta_archs": list(ARCHS), "evaluated_indexes": {0, 1, 2},
                         "arch2infos": {i: _nats_hps(i) for i in range(len(ARCHS))}},
                        tmp_path / "NATS-tss-v1_0-3ffb9.pickle.pbz2")
    for source in (folder, single):
        frame, summary = _convert(tmp_path, source, dataset="cifar100", epochs=epochs)
        assert summary["kind"] == "nats-tss" and summary["architectures"] == 3
        pd.testing.assert_frame_equal(frame, expected)


def test_v1_0_has_12_epoch_runs_on_cifar10_valid_only_and_no_times(tmp_path):
    path = _nb201(tmp_path / "NAS-Bench-201-v1_0-e61699.pth", v1_0=True)
    with pytest.raises(ValueError, match=r"no 'cifar100' results for 12 epochs.*\['cifar10-valid'\]"):
        importers.convert(path, tmp_path / "t.parquet", dataset="cifar100", epochs=12)
    frame, _ = _convert(tmp_path, path, dataset="cifar10-valid", epochs=12)
    assert frame[["epoch_time", "time", "latency_ms"]].isna().all().all()
    first = frame[(frame["arch"] == ARCHS[0]) & (frame["seed"] == 777)].iloc[0]
    assert first["val_accuracy"] == np.float32(_percent("x-valid", 0, 777, 0) / 100)
    assert first["params_mb"] == np.float32(0.5)


def test_unknown_dataset_kind_and_schedule_list_the_known_ones(tmp_path):
    path = _nb201(tmp_path / "nb201.pth")
    with pytest.raises(ValueError, match="cifar10-valid, cifar10, cifar100, ImageNet16-120"):
        importers.convert(path, tmp_path / "t.parquet", dataset="svhn")
    with pytest.raises(ValueError, match="auto, nas-bench-201, nats-tss"):
        importers.convert(path, tmp_path / "t.parquet", dataset="cifar10", kind="nb301")
    with pytest.raises(ValueError, match=r"no 90-epoch schedule; one of \[12, 200\]"):
        importers.convert(path, tmp_path / "t.parquet", dataset="cifar10", epochs=90)


def test_files_that_are_not_the_benchmark_are_named(tmp_path):
    out = tmp_path / "t.parquet"
    with pytest.raises(ValueError, match="missing.pth: no such file or folder"):
        importers.convert(tmp_path / "missing.pth", out, dataset="cifar10")
    torch.save({"state_dict": {}}, tmp_path / "weights.pth")
    with pytest.raises(ValueError, match=r"weights.pth is not a NAS-Bench-201 file.*'meta_archs'"
                                         r".*found a dict with keys \['state_dict'\]"):
        importers.convert(tmp_path / "weights.pth", out, dataset="cifar10")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="notes.txt: cannot tell which benchmark"):
        importers.convert(tmp_path / "notes.txt", out, dataset="cifar10")
    (tmp_path / "x.pickle.pbz2").write_text("not bz2")
    with pytest.raises(ValueError, match="x.pickle.pbz2: cannot read it as a bz2"):
        importers.convert(tmp_path / "x.pickle.pbz2", out, dataset="cifar10")
    folder = _nats_folder(tmp_path / "nats")
    (folder / "meta.pickle.pbz2").unlink()
    with pytest.raises(ValueError, match=r"nats: expected .*meta.pickle.pbz2.*000000.pickle"):
        importers.convert(folder, out, dataset="cifar10")
    assert not out.exists()


def test_a_malformed_architecture_string_names_the_file_and_index(tmp_path):
    bad = (*ARCHS[:2], "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|none~0|none~1|none~2|")
    path = _nb201(tmp_path / "nb201.pth", archs=bad)
    with pytest.raises(ValueError, match=r"nb201.pth: architecture 2: malformed NAS-Bench-201"):
        importers.convert(path, tmp_path / "t.parquet", dataset="cifar10")
    path = _nb201(tmp_path / "swapped.pth", archs=(ARCHS[1], ARCHS[0], ARCHS[2]))
    with pytest.raises(ValueError, match=r"swapped.pth: architecture 0 is .* but its results say"):
        importers.convert(path, tmp_path / "t.parquet", dataset="cifar10")


def test_the_cli_converts_a_file_and_a_study_searches_the_table(tmp_path, capsys):
    from nas_hpo.cli import main

    source = _nb201(tmp_path / "NAS-Bench-201-v1_1-096897.pth")
    out = tmp_path / "c10v.parquet"
    assert main(["bench", "import", str(source), "--dataset", "cifar10-valid", "--out",
                 str(out), "--epochs", "12"]) == 0
    assert "rows: " in capsys.readouterr().out
    assert main(["bench", "import", str(source)]) == 2  # what is missing is said
    assert "--dataset and --out" in capsys.readouterr().err
    import nas_hpo

    study = nas_hpo.run({"space": {"name": "nb201"},
                         "objective": {"name": "tabular", "path": str(out),
                                       "metrics": ["val_accuracy"], "fidelity": "epoch",
                                       "cost": "time", "attrs": ["test_accuracy"]},
                         "strategy": {"name": "random"}, "budget": {"n_trials": 3},
                         "study": {"storage": ":memory:", "cost": []}})
    # Random cells the small file lacks fail with the reason; the cells it has complete.
    assert all(t.state.name in ("COMPLETE", "FAIL") for t in study.trials)
