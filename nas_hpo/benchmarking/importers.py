"""Convert downloaded NAS-Bench-201 / NATS-Bench (topology) files into nas-hpo's tabular format.

    convert("NAS-Bench-201-v1_1-096897.pth", "nb201_c10v.parquet", dataset="cifar10-valid")
    convert("NATS-tss-v1_0-3ffb9-simple", "nats_c100.parquet", dataset="cifar100", epochs=12)

Both benchmarks store, per architecture and training schedule, the state dict of the reference
API's ``ArchResults``: ``arch_str``, ``dataset_seed`` (dataset -> seeds) and ``all_results``
keyed by ``(dataset, seed)``, each the state dict of one trial (``ResultsCount``):
``train_acc1es`` / ``train_losses`` / ``train_times`` keyed by the 0-based epoch,
``eval_acc1es`` / ``eval_losses`` keyed ``"<set>@<epoch>"``, ``params`` (MB), ``flop`` (M),
``latency`` (a list of seconds, or None) and ``epochs``. Sources (``SOURCES``):

- ``nas-bench-201``: ``NAS-Bench-201-v1_0-e61699.pth`` or ``NAS-Bench-201-v1_1-096897.pth``, one
  ``torch.save`` dict of ``meta_archs`` (index -> string) and ``arch2infos`` (index ->
  ``{"less": 12-epoch results, "full": 200-epoch results}``). v1_0's ``less`` results cover
  cifar10-valid only; v1_1 has 12-epoch runs on every dataset.
- ``nats-tss``: the ``NATS-tss-v1_0-3ffb9-simple`` (or ``-full``) folder, ``meta.pickle.pbz2``
  (``meta_archs``) and one bz2-compressed pickle per architecture, ``{index}.pickle.pbz2``, of
  ``{"12": ..., "200": ...}``; or the single ``NATS-tss-v1_0-3ffb9.pickle.pbz2`` file, laid out
  like the ``.pth`` with those keys.

Which evaluation set is validation and which is test follows the reference APIs'
``get_more_info`` (the same in NAS-Bench-201 v1_0/v1_1 and NATS-Bench), see ``DATASETS``.
``cifar10`` is trained on CIFAR-10's train + valid split and evaluated on its test set only, so
its ``val_*`` columns are NaN: the paper's protocol is to search on ``cifar10-valid`` and report
the chosen architecture's ``cifar10`` test accuracy. The files evaluate some sets only after the
last epoch (in the 200-epoch runs: cifar10-valid's test set, cifar100's and ImageNet16-120's
validation and test sets); other epochs are NaN there. Training times are the files' own: in
NATS-Bench's sample files one estimate per run, repeated for every epoch; NaN where a trial has
none (the v1.0 API allows ``train_times = None``).

The files are Python pickles, which can run code when loaded: convert only files you trust.
"""

from __future__ import annotations

import bz2
import math
import pickle
import re
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas_hpo._registry import Registry
from nas_hpo.spaces.nb201 import from_arch_str

__all__ = ["COLUMNS", "DATASETS", "SOURCES", "Source", "convert"]

# Dataset -> (validation set, test set) as the reference ``get_more_info`` picks them.
DATASETS: Mapping[str, tuple[str | None, str]] = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": (None, "ori-test"),
    "cifar100": ("x-valid", "x-test"),
    "ImageNet16-120": ("x-valid", "x-test"),
}
_FLOATS = ("train_accuracy", "train_loss", "val_accuracy", "val_loss", "test_accuracy",
           "test_loss", "epoch_time", "time", "params_mb", "flops_m", "latency_ms")
COLUMNS = ("arch", "seed", "epoch", *_FLOATS)
_ARCH_FILE = re.compile(r"(\d+)\.pickle\.pbz2")
_META_FILE = "meta.pickle.pbz2"


@dataclass(frozen=True)
class _Record:
    """One architecture's results in a source: where they were read, its index and string,
    and its results per training schedule (the source's own keys)."""

    where: Path
    index: int
    arch: Any
    by_schedule: Any


@dataclass(frozen=True)
class Source:
    """A benchmark layout: what a path of it looks like (for errors), the key of each training
    schedule (epochs -> key) and the reader yielding its architectures one at a time."""

    expected: str
    schedules: Mapping[int, str]
    read: Callable[[Path], Iterator[_Record]]


SOURCES: Registry[Source] = Registry("benchmark source")
# How ``kind="auto"`` tells a file's source from its name; a folder is NATS-Bench's.
_SUFFIXES = {".pth": "nas-bench-201", ".pickle.pbz2": "nats-tss"}
_FOLDER_KIND = "nats-tss"


def _unpickle(path: Path) -> Any:
    try:
        with bz2.open(path, "rb") as f:
            return pickle.load(f)  # the user trusts the file (module docstring)
    except ImportError:
        raise
    except Exception as e:
        raise ValueError(f"{path}: cannot read it as a bz2-compressed pickle "
                         f"({type(e).__name__}: {e})") from None


