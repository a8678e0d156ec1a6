"""The fixed-length encoding surrogate models see: lossless for every catalogue space and for
imported ConfigSpace spaces with conditions; nb201's path encoding."""

from __future__ import annotations

import math

import ConfigSpace as CS
import numpy as np
import pytest

from nas_hpo import spaces
from nas_hpo.space import Categorical, Float, GreaterThan, Integer, SearchSpace
from nas_hpo.spaces import nb201


def _same(space: SearchSpace, a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for name, value in a.items():
        if isinstance(space[name], Float):
            if not math.isclose(value, b[name], rel_tol=1e-9, abs_tol=1e-12):
                return False
        elif value != b[name] or type(value) is not type(b[name]):
            return False
    return True


def _round_trips(space: SearchSpace, n: int = 60) -> None:
    enc = space.encoding
    rng = np.random.default_rng(0)
    configs = [space.default()] + [space.sample(seed=rng) for _ in range(n)]
    vectors = enc.encode_many(configs)
    assert vectors.shape == (len(configs), len(enc)) and np.isfinite(vectors).all()
    assert ((vectors >= 0) & (vectors <= 1)).all()
    for config, vector in zip(configs, vectors, strict=True):
        back = enc.decode(vector)
        assert _same(space, config, back), (config, back)
    # Configs with different active parameters get different vectors.
    keys = {space.arch_key(c) for c in configs}
    assert len({v.tobytes() for v in vectors}) == len(keys)


@pytest.mark.parametrize("name", spaces.names())
def test_every_catalogue_space_round_trips(name):
    space = spaces.get(name, **spaces.meta(name).get("test_options", {}))
    _round_trips(space)
    assert len(space.encode(space.default())) > 0


def test_imported_configspace_spaces_with_conditions_round_trip():
    cs = CS.ConfigurationSpace(seed=0)
    depth = CS.UniformIntegerHyperparameter("depth", 1, 3)
    lr = CS.UniformFloatHyperparameter("lr", 1e-4, 1e-1, log=True)
    kind = CS.CategoricalHyperparameter("kind", ["a", "b", "c"])
    width = CS.OrdinalHyperparameter("width", [8, 16, 32])
    drop = CS.UniformFloatHyperparameter("dropout", 0.0, 0.5)
    units = CS.UniformIntegerHyperparameter("units", 16, 512, log=True)
    cs.add([depth, lr, kind, width, drop, units])
    cs.add([CS.GreaterThanCondition(width, depth, 1),
            CS.EqualsCondition(drop, kind, "b"),
            CS.AndConjunction(CS.GreaterThanCondition(units, depth, 2),
                              CS.InCondition(units, kind, ["a", "b"]))])
    space = SearchSpace.from_configspace(cs)
    _round_trips(space, n=200)
    enc = space.encoding
    # One-hot for the unordered choice, one number for the rest, a flag per conditional one.
    assert sorted(enc.names) == sorted(("depth", "kind=a", "kind=b", "kind=c", "lr", "dropout",
                                        "dropout:active", "units", "units:active", "width",
                                        "width:active"))
    inactive = {"depth": 1, "lr": 10**-2.5, "kind": "c"}
    vector = dict(zip(enc.names, enc.encode(inactive), strict=True))
    assert vector["width:active"] == 0 and vector["width"] == 0
    assert vector["dropout:active"] == 0 and vector["units:active"] == 0
    assert vector["lr"] == pytest.approx(0.5)  # the middle of [1e-4, 1e-1] on a log scale


def test_decode_rejects_a_vector_of_the_wrong_length():
    space = SearchSpace([Integer("a", 0, 3), Categorical("b", ["x", "y"])],
                        {"b": GreaterThan("a", 1)})
    with pytest.raises(ValueError, match="has 4 entries"):
        space.encoding.decode([0.0, 1.0])


def test_nb201_path_encoding_counts_the_operation_sequences_from_input_to_output():
    space = spaces.get("nb201", C=4, N=1)
    cell = nb201.from_arch_str(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
        "skip_connect~2|")
    v = space.encode(cell)
    assert len(v) == nb201.PATH_FEATURES == 84
    ops = nb201.PATH_OPS
    # Four routes reach node 3: 0→3 (skip), 0→1→3 (conv3, conv3), 0→2→3 (conv3, skip),
    # 0→1→2→3 (conv3, pool, skip).
    expected = {ops.index("skip_connect"),
                4 + ops.index("nor_conv_3x3") * 4 + ops.index("nor_conv_3x3"),
                4 + ops.index("nor_conv_3x3") * 4 + ops.index("skip_connect"),
                20 + (ops.index("nor_conv_3x3") * 4 + ops.index("avg_pool_3x3")) * 4
                + ops.index("skip_connect")}
    assert {i for i, x in enumerate(v) if x} == expected and v.sum() == 4
    # A cell with no path from input to output has the zero vector.
    dead = {name: "none" for name in nb201.EDGE_NAMES}
    assert not space.encode(dead).any()
    # Isomorphic cells (same function) get the same vector: an edge out of a dead node counts
    # for nothing.
    a = dict(dead, edge_3_0="nor_conv_1x1", edge_2_1="nor_conv_3x3")
    b = dict(dead, edge_3_0="nor_conv_1x1", edge_2_1="avg_pool_3x3")
    assert nb201.canonical(a) == nb201.canonical(b)
    assert (space.encode(a) == space.encode(b)).all()
    # The generic encoding stays available (and lossless) next to the space's own.
    assert space.encoding.decode(space.encoding.encode(cell)) == cell


def test_darts_adjacency_encoding_marks_each_active_edge_with_its_operation():
    from nas_hpo.spaces import darts

    space = spaces.get("darts", init_channels=4, layers=5)
    rng = np.random.default_rng(0)
    for _ in range(20):
        config = space.sample(seed=rng)
        v = space.encode(config)
        assert len(v) == 2 * darts.N_EDGES * len(darts.OPS) == 196
        assert v.sum() == 16  # 8 active edges per cell, one operation each
        for c, cell in enumerate(darts.CELLS):
            for e in range(darts.N_EDGES):
                start = (c * darts.N_EDGES + e) * 7
                row = v[start:start + 7]
                op = config.get(darts.edge_param(cell, e))
                assert row.sum() == (op is not None)
                if op is not None:
                    assert darts.OPS[int(np.argmax(row))] == op
