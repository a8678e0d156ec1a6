"""The ``nb201`` space: the benchmark's 15,625 cells, its architecture strings, the parameter
counts NAS-Bench-201 publishes, and architectures whose output ignores the input."""

from __future__ import annotations

import itertools

import pytest
import torch

from nas_hpo import spaces
from nas_hpo.space import Categorical
from nas_hpo.spaces.nb201 import (
    EDGE_NAMES,
    OPS,
    Cell,
    ResidualReduction,
    arch_str,
    from_arch_str,
    is_input_independent,
    make_op,
)

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"

CIFAR = (3, 32, 32)
IMAGENET16 = (3, 16, 16)

# Parameter counts NAS-Bench-201 publishes (``params`` of ``get_cost_info``, in millions), for
# the benchmark's own network (C=16, N=5), as (arch string, input shape, classes, value, decimals
# as published).
PUBLISHED = [
    # automl/NASLib, tests/test_nb201_search_space.py: its dummy API copies the benchmark's
    # cifar10-valid cost_info of this cell (flops 15.64737, params 0.129306; the flops are those
    # D-X-Y/NATS-Bench issue #24 quotes for architecture 0 on cifar10-valid).
    (
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
        CIFAR,
        10,
        0.129306,
        6,
    ),
    # D-X-Y/NATS-Bench issue #36 (https://github.com/D-X-Y/NATS-Bench/issues/36):
    # get_cost_info(index, "cifar10", hp="12") -> params 0.802426.
    (
        "|skip_connect~0|+|none~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        CIFAR,
        10,
        0.802426,
        6,
    ),
    # D-X-Y/NATS-Bench issue #18 (https://github.com/D-X-Y/NATS-Bench/issues/18):
    # query_info_str_by_arch(1) prints "Params=0.802 MB" for cifar10, 0.808 for cifar100 and
    # 0.810 for ImageNet16-120 (16×16 inputs, 120 classes).
    (EXAMPLE, CIFAR, 10, 0.802, 3),
    (EXAMPLE, CIFAR, 100, 0.808, 3),
    (EXAMPLE, IMAGENET16, 120, 0.810, 3),
    # D-X-Y/AutoDL-Projects issue #134 (https://github.com/D-X-Y/AutoDL-Projects/issues/134):
    # 0.56M on cifar10 from NAS-Bench-201-v1_1-096897.pth.
    (
        "|skip_connect~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|",
        CIFAR,
        10,
        0.56,
        2,
    ),
    # The cifar10 extremes of the table: 0.073306 (a cell without convolutions) and 1.531546 (the
    # all-nor_conv_3x3 cell), as min/max normalisation bounds of third-party NAS-Bench-201
    # evaluators found by code search; 1.531546 is also JAHS-Bench-201's cifar10 maximum
    # (automl/HPOBench, branch yahs_bench, hpobench/benchmarks/nas/jahs_benchmarks.py), whose
    # largest network is this one. Each convolution adds parameters, the other ops none, so
    # these two cells are the table's minimum and maximum.
    (
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
        CIFAR,
        10,
        0.073306,
        6,
    ),
    (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        CIFAR,
        10,
        1.531546,
        6,
    ),
]


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def uniform(op: str) -> dict[str, str]:
    return dict.fromkeys(EDGE_NAMES, op)


@pytest.fixture(scope="module")
def space():
    return spaces.get("nb201")


def test_parameters_and_size(space):
    assert space.size() == 15_625 == len(OPS) ** 6
    assert list(space) == [
        "edge_1_0", "edge_2_0", "edge_2_1", "edge_3_0", "edge_3_1", "edge_3_2",
    ]  # fmt: skip
    for name in space:
        assert space[name] == Categorical(
            name,
            ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"),
            default="nor_conv_3x3",
            ordered=False,
        )
    assert space.conditions == {} and space.forbidden == ()
    assert space.default() == uniform("nor_conv_3x3")