def _torch_load(path: Path) -> Any:
    import torch

    try:
        # The benchmark files pickle plain Python and numpy objects, which weights_only refuses.
        return torch.load(path, map_location="cpu", weights_only=False)
    except ImportError:
        raise
    except Exception as e:
        raise ValueError(f"{path}: cannot read it with torch.load ({type(e).__name__}: {e}); "
                         "expected a NAS-Bench-201 .pth file") from None


def _found(value: Any) -> str:
    if isinstance(value, Mapping):
        keys = sorted(map(str, value))
        return f"a dict with keys {keys[:8]}{' ...' if len(keys) > 8 else ''}"
    return f"a {type(value).__name__}"


def _meta_arch(archs: Any, index: Any, where: Path) -> Any:
    try:
        return archs[index]
    except (IndexError, KeyError, TypeError):
        raise ValueError(f"{where}: architecture index {index!r} is not in the benchmark's "
                         "meta_archs") from None


def _whole(data: Any, path: Path, what: str) -> Iterator[_Record]:
    """Architectures of a single-file benchmark, each dropped from ``data`` once yielded, so
    that memory shrinks as the conversion goes (NAS-Bench-201 v1_1 holds ~4.7 GB)."""
    if not isinstance(data, dict) or not isinstance(data.get("arch2infos"), dict) \
            or "meta_archs" not in data:
        raise ValueError(f"{path} is not a {what} file: expected a dict with 'meta_archs' and "
                         f"'arch2infos' (index -> results), found {_found(data)}")
    infos = data["arch2infos"]
    for index in sorted(infos):
        yield _Record(path, index, _meta_arch(data["meta_archs"], index, path), infos.pop(index))


def _read_nb201(path: Path) -> Iterator[_Record]:
    if not path.is_file():
        raise ValueError(f"{path} is a folder; expected a NAS-Bench-201 .pth file")
    yield from _whole(_torch_load(path), path, "NAS-Bench-201")


def _read_nats(path: Path) -> Iterator[_Record]:
    if path.is_file():
        yield from _whole(_unpickle(path), path, "NATS-Bench topology")
        return
    files = sorted((int(m.group(1)), p) for p in path.iterdir()
                   if (m := _ARCH_FILE.fullmatch(p.name)))
    if not (path / _META_FILE).is_file() or not files:
        names = sorted(p.name for p in path.iterdir())
        raise ValueError(f"{path}: expected a NATS-Bench topology folder with {_META_FILE} and "
                         "one <index>.pickle.pbz2 per architecture, found "
                         f"{names[:8]}{' ...' if len(names) > 8 else ''}")
    meta = _unpickle(path / _META_FILE)
    if not isinstance(meta, Mapping) or "meta_archs" not in meta:
        raise ValueError(f"{path / _META_FILE}: expected a dict with 'meta_archs', found "
                         f"{_found(meta)}")
    for index, file in files:
        yield _Record(file, index, _meta_arch(meta["meta_archs"], index, file), _unpickle(file))


SOURCES.add("nas-bench-201", Source("a NAS-Bench-201 .pth file", {12: "less", 200: "full"},
                                    _read_nb201))
SOURCES.add("nats-tss", Source("a NATS-tss-v1_0-3ffb9-simple / -full folder or a NATS-tss "
                               ".pickle.pbz2 file", {12: "12", 200: "200"}, _read_nats))


def _detect(path: Path) -> str:
    if path.is_dir():
        return _FOLDER_KIND
    for suffix, kind in _SUFFIXES.items():
        if path.name.endswith(suffix):
            return kind
    raise ValueError(f"{path}: cannot tell which benchmark it is from its name; expected "
                     + "; ".join(f"{SOURCES.entry(k).expected} (kind={k!r})"
                                 for k in SOURCES.names()) + ", or pass kind")


def _num(value: Any, per: float = 1.0) -> float:
    """``value / per`` as a float (percent to fraction with ``per=100``); NaN for None."""
    return math.nan if value is None else float(value) / per


def _latency_ms(latency: Any) -> float:
    """The mean of a trial's latencies in ms; the reference API takes a non-positive or
    missing latency as unavailable."""
    values = [] if latency is None else list(latency) if isinstance(latency, (list, tuple)) \
        else [latency]
    mean = sum(map(float, values)) / len(values) if values else -1.0
    return mean * 1000.0 if mean > 0 else math.nan


def _arch(record: _Record, results: Mapping[str, Any]) -> str:
    """The record's architecture string, checked against the space's parser and against the
    string the results carry."""
    s = record.arch
    try:
        from_arch_str(s)
    except ValueError as e:
        raise ValueError(f"{record.where}: architecture {record.index}: {e}") from None
    own = results.get("arch_str", s)
    if own != s:
        raise ValueError(f"{record.where}: architecture {record.index} is {s!r} in meta_archs "
                         f"but its results say {own!r}")
    return s


