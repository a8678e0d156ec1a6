"""The contract every registered objective keeps (``nas_hpo.Objective``), run over the registry
with each entry's cheap test options: a new objective is tested without new test code."""

from __future__ import annotations

import inspect
import itertools
import math

import pytest

import nas_hpo
from nas_hpo import data, objectives, spaces
from nas_hpo.objectives import Context, DataSource, Objective, Result

NAMES = objectives.names()


@pytest.fixture(scope="module")
def space():
    return spaces.get("nb201", **spaces.meta("nb201")["test_options"])


def _options(name: str, space, tmp_path) -> dict:
    meta = objectives.REGISTRY.meta(name)
    options = dict(meta.get("test_options", {}))
    if "cache_dir" in inspect.signature(objectives.factory(name)).parameters:
        options["cache_dir"] = str(tmp_path / "cache")  # nothing written outside the test
    if meta.get("needs") == "table":  # every cell of the space, with a made-up accuracy
        path = tmp_path / "table.csv"
        edges = list(space.params)
        ops = list(space.params[edges[0]].choices)
        rows = ["arch,accuracy"]
        for i, choice in enumerate(itertools.product(ops, repeat=len(edges))):
            rows.append(f"{space.arch_key(dict(zip(edges, choice, strict=True)))},{i / 1e5}")
        path.write_text("\n".join(rows) + "\n")
        options["path"] = str(path)
    return options


@pytest.mark.parametrize("name", NAMES)
def test_every_objective_keeps_the_contract(name, space, tmp_path):
    objective = objectives.get(name, **_options(name, space, tmp_path))
    assert isinstance(objective, Objective)
    n = len(objective.directions)
    assert n >= 1 and set(objective.directions) <= {"maximize", "minimize"}
    names = objective.metric_names
    assert names is None or (len(names) == n and len(set(names)) == n)
    source = objective.data_source()
    assert source is None or (isinstance(source, DataSource) and source.dataset in data.names())
    shape = objective.model_input()
    assert shape is None or (len(shape[0]) == 3 and shape[1] >= 2)
    assert isinstance(objective.population_attrs, tuple)
    objective.check_space(space)
    ctx = Context(seed=3, population=[])
    result = objective(space.sample(seed=1), space=space, ctx=ctx)
    assert isinstance(result, Result) and len(result.values) == n
    assert all(math.isfinite(v) for v in result.values)
    steps = objective.max_steps
    assert len(ctx.reports) <= (steps or 0)
    if steps is not None and not ctx.fidelity:
        assert [s for s, _ in ctx.reports] == list(range(1, steps + 1))


@pytest.mark.parametrize("name", NAMES)
def test_every_objective_runs_a_study(name, space, tmp_path):
    study = nas_hpo.run({"objective": {"name": name, **_options(name, space, tmp_path)},
                         "study": {"cost": ["params"]}},
                        space=space, strategy="random", n_trials=2, storage=":memory:")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert all("params" in t.user_attrs and "seed" in t.user_attrs for t in study.trials)
