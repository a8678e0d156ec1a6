"""A benchmark file: the study template, the strategies to compare, the seeds, where results go.

```toml
[bench]
name = "nb201_digits"          # runs are studies named bench/<name>/<strategy>/<seed>
output = "bench-nb201_digits"  # folder of the storage (bench.db), plots and tables
seeds = 10                     # 0..9, or a list
processes = 2                  # runs in parallel (one torch thread each)
report = "test_accuracy"       # what the incumbent (chosen by the study's value) reports

[strategies.random]            # label = strategy name unless `name` says otherwise
[strategies.re]
population_size = 20
[strategies.tpe_multivariate]
name = "tpe"
multivariate = true

[space] / [objective] / [budget] / [backend] / [study]   # a study file's sections
```

Every run is that study with the strategy and seed set, on the ``simulated`` backend
(``[backend] workers`` simulated workers), without cost measurement unless ``[study] cost``
asks for it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas_hpo.study import SpecError, load_spec, prepare, read_toml

__all__ = ["BenchSpec", "load_bench"]

_BENCH_KEYS = ("name", "output", "seeds", "processes", "report", "storage")
_STUDY_SECTIONS = ("study", "space", "objective", "budget", "backend")


@dataclass(frozen=True)
class BenchSpec:
    """A resolved benchmark file."""

    source: str
    name: str
    output: Path
    storage: str
    seeds: tuple[int, ...]
    processes: int
    report: str | None
    #: label → the ``[strategy]`` section of its runs.
    strategies: dict[str, dict[str, Any]]
    #: The study file every run starts from (without ``[strategy]``).
    template: dict[str, Any]

    def run_name(self, label: str, seed: int) -> str:
        return f"bench/{self.name}/{label}/{seed}"

    def study(self, label: str, seed: int) -> dict[str, Any]:
        """The study description of one run (in memory: the runner copies it to ``storage``)."""
        spec = copy.deepcopy(self.template)
        spec.setdefault("study", {}).update(
            {"name": self.run_name(label, seed), "storage": ":memory:", "seed": seed})
        spec["study"].setdefault("cost", [])
        spec.setdefault("backend", {})["name"] = "simulated"
        spec["strategy"] = copy.deepcopy(self.strategies[label])
        return spec


def _where(source: str, section: str, key: str | None = None) -> str:
    return f"{source}: [{section}]" + (f" {key}" if key else "")


def load_bench(raw: dict[str, Any] | str | Path, *, only: list[str] | None = None,
               **overrides: Any) -> BenchSpec:
    """Read and check a benchmark file (a path, or the same as a dict); ``overrides`` replace
    ``[bench]`` keys (``seeds``, ``processes``, ``output``, ...); ``only``: run and report
    these strategy labels of the file only."""
    if isinstance(raw, (str, Path)):
        path = Path(raw)
        source = str(path)
        raw = read_toml(path, "benchmark file")
    else:
        source = "<bench dict>"
    raw = copy.deepcopy(raw)
    unknown = sorted(set(raw) - {"bench", "strategies", *_STUDY_SECTIONS})
    if unknown:
        raise SpecError(f"{source}: unknown section [{unknown[0]}]; allowed: bench, strategies, "
                        + ", ".join(_STUDY_SECTIONS))
    bench = raw.get("bench", {})
    if not isinstance(bench, dict):
        raise SpecError(f"{source}: [bench] must be a table")
    bench.update({k: v for k, v in overrides.items() if v is not None})
    for key in bench:
        if key not in _BENCH_KEYS:
            raise SpecError(f"{_where(source, 'bench', key)}: unknown key; allowed: "
                            + ", ".join(_BENCH_KEYS))
    name = bench.get("name") or (Path(source).stem if source != "<bench dict>" else "")
    if not isinstance(name, str) or not name or "/" in name:
        raise SpecError(f"{_where(source, 'bench', 'name')}: a non-empty name without '/' is "
                        f"required, got {name!r}")
    seeds = bench.get("seeds", 10)
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list)):
        raise SpecError(f"{_where(source, 'bench', 'seeds')}: a count or a list of seeds, got "
                        f"{seeds!r}")
    seeds = list(range(seeds)) if isinstance(seeds, int) else seeds
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                            for s in seeds) or len(set(seeds)) != len(seeds):
        raise SpecError(f"{_where(source, 'bench', 'seeds')}: at least one seed, distinct "
                        f"integers >= 0, got {bench.get('seeds')!r}")
    processes = bench.get("processes", 1)
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise SpecError(f"{_where(source, 'bench', 'processes')}: an integer >= 1, got "
                        f"{processes!r}")
    output = Path(bench.get("output") or f"bench-{name}")
    storage = bench.get("storage") or f"sqlite:///{output / 'bench.db'}"
    report = bench.get("report")
    if report is not None and not isinstance(report, str):
        raise SpecError(f"{_where(source, 'bench', 'report')}: a user attribute's name, got "
                        f"{report!r}")
    strategies = raw.get("strategies")
    if not isinstance(strategies, dict) or not strategies:
        raise SpecError(f"{source}: [strategies] must name at least one strategy, e.g. "
                        "[strategies.random]")
    sections: dict[str, dict[str, Any]] = {}
    for label, options in strategies.items():
        if not isinstance(options, dict):
            raise SpecError(f"{_where(source, 'strategies.' + label)}: must be a table")
        if "/" in label:
            raise SpecError(f"{_where(source, 'strategies.' + label)}: a label without '/'")
        sections[label] = {"name": options.get("name", label),
                           **{k: v for k, v in options.items() if k != "name"}}
    if only:
        unknown = [label for label in only if label not in sections]
        if unknown:
            raise SpecError(f"{source}: no strategy {unknown[0]!r} in [strategies]; it has: "
                            + ", ".join(sections))
        sections = {label: sections[label] for label in only}
    template = {k: raw[k] for k in _STUDY_SECTIONS if k in raw}
    spec = BenchSpec(source, name, output, storage, tuple(seeds), processes, report, sections,
                     template)
    budget = template.get("budget", {})
    if not isinstance(budget, dict) or ("n_trials" not in budget and "max_cost" not in budget):
        raise SpecError(f"{_where(source, 'budget')}: a benchmark needs n_trials and/or max_cost")
    if "n_trials" not in budget:  # a time budget alone: as many trials as fit in it
        template["budget"]["n_trials"] = 10**9
    for label in sections:  # every run's study is checked before the first one starts
        try:
            prepare(load_spec(spec.study(label, seeds[0])))
        except SpecError as e:
            where = "[strategy]" if "[strategy]" in str(e) else ""
            raise SpecError(f"{source}: {str(e).replace('<dict>: ', '', 1)}"
                            + (f" (of [strategies.{label}])" if where else "")) from None
    return spec