def _add(cols: dict[str, Any], record: _Record, schedule: str, epochs: int,
         dataset: str) -> list[int]:
    """Append one architecture's rows for ``dataset``; returns its seeds."""
    where, index, by_schedule = record.where, record.index, record.by_schedule
    if not isinstance(by_schedule, Mapping) or schedule not in by_schedule:
        raise ValueError(f"{where}: architecture {index} has no {epochs}-epoch results "
                         f"(key {schedule!r}); found {_found(by_schedule)}")
    results = by_schedule[schedule]
    if not isinstance(results, Mapping) or not {"all_results", "dataset_seed"} <= results.keys():
        raise ValueError(f"{where}: architecture {index}, key {schedule!r}: expected the "
                         "results of an ArchResults (all_results, dataset_seed), found "
                         f"{_found(results)}")
    arch = _arch(record, results)
    seeds = results["dataset_seed"]
    if dataset not in seeds:
        raise ValueError(f"{where}: architecture {index} has no {dataset!r} results for "
                         f"{epochs} epochs; it has {sorted(seeds)}")
    val_set, test_set = DATASETS[dataset]
    for seed in seeds[dataset]:
        trial = results["all_results"].get((dataset, seed))
        if not isinstance(trial, Mapping):
            raise ValueError(f"{where}: architecture {index} lists {dataset} seed {seed} but "
                             f"its all_results has no trial {(dataset, seed)!r}")
        if trial.get("epochs") != epochs:
            raise ValueError(f"{where}: architecture {index}, {dataset} seed {seed}: expected "
                             f"{epochs} epochs under key {schedule!r}, found "
                             f"{trial.get('epochs')!r}")
        acc, loss = trial.get("train_acc1es") or {}, trial.get("train_losses") or {}
        times = trial.get("train_times") or {}
        eval_acc, eval_loss = trial.get("eval_acc1es") or {}, trial.get("eval_losses") or {}
        costs = (_num(trial.get("params")), _num(trial.get("flop")),
                 _latency_ms(trial.get("latency")))
        total = 0.0
        for i in range(epochs):
            step = _num(times.get(i))
            total += step  # NaN from the first epoch without a time on
            val_key, test_key = f"{val_set}@{i}", f"{test_set}@{i}"
            row = (_num(acc.get(i), 100), _num(loss.get(i)),
                   _num(eval_acc.get(val_key), 100) if val_set else math.nan,
                   _num(eval_loss.get(val_key)) if val_set else math.nan,
                   _num(eval_acc.get(test_key), 100), _num(eval_loss.get(test_key)),
                   step, total, *costs)
            cols["arch"].append(arch)
            cols["seed"].append(int(seed))
            cols["epoch"].append(i + 1)
            for name, value in zip(_FLOATS, row, strict=True):
                cols[name].append(value)
    return [int(s) for s in seeds[dataset]]


def convert(source: str | Path, out: str | Path, *, dataset: str, epochs: int = 200,
            kind: str = "auto") -> dict[str, Any]:
    """Write the ``dataset`` results of a NAS-Bench-201 / NATS-Bench (topology) file or folder
    trained for ``epochs`` (200, or the 12-epoch schedule) as a Parquet table for the
    ``tabular`` objective: a row per architecture x seed x epoch (1-based: the epochs trained
    when the row was measured), columns ``COLUMNS``, accuracies as fractions, ``time`` the
    cumulative training seconds. ``kind`` names the layout (``SOURCES``); ``"auto"`` tells it
    from the path. The sources are pickles: only convert files you trust. Returns a summary."""
    path = Path(source)
    if dataset not in DATASETS:
        raise ValueError(f"dataset: unknown {dataset!r}; one of {', '.join(DATASETS)}")
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder; expected "
                         + " or ".join(SOURCES.entry(k).expected for k in SOURCES.names()))
    if kind != "auto" and kind not in SOURCES:
        raise ValueError(f"kind: unknown {kind!r}; one of auto, {', '.join(SOURCES.names())}")
    kind = _detect(path) if kind == "auto" else kind
    layout = SOURCES.entry(kind)
    if epochs not in layout.schedules:
        raise ValueError(f"epochs: {kind} has no {epochs!r}-epoch schedule; one of "
                         f"{sorted(layout.schedules)}")
    cols: dict[str, Any] = {"arch": [], "seed": array("q"), "epoch": array("q"),
                            **{name: array("f") for name in _FLOATS}}
    archs, all_seeds = 0, set()
    for record in layout.read(path):
        all_seeds.update(_add(cols, record, layout.schedules[epochs], epochs, dataset))
        archs += 1
    if not archs:
        raise ValueError(f"{path}: holds no architecture results")

    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({name: cols[name] if name == "arch" else np.frombuffer(
        cols[name], dtype=np.int64 if name in ("seed", "epoch") else np.float32)
        for name in COLUMNS})
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(target, compression="zstd", index=False)
    return {"rows": len(frame), "architectures": archs, "seeds": sorted(all_seeds),
            "epochs": epochs, "dataset": dataset, "kind": kind, "source": path, "out": target}