def test_example_string_round_trip(space):
    config = from_arch_str(EXAMPLE)
    assert config == {
        "edge_1_0": "nor_conv_3x3",
        "edge_2_0": "nor_conv_3x3",
        "edge_2_1": "avg_pool_3x3",
        "edge_3_0": "skip_connect",
        "edge_3_1": "nor_conv_3x3",
        "edge_3_2": "skip_connect",
    }
    space.validate(config)
    assert arch_str(config) == EXAMPLE == space.arch_key(config)
    assert space.arch_key(dict(reversed(list(config.items())))) == EXAMPLE


def test_round_trip_over_every_architecture(space):
    strings = set()
    for ops in itertools.product(OPS, repeat=len(EDGE_NAMES)):
        config = dict(zip(EDGE_NAMES, ops, strict=True))
        s = arch_str(config)
        assert from_arch_str(s) == config
        strings.add(s)
    assert len(strings) == space.size()
    for seed in range(20):
        config = space.sample(seed=seed)
        assert from_arch_str(space.arch_key(config)) == config


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("", "expected 3 '\\+'-separated node groups, got 1"),
        (EXAMPLE + "+|none~0|", "expected 3 '\\+'-separated node groups, got 4"),
        (EXAMPLE[1:], "node 1's group 'nor_conv_3x3~0\\|' must start and end with '\\|'"),
        (EXAMPLE.replace("|+|skip", "+|skip"), "node 2's group .* must start and end"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|none~0|none~1|none~2|", "node 2 needs 2 edges"),
        (EXAMPLE.replace("avg_pool_3x3~1", "max_pool_3x3~1"), "unknown operation 'max_pool_3x3'"),
        (EXAMPLE.replace("avg_pool_3x3~1", "avg_pool_3x3"), "'avg_pool_3x3' of node 2 is not of"),
        (EXAMPLE.replace("skip_connect~2", "skip_connect~1"), "must come from node 2"),
        (EXAMPLE.replace("|nor_conv_3x3~0|+", "|nor_conv_3x3~00|+", 1), "from node 0"),
        (EXAMPLE.replace("0|avg_pool_3x3~1|", "0||"), "edge '' of node 2 is not of the form"),
    ],
)
def test_malformed_strings_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        from_arch_str(bad)


def test_non_string_and_bad_configs_are_refused():
    with pytest.raises(ValueError, match="is a str"):
        from_arch_str(None)  # type: ignore[arg-type]
    config = from_arch_str(EXAMPLE)
    with pytest.raises(ValueError, match="'edge_3_1' is missing"):
        arch_str({k: v for k, v in config.items() if k != "edge_3_1"})
    with pytest.raises(ValueError, match="'conv_5x5' of parameter 'edge_2_0'"):
        arch_str({**config, "edge_2_0": "conv_5x5"})


def test_operations_are_the_benchmarks():
    x = torch.randn(2, 4, 5, 5)
    # the average pool does not count the padding: a constant map stays constant at the border
    assert torch.allclose(
        make_op("avg_pool_3x3", 4)(torch.ones(1, 4, 5, 5)), torch.ones(1, 4, 5, 5)
    )
    for op, k in (("nor_conv_1x1", 1), ("nor_conv_3x3", 3)):
        seq = make_op(op, 4)
        assert [type(m) for m in seq] == [torch.nn.ReLU, torch.nn.Conv2d, torch.nn.BatchNorm2d]
        conv = seq[1]
        assert conv.kernel_size == (k, k) and conv.stride == (1, 1) and conv.bias is None
        assert seq(x).shape == x.shape
    assert torch.equal(make_op("skip_connect", 4)(x), x)
    assert torch.equal(make_op("none", 4)(x), torch.zeros_like(x))
    with pytest.raises(ValueError, match="unknown NAS-Bench-201 operation 'max_pool_3x3'"):
        make_op("max_pool_3x3", 4)


