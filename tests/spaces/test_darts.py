"""The ``darts`` space: its size in closed form, the conditions that tie each edge to its node's
input pair, DARTS genotype strings both ways (with the published DARTS cells), and the
evaluation network it builds, down to DARTS' parameter count."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest
import torch

from nas_hpo import spaces
from nas_hpo.space import In
from nas_hpo.spaces.darts import (
    DARTS_V1,
    DARTS_V2,
    OPS,
    CifarStem,
    FactorizedReduce,
    Genotype,
    ImageNetStem,
    build,
    edge_index,
    edge_param,
    from_genotype_str,
    genotype,
    genotype_str,
    input_pairs,
    inputs_param,
)

CELLS = ("normal", "reduce")
# DARTS' numbering: node k (2..5) reads any two distinct nodes of 0..k-1.
NODES = (2, 3, 4, 5)

# DARTS_V2 as genotype_str prints it: the published string with each node's two pairs sorted
# by input (normal nodes 4 and 5, reduce nodes 3 and 5 are listed the other way round there).
DARTS_V2_CANONICAL = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('max_pool_3x3', 1), ('skip_connect', 2)], reduce_concat=[2, 3, 4, 5])"
)


@pytest.fixture(scope="module")
def space():
    return spaces.get("darts")


def _nodes(pairs):
    """A cell's (op, input) list as a list of per-node multisets: order inside a node is
    immaterial (the node sums its two inputs)."""
    return [Counter(map(tuple, pairs[i : i + 2])) for i in range(0, len(pairs), 2)]


# --------------------------------------------------------------------------- the space


def test_size_is_the_closed_form(space):
    # Per cell: node k picks one of C(k, 2) unordered pairs of its k predecessors, and each of
    # its 2 edges one of 7 ops; 4 nodes, so 8 edges; the normal and the reduction cell.
    per_cell = math.prod(math.comb(k, 2) for k in NODES) * len(OPS) ** (2 * len(NODES))
    assert per_cell == 1 * 3 * 6 * 10 * 7**8
    assert space.size() == per_cell**2 == 1_076_746_950_455_072_400


def test_parameters(space):
    assert len(space) == 2 * (3 + 14)
    for cell in CELLS:
        assert inputs_param(cell, 2) not in space.params  # node 2 always reads {0, 1}
        assert space[inputs_param(cell, 3)].choices == ("0_1", "0_2", "1_2")
        assert space[inputs_param(cell, 4)].choices == ("0_1", "0_2", "0_3", "1_2", "1_3", "2_3")
        assert len(space[inputs_param(cell, 5)].choices) == 10
        for e in range(14):
            assert space[edge_param(cell, e)].choices == OPS
    assert len(OPS) == 7 and "none" not in OPS
    # DARTS' edge order: node 2 from 0, 1; node 3 from 0, 1, 2; node 4 from 0..3; node 5 0..4.
    order = [(k, j) for k in NODES for j in range(k)]
    assert [edge_index(k, j) for k, j in order] == list(range(14))
    assert space.conditions["normal_edge_7"] == In("normal_inputs_node_4", ("0_2", "1_2", "2_3"))
    assert space.conditions["reduce_edge_13"] == In(
        "reduce_inputs_node_5", ("0_4", "1_4", "2_4", "3_4")
    )
    assert {n for n in space.params if n not in space.conditions} == {
        "normal_edge_0", "normal_edge_1", "reduce_edge_0", "reduce_edge_1",
        *(inputs_param(c, k) for c in CELLS for k in (3, 4, 5)),
    }  # fmt: skip


@pytest.mark.parametrize("cell", CELLS)
def test_an_edge_is_active_iff_its_source_is_in_the_pair(space, cell):
    for node in (3, 4, 5):
        for pair in input_pairs(node):
            chosen = {int(v) for v in pair.split("_")}
            partial = {inputs_param(cell, node): pair}
            for source in range(node):
                active = space.is_active(edge_param(cell, edge_index(node, source)), partial)
                assert active == (source in chosen), (node, pair, source)


def test_samples_activate_two_edges_per_node(space):
    for seed in range(30):
        config = space.sample(seed=seed)
        assert len(config) == 2 * (3 + 8)
        for cell, node in itertools.product(CELLS, NODES):
            present = {j for j in range(node) if edge_param(cell, edge_index(node, j)) in config}
            expected = "0_1" if node == 2 else config[inputs_param(cell, node)]
            assert present == {int(v) for v in expected.split("_")}


def test_validate_refuses_an_edge_of_an_input_not_chosen(space):
    config = from_genotype_str(DARTS_V2)  # normal node 3 reads {0, 1}: edge 4 (from 2) is off
    assert config["normal_inputs_node_3"] == "0_1" and "normal_edge_4" not in config
    with pytest.raises(ValueError, match="'normal_edge_4' is inactive"):
        space.validate({**config, "normal_edge_4": "sep_conv_3x3"})
    missing = {k: v for k, v in config.items() if k != "normal_edge_3"}
    with pytest.raises(ValueError, match="'normal_edge_3' is missing"):
        space.validate(missing)
    with pytest.raises(ValueError, match="'normal_edge_0'.*outside"):
        space.validate({**config, "normal_edge_0": "none"})


# --------------------------------------------------------------------------- genotype strings


def test_genotype_round_trip(space):
    for seed in range(40):
        config = space.sample(seed=seed)
        s = genotype_str(config)
        assert from_genotype_str(s) == config
        assert space.arch_key(config) == s
        # It is DARTS' namedtuple repr: Python reads it back into the same Genotype.
        assert eval(s, {"Genotype": Genotype}) == genotype(config)
        for cell in CELLS:
            pairs = getattr(genotype(config), cell)
            assert all(pairs[i][1] < pairs[i + 1][1] for i in range(0, 8, 2))  # canonical


def test_genotype_str_format():
    config = from_genotype_str(DARTS_V2)
    assert genotype_str(config) == DARTS_V2_CANONICAL
    assert DARTS_V2_CANONICAL != DARTS_V2  # the published one lists some nodes descending


@pytest.mark.parametrize("published", [DARTS_V1, DARTS_V2], ids=["DARTS_V1", "DARTS_V2"])
def test_published_darts_cells_parse_and_print_back_equivalent(space, published):
    config = from_genotype_str(published)
    space.validate(config)
    # Read both with DARTS' namedtuple itself, not with the parser under test.
    printed = eval(genotype_str(config), {"Genotype": Genotype})
    original = eval(published, {"Genotype": Genotype})
    for cell in CELLS:
        assert _nodes(getattr(printed, cell)) == _nodes(getattr(original, cell))
        assert getattr(printed, f"{cell}_concat") == getattr(original, f"{cell}_concat")


def test_darts_v2_is_the_default_and_the_known_cell(space):
    config = from_genotype_str(DARTS_V2)
    assert space.default() == config
    # Normal node 5 of DARTS_V2 = skip_connect(c_{k-2}) + dil_conv_3x3(node 2).
    assert config["normal_inputs_node_5"] == "0_2"
    assert config[edge_param("normal", edge_index(5, 0))] == "skip_connect"
    assert config[edge_param("normal", edge_index(5, 2))] == "dil_conv_3x3"
    assert config["reduce_inputs_node_3"] == "1_2"
    assert config["reduce_edge_3"] == "max_pool_3x3" and config["reduce_edge_4"] == "skip_connect"


def test_input_order_inside_a_node_does_not_matter():
    swapped = DARTS_V2_CANONICAL.replace(
        "('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat",
        "('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], normal_concat",
    ).replace(
        "('skip_connect', 0), ('dil_conv_3x3', 2)]", "('dil_conv_3x3', 2), ('skip_connect', 0)]"
    )
    assert swapped != DARTS_V2_CANONICAL
    assert from_genotype_str(swapped) == from_genotype_str(DARTS_V2_CANONICAL)


def test_range_concat_line_breaks_and_positional_fields_are_read():
    normal = DARTS_V2_CANONICAL.split("normal=")[1].split(", normal_concat")[0]
    reduce = DARTS_V2_CANONICAL.split("reduce=")[1].split(", reduce_concat")[0]
    as_search_prints = (
        f"Genotype(normal={normal}, normal_concat=range(2, 6), "
        f"reduce={reduce}, reduce_concat=range(2, 6))"
    )
    multiline = f"  Genotype(\n  normal={normal},\n  normal_concat=[2, 3, 4, 5],\n" + (
        f"  reduce={reduce},\n  reduce_concat=(2, 3, 4, 5),\n)\n"
    )
    positional = f"Genotype({normal}, [2, 3, 4, 5], {reduce}, [2, 3, 4, 5])"
    expected = from_genotype_str(DARTS_V2)
    for s in (as_search_prints, multiline, positional):
        assert from_genotype_str(s) == expected


def _v2_with(old: str, new: str) -> str:
    assert old in DARTS_V2_CANONICAL
    return DARTS_V2_CANONICAL.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello", "not a call of Genotype"),
        ("Genotype(normal=[", "syntax error"),
        ("Foo(normal=[], normal_concat=[], reduce=[], reduce_concat=[])", "not a call of Genotype"),
        (_v2_with(", reduce_concat=[2, 3, 4, 5]", ""), "missing field 'reduce_concat'"),
        (_v2_with("Genotype(", "Genotype(extra=1, "), "unknown field 'extra'"),
        (_v2_with("normal_concat=[2, 3, 4, 5]", "normal_concat=[4, 5, 6]"),
         r"normal_concat is \[4"),
        (_v2_with("normal=[", "normal=[('sep_conv_3x3', 1), "), "normal cell has 9"),
        (_v2_with("('sep_conv_3x3', 0)", "('none', 0)"), "operation 'none' is not in the space"),
        (_v2_with("('max_pool_3x3', 1)", "('max_pool_3x3', 0)"),
         "reduce cell, node 2: input 0 is used twice"),
        (_v2_with("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"),
         "normal cell, node 5: input 5 is not"),
        (_v2_with("('sep_conv_3x3', 0)", "('sep_conv_3x3', x)"), "normal is not a literal"),
        (_v2_with("('sep_conv_3x3', 0)", "('sep_conv_3x3', '0')"), r"\(op, input\) pairs"),
        (_v2_with("('sep_conv_3x3', 0)", "('sep_conv_3x3', True)"), r"\(op, input\) pairs"),
    ],
    ids=[
        "garbage", "syntax", "other-call", "missing-field", "unknown-field", "concat",
        "nine-pairs", "none-op", "duplicate-input", "not-a-predecessor", "not-literal",
        "str-input", "bool-input",
    ],
)  # fmt: skip
def test_bad_genotype_strings_are_refused_saying_why(text, message):
    with pytest.raises(ValueError, match=message):
        from_genotype_str(text)


def test_genotype_str_of_a_bad_config_names_the_parameter():
    config = from_genotype_str(DARTS_V2)
    with pytest.raises(ValueError, match="'reduce_edge_12' is missing"):
        genotype_str({**config, "reduce_inputs_node_5": "3_4"})
    with pytest.raises(ValueError, match="'normal_inputs_node_4'.*not a pair"):
        genotype_str({**config, "normal_inputs_node_4": "1_4"})
    with pytest.raises(ValueError, match="'normal_edge_1'.*not an operation"):
        genotype_str({**config, "normal_edge_1": "conv_7x1_1x7"})


# --------------------------------------------------------------------------- the network


def _cell_sizes(model, shape):
    sizes = []
    hooks = [c.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:])))
             for c in model.cells]  # fmt: skip
    with torch.no_grad():
        model.eval()(torch.randn(1, *shape))
    for h in hooks:
        h.remove()
    return sizes


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_build_and_forward(space, shape):
    config = space.sample(seed=3)
    model = space.build(config, input_shape=shape, num_classes=10)
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_cells_halve_at_the_two_reductions_and_double_channels(space):
    model = space.build(space.sample(seed=0), input_shape=(3, 32, 32), num_classes=10)
    assert isinstance(model.stem, CifarStem) and model.stem.conv.out_channels == 3 * 16
    assert [c.reduction for c in model.cells] == [i in (2, 5) for i in range(8)]
    c = [16] * 2 + [32] * 3 + [64] * 3
    h = [32] * 2 + [16] * 3 + [8] * 3
    assert _cell_sizes(model, (3, 32, 32)) == [
        (4 * ci, hi, hi) for ci, hi in zip(c, h, strict=True)
    ]
    assert model.classifier.in_features == 4 * 64
    after_reduction = [isinstance(cell.preprocess0, FactorizedReduce) for cell in model.cells]
    assert after_reduction == [i in (3, 6) for i in range(8)]


@pytest.mark.parametrize(
    ("shape", "side"), [((1, 9, 9), [9, 5, 3]), ((3, 15, 13), [(15, 13), (8, 7), (4, 4)]),
                        ((1, 28, 28), [28, 14, 7])]
)  # fmt: skip
def test_odd_feature_maps_build(shape, side):
    """FactorizedReduce pads odd maps, so strided edges (all ``ceil(H / 2)``) line up."""
    config = from_genotype_str(DARTS_V2)
    model = build(config, input_shape=shape, num_classes=3, init_channels=4, layers=6)
    sizes = _cell_sizes(model, shape)
    side = [s if isinstance(s, tuple) else (s, s) for s in side]
    assert [hw[1:] for hw in sizes] == [side[0]] * 2 + [side[1]] * 2 + [side[2]] * 2
    assert model(torch.randn(2, *shape)).shape == (2, 3)


def test_factorized_reduce_is_darts_on_even_maps_and_ceil_on_odd():
    torch.manual_seed(0)
    fr = FactorizedReduce(4, 6).eval()
    x = torch.randn(2, 4, 8, 6)
    r = torch.relu(x)
    darts = fr.bn(torch.cat([fr.conv_1(r), fr.conv_2(r[:, :, 1:, 1:])], dim=1))
    assert torch.equal(fr(x), darts)
    assert fr(torch.randn(1, 4, 7, 5)).shape == (1, 6, 4, 3)
    assert fr(torch.randn(1, 4, 1, 1)).shape == (1, 6, 1, 1)
    odd = FactorizedReduce(3, 5)
    assert (odd.conv_1.out_channels, odd.conv_2.out_channels) == (2, 3)


def test_cell_ops_are_darts_evaluation_ops():
    config = from_genotype_str(DARTS_V2)
    model = build(config, input_shape=(3, 32, 32), num_classes=10, init_channels=8, layers=3)
    normal, reduce = model.cells[0], model.cells[1]
    assert not normal.reduction and reduce.reduction
    assert reduce.indices == [0, 1, 1, 2, 0, 2, 1, 2]
    ops = list(reduce.ops)
    # Pools without BN (the evaluation network's; DARTS' search network adds BN after them).
    assert type(ops[0]) is torch.nn.MaxPool2d and ops[0].stride == 2
    assert type(ops[2]) is torch.nn.MaxPool2d and ops[2].stride == 2  # node 3 from input 1
    assert isinstance(ops[3], torch.nn.Identity)  # skip from node 2: stride 1
    # sep_conv: two (ReLU, depthwise, pointwise, BN) blocks, only the first strided.
    sep = list(normal.ops[0])
    assert [type(m).__name__ for m in sep] == ["ReLU", "Conv2d", "Conv2d", "BatchNorm2d"] * 2
    assert sep[1].groups == 8 and sep[1].kernel_size == (3, 3) and sep[2].kernel_size == (1, 1)
    dil = list(normal.ops[7])  # dil_conv_3x3 from node 2
    assert [type(m).__name__ for m in dil] == ["ReLU", "Conv2d", "Conv2d", "BatchNorm2d"]
    assert dil[1].dilation == (2, 2) and dil[1].padding == (2, 2)
    # skip_connect on a strided edge is a factorized reduction.
    strided = build(
        {**config, "reduce_edge_0": "skip_connect", "reduce_edge_1": "avg_pool_3x3"},
        input_shape=(3, 32, 32), num_classes=10, init_channels=8, layers=3,
    ).cells[1]  # fmt: skip
    assert isinstance(strided.ops[0], FactorizedReduce)
    assert isinstance(strided.ops[1], torch.nn.AvgPool2d) and not strided.ops[1].count_include_pad


def test_every_op_on_every_edge_builds_in_both_cells():
    # Each op on the four edges of node 2 and node 3 in turn (from inputs: strided in the
    # reduction cell; from node 2: not).
    for op in OPS:
        config = {**from_genotype_str(DARTS_V2), "normal_inputs_node_3": "1_2",
                  "reduce_inputs_node_3": "1_2"}  # fmt: skip
        for cell in CELLS:
            for e in (0, 1, 3, 4):
                config[edge_param(cell, e)] = op
        model = build(config, input_shape=(1, 9, 9), num_classes=2, init_channels=2, layers=3)
        assert model(torch.randn(1, 1, 9, 9)).shape == (1, 2), op


def test_imagenet_sized_inputs_get_the_strided_stem():
    config = from_genotype_str(DARTS_V2)
    model = build(config, input_shape=(3, 224, 224), num_classes=5, init_channels=4, layers=3)
    assert isinstance(model.stem, ImageNetStem)
    assert isinstance(model.cells[0].preprocess0, FactorizedReduce)  # stem0 is 2× stem1's size
    # 224 → 56 (stem0) → 28 (stem1); cells 1 and 2 reduce to 14 and 7 (DARTS' ImageNet net).
    assert [s[1:] for s in _cell_sizes(model, (3, 224, 224))] == [(28, 28), (14, 14), (7, 7)]
    small = build(config, input_shape=(3, 127, 127), num_classes=5, init_channels=4, layers=3)
    assert isinstance(small.stem, CifarStem)


def test_darts_v2_parameter_count_is_darts():
    """DARTS reports 3.3M parameters for DARTS (2nd order) on CIFAR-10 (Liu et al. 2019,
    Table 1), counted by its ``utils.count_parameters_in_MB``, which leaves out the auxiliary
    head; its training logs print ``param size = 3.349342MB`` for DARTS_V2 with 36 channels
    and 20 layers. This network, without auxiliary head, has exactly that many."""
    model = build(
        from_genotype_str(DARTS_V2), input_shape=(3, 32, 32), num_classes=10,
        init_channels=36, layers=20,
    )  # fmt: skip
    n = sum(p.numel() for p in model.parameters())
    assert n == 3_349_342
    assert abs(n - 3.3e6) / 3.3e6 < 0.02  # the paper's rounded figure


def test_options(space):
    config = from_genotype_str(DARTS_V2)
    params = [
        sum(p.numel() for p in s.build(config, input_shape=(3, 32, 32), num_classes=10)
            .parameters())
        for s in (space, spaces.widened(space, 0.5), spaces.get("darts", layers=5))
    ]  # fmt: skip
    assert params[1] < params[0] / 3 and params[2] < params[0]
    deep = spaces.get("darts", init_channels=8, layers=11)
    assert len(deep.build(config, input_shape=(1, 8, 8), num_classes=2).cells) == 11
    for bad in ({"init_channels": 0}, {"layers": 0}, {"layers": 2.5}, {"width_mult": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            spaces.get("darts", **bad)