@pytest.mark.parametrize(
    ("arch", "factor"),
    [
        # node 1 = x, node 2 = x + x, node 3 = x + x + 2x
        (
            "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
            4,
        ),
        ("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|", 1),
        ("|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|none~2|", 1),
        ("|none~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|", 0),
        ("|skip_connect~0|+|none~0|none~1|+|none~0|skip_connect~1|skip_connect~2|", 1),
    ],
)
def test_cell_sums_its_edges_and_outputs_node_3(arch, factor):
    cell = Cell(from_arch_str(arch), 4)
    x = torch.randn(2, 4, 5, 5)
    assert torch.equal(cell(x), factor * x)


@pytest.mark.parametrize(("arch", "shape", "classes", "published", "decimals"), PUBLISHED)
def test_published_parameter_counts(space, arch, shape, classes, published, decimals):
    model = space.build(from_arch_str(arch), input_shape=shape, num_classes=classes)
    assert round(n_params(model) / 1e6, decimals) == published


def test_legacy_table_value_is_not_reproduced(space):
    """AutoDL-Projects issue #134 reports 0.48M for the first of these cells and 0.56M for the
    second, although they differ only by parameter-free edges. NATS-Bench traced such
    disagreements to a legacy weight-migration issue and fixed them in v1.6 (its
    ``fix_legacy_issue`` in nats_bench/api_utils.py; issue #36): the true count of both is
    the second's."""
    a = "|skip_connect~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|"
    b = "|skip_connect~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    counts = [
        n_params(space.build(from_arch_str(s), input_shape=CIFAR, num_classes=10)) for s in (a, b)
    ]
    assert counts[0] == counts[1] == 559_386


def test_counts_follow_the_operations(space):
    """Counts depend only on the numbers of 3×3 and 1×1 convolutions in the cell: each adds one
    conv + BN per cell at each stage's width."""
    base = 73_306  # stem, two reductions, head (cifar10)
    per_3x3 = 5 * sum(9 * c * c + 2 * c for c in (16, 32, 64))
    per_1x1 = 5 * sum(c * c + 2 * c for c in (16, 32, 64))
    for seed in range(6):
        config = space.sample(seed=seed)
        ops = list(config.values())
        expected = base + ops.count("nor_conv_3x3") * per_3x3 + ops.count("nor_conv_1x1") * per_1x1
        model = space.build(config, input_shape=CIFAR, num_classes=10)
        assert n_params(model) == expected


def test_all_skip_has_only_skeleton_parameters(space):
    model = space.build(uniform("skip_connect"), input_shape=CIFAR, num_classes=10)
    cells = [m for m in model.cells if isinstance(m, Cell)]
    reductions = [m for m in model.cells if isinstance(m, ResidualReduction)]
    assert len(cells) == 15 and len(reductions) == 2
    assert [type(m) for m in model.cells] == [Cell] * 5 + [ResidualReduction] + [Cell] * 5 + [
        ResidualReduction
    ] + [Cell] * 5
    assert all(n_params(c) == 0 for c in cells)
    assert all(isinstance(op, torch.nn.Identity) for c in cells for op in c.edges.values())
    # stem conv + BN; reductions 16→32 and 32→64 (two conv-BN and a 1×1 shortcut conv each);
    # head BN and linear.
    stem = 3 * 16 * 9 + 2 * 16
    red = [
        (9 * ci * co + 2 * co) + (9 * co * co + 2 * co) + ci * co for ci, co in ((16, 32), (32, 64))
    ]
    head = 2 * 64 + 64 * 10 + 10
    assert n_params(model.stem) == stem
    assert [n_params(r) for r in reductions] == red
    assert n_params(model) == stem + sum(red) + head == 73_306


def test_all_conv1x1_structure(space):
    model = space.build(uniform("nor_conv_1x1"), input_shape=CIFAR, num_classes=10)
    convs = [m for c in model.cells if isinstance(c, Cell) for m in c.modules()
             if isinstance(m, torch.nn.Conv2d)]  # fmt: skip
    assert len(convs) == 15 * 6
    assert all(m.kernel_size == (1, 1) and m.bias is None for m in convs)
    assert sorted({m.in_channels for m in convs}) == [16, 32, 64]


def test_feature_maps_match_the_benchmark():
    # N=1 keeps this fast; the skeleton's resolutions do not depend on N.
    space = spaces.get("nb201", N=1)
    config = from_arch_str(EXAMPLE)
    for shape, final in [
        ((3, 32, 32), (64, 8, 8)),
        ((3, 16, 16), (64, 4, 4)),
        ((1, 28, 28), (64, 7, 7)),
        ((1, 8, 8), (64, 2, 2)),
        ((1, 2, 2), (64, 1, 1)),
        ((1, 1, 1), (64, 1, 1)),
        ((3, 224, 224), (64, 14, 14)),
    ]:
        model = space.build(config, input_shape=shape, num_classes=3).eval()
        with torch.no_grad():
            feats = model.cells(model.stem(torch.randn(2, *shape)))
            assert feats.shape[1:] == final, shape
            assert model(torch.randn(2, *shape)).shape == (2, 3)
    # The downsampling stem of large inputs keeps the count (stride and max-pool only).
    counts = {
        n_params(space.build(config, input_shape=(3, s, s), num_classes=10)) for s in (32, 224)
    }
    assert len(counts) == 1


def test_input_independent_architectures():
    assert is_input_independent(uniform("none"))
    # node 1 is reached but feeds nothing; node 3 only reads node 2, which reads nothing
    assert is_input_independent(
        from_arch_str("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
    )
    assert not is_input_independent(
        from_arch_str("|none~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|")
    )
    assert not is_input_independent(from_arch_str(EXAMPLE))
    # Against the definition by paths: the output depends on the input iff one of the four
    # paths 0→3, 0→1→3, 0→2→3, 0→1→2→3 has no none edge.
    paths = [("3_0",), ("1_0", "3_1"), ("2_0", "3_2"), ("1_0", "2_1", "3_2")]
    independent = 0
    for ops in itertools.product(OPS, repeat=len(EDGE_NAMES)):
        config = dict(zip(EDGE_NAMES, ops, strict=True))
        dependent = any(all(config[f"edge_{e}"] != "none" for e in p) for p in paths)
        assert is_input_independent(config) is not dependent
        independent += not dependent
    assert 0 < independent < 15_625


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_input_independent_network_builds_runs_and_is_marked(space, shape):
    torch.manual_seed(0)
    model = space.build(uniform("none"), input_shape=shape, num_classes=4)
    assert model.input_independent is True and model.arch == arch_str(uniform("none"))
    out = model(torch.randn(3, *shape))
    assert out.shape == (3, 4) and torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 3])).backward()
    assert model.classifier.bias.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        a, b = model(torch.randn(2, *shape)), model(10 * torch.randn(2, *shape))
    assert torch.equal(a, b)
    dependent = space.build(from_arch_str(EXAMPLE), input_shape=shape, num_classes=4).eval()
    assert dependent.input_independent is False
    with torch.no_grad():
        assert not torch.equal(dependent(torch.randn(2, *shape)), dependent(torch.randn(2, *shape)))


def test_build_options():
    small = spaces.get("nb201", C=8, N=2)
    assert small == spaces.get("nb201")  # same parameters, another network
    model = small.build(from_arch_str(EXAMPLE), input_shape=CIFAR, num_classes=10)
    cells = [m for m in model.cells if isinstance(m, Cell)]
    assert len(cells) == 6 and model.classifier.in_features == 32
    half = spaces.widened(spaces.get("nb201"), 0.5)
    assert (
        half.build(
            uniform("skip_connect"), input_shape=CIFAR, num_classes=10
        ).classifier.in_features
        == 32
    )
    for bad in ({"C": 0}, {"N": 0}, {"C": 2.5}, {"width_mult": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            spaces.get("nb201", **bad)


def test_build_rejects_invalid_config(space):
    with pytest.raises(ValueError, match="edge_2_1"):
        space.build({**uniform("none"), "edge_2_1": "conv"}, input_shape=CIFAR, num_classes=10)
