"""Example-based tests of the space model: one group per promise the space makes."""

from __future__ import annotations

import itertools
import json
import math
import pickle
from collections.abc import Callable, Mapping
from typing import Any

import ConfigSpace as CS
import numpy as np
import optuna
import pytest

from nas_hpo.space import (
    And,
    Categorical,
    Constant,
    Equals,
    Float,
    ForbiddenAnd,
    ForbiddenEquals,
    ForbiddenIn,
    GreaterThan,
    In,
    Integer,
    LessThan,
    NotEquals,
    Or,
    SearchSpace,
)
from nas_hpo.space._optuna import ForbiddenConfigurationError

OPS = tuple(f"op{i}" for i in range(9))


def layered(max_depth: int = 4) -> SearchSpace:
    """``depth`` in 1..max_depth and one 9-way choice per layer that exists."""
    params = [Integer("depth", 1, max_depth)]
    params += [Categorical(f"layer{k}", OPS) for k in range(1, max_depth + 1)]
    conditions = {f"layer{k}": GreaterThan("depth", k - 1) for k in range(2, max_depth + 1)}
    return SearchSpace(params, conditions)


def cs_valid(cs: CS.ConfigurationSpace, values: Mapping[str, Any]) -> bool:
    try:
        CS.Configuration(cs, values=dict(values)).check_valid_configuration()
    except ValueError:
        return False
    return True


def all_assignments(space: SearchSpace) -> list[dict[str, Any]]:
    """Every dict over a finite space, each parameter set to a value or left out."""
    absent = object()
    names = list(space.params)
    domains = [list(space[n].values()) + [absent] for n in names]
    return [
        {n: v for n, v in zip(names, combo, strict=True) if v is not absent}
        for combo in itertools.product(*domains)
    ]


def assert_agrees_with_configspace(space: SearchSpace) -> int:
    """Our verdict equals ConfigSpace's on every assignment of a small finite space; returns
    the number of valid ones."""
    cs = space.to_configspace()
    valid = 0
    for config in all_assignments(space):
        ours = space.is_valid(config)
        assert ours == cs_valid(cs, config), config
        valid += ours
    return valid


# --------------------------------------------------------------------------- construction


def test_condition_on_unknown_child_or_parent_names_it():
    a = Categorical("a", ("x", "y"))
    with pytest.raises(ValueError, match="unknown parameter 'ghost'"):
        SearchSpace([a], {"ghost": Equals("a", "x")})
    with pytest.raises(ValueError, match="'b' refers to unknown parameter 'ghost'"):
        SearchSpace([a, Categorical("b", (1, 2))], {"b": Or(Equals("a", "x"), Equals("ghost", 1))})


def test_cycle_is_refused_and_named():
    params = [Categorical(n, (0, 1)) for n in "abc"]
    conds = {"a": Equals("c", 1), "b": Equals("a", 1), "c": Equals("b", 1)}
    with pytest.raises(ValueError, match="cycle among: a, b, c"):
        SearchSpace(params, conds)
    with pytest.raises(ValueError, match="'a' refers to itself"):
        SearchSpace(params, {"a": Equals("a", 1)})


@pytest.mark.parametrize(
    "make",
    [
        lambda: Categorical("width", (16, 32), default=64),
        lambda: Integer("width", 1, 8, default=9),
        lambda: Integer("width", 1, 8, default=True),
        lambda: Float("width", 0.0, 1.0, default=1.5),
        lambda: Float("width", 1e-3, 1.0, log=True, default=float("nan")),
    ],
)
def test_default_outside_domain_names_the_parameter(make: Callable[[], Any]):
    with pytest.raises(ValueError, match="'width'.*default"):
        make()


def test_domain_errors_name_the_parameter():
    with pytest.raises(ValueError, match="'n'.*use Constant"):
        Integer("n", 3, 3)
    with pytest.raises(ValueError, match="'n'.*log scale"):
        Integer("n", 0, 3, log=True)
    with pytest.raises(ValueError, match="'f'.*low < high"):
        Float("f", 1.0, 1.0)
    with pytest.raises(ValueError, match="'c'.*duplicate"):
        Categorical("c", (1, 1.0))
    # ConfigSpace keeps numeric choices in a numpy array, where True turns into 1.
    with pytest.raises(ValueError, match="'c'.*mix booleans with numbers"):
        Categorical("c", (True, 2))
    Categorical("c", (True, "auto"))  # with strings a bool stays a bool


def test_condition_values_and_order_relations_are_checked():
    a = Categorical("a", ("x", "y"))
    b = Integer("b", 0, 3)
    with pytest.raises(ValueError, match="condition of 'b': 'z' is not a value of 'a'"):
        SearchSpace([a, b], {"b": Equals("a", "z")})
    with pytest.raises(ValueError, match="'b'.*needs an ordered parent.*'a'"):
        SearchSpace([a, b], {"b": GreaterThan("a", "x")})
    with pytest.raises(ValueError, match="condition of 'a': 9 is not a value of 'b'"):
        SearchSpace([a, b], {"a": In("b", (1, 9))})


def test_forbidden_clause_on_unknown_parameter_or_value():
    a = Categorical("a", ("x", "y"))
    with pytest.raises(ValueError, match="unknown parameter 'ghost'"):
        SearchSpace([a], forbidden=[ForbiddenEquals("ghost", 1)])
    with pytest.raises(ValueError, match="'z' is not a value of 'a'"):
        SearchSpace([a], forbidden=[ForbiddenIn("a", ("y", "z"))])


def test_forbidden_default_is_refused():
    a = Categorical("a", ("x", "y"))
    b = Integer("b", 0, 3, default=2)
    with pytest.raises(ValueError, match="default configuration .* forbidden by .*b == 2"):
        SearchSpace(
            [a, b], forbidden=[ForbiddenAnd(ForbiddenEquals("a", "x"), ForbiddenEquals("b", 2))]
        )


def test_clauses_that_forbid_everything_are_refused():
    a = Categorical("a", ("x", "y"), default="y")
    b = Categorical("b", (1, 2))
    clauses = [
        ForbiddenEquals("a", "x"),
        ForbiddenAnd(ForbiddenEquals("a", "y"), ForbiddenIn("b", (1, 2))),
    ]
    with pytest.raises(ValueError, match="exclude every configuration"):
        SearchSpace([a, b], forbidden=clauses)
    # The same with a float that would make the space infinite: still nothing valid.
    f = Float("f", 0.0, 1.0)
    with pytest.raises(ValueError, match="exclude every configuration"):
        SearchSpace([a, b, f], forbidden=clauses)


# --------------------------------------------------------------------------- validate


@pytest.fixture
def cond_space() -> SearchSpace:
    return SearchSpace(
        [
            Categorical("optimizer", ("sgd", "adam")),
            Float("momentum", 0.0, 0.99),
            Float("lr", 1e-4, 1.0, log=True),
            Integer("depth", 1, 4),
            Categorical("act", ("relu", "gelu")),
        ],
        {"momentum": Equals("optimizer", "sgd"), "act": GreaterThan("depth", 2)},
        [ForbiddenAnd(ForbiddenEquals("optimizer", "adam"), ForbiddenEquals("depth", 4))],
    )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"width": 3}, "unknown parameter 'width'"),
        ({"depth": 5}, "value 5 of parameter 'depth' is outside"),
        ({"depth": 2.0}, "value 2.0 of parameter 'depth' is outside"),
        ({"depth": True}, "value True of parameter 'depth' is outside"),
        ({"lr": float("inf")}, "value inf of parameter 'lr' is outside"),
        ({"optimizer": "rmsprop"}, "'optimizer' is outside its domain: one of"),
        ({"act": "relu"}, "parameter 'act' is inactive"),
        ({"optimizer": "sgd"}, "active parameter 'momentum' is missing"),
        ({"optimizer": "adam", "depth": 4, "act": "relu"}, "forbidden combination.*optimizer"),
    ],
)
def test_validate_names_the_parameter(cond_space: SearchSpace, change: dict, match: str):
    config = {"optimizer": "adam", "lr": 0.01, "depth": 2}
    cond_space.validate(config)
    with pytest.raises(ValueError, match=match):
        cond_space.validate({**config, **change})


def test_validate_takes_numpy_scalars_as_configspace_hands_them_back():
    space = SearchSpace(
        [Categorical("flag", (True, False)), Categorical("kind", ("a", "b")), Integer("n", 1, 3)],
        {"kind": Equals("flag", True)},
    )
    config = {"flag": np.True_, "kind": np.str_("a"), "n": np.int64(2)}
    space.validate(config)
    assert space.arch_key(config) == space.arch_key({"flag": True, "kind": "a", "n": 2})
    cs = space.to_configspace()
    for cfg in cs.sample_configuration(20):
        space.validate(dict(cfg))


# --------------------------------------------------------------------------- size


def test_size_of_depth_one_to_four_with_nine_choices_per_layer():
    space = layered()
    assert space.size() == 9 + 81 + 729 + 6561 == 7380
    # The same count when the depth parent is an ordered categorical.
    ordinal = SearchSpace(
        [Categorical("depth", (1, 2, 3, 4), ordered=True)]
        + [Categorical(f"layer{k}", OPS) for k in range(1, 5)],
        {f"layer{k}": GreaterThan("depth", k - 1) for k in range(2, 5)},
    )
    assert ordinal.size() == 7380


def test_size_of_sixteen_free_three_way_choices():
    space = SearchSpace([Categorical(f"edge{i}", ("a", "b", "c")) for i in range(16)])
    assert space.size() == 9**8 == 3**16


def test_size_counts_forbidden_clauses_and_inactive_parents():
    space = layered(max_depth=2)
    # depth 1: 9, depth 2: 81; forbid layer1 == op1 with layer2 == op1 (only at depth 2).
    clause = ForbiddenAnd(ForbiddenEquals("layer1", "op1"), ForbiddenEquals("layer2", "op1"))
    with_clause = SearchSpace(space.params.values(), space.conditions, [clause])
    assert with_clause.size() == 9 + 81 - 1
    # A clause on a parameter that is active only at depth 2 does not remove depth-1 configs.
    on_child = SearchSpace(
        space.params.values(), space.conditions, [ForbiddenIn("layer2", OPS[-3:])]
    )
    assert on_child.size() == 9 + 9 * 6


def test_size_of_large_integer_ranges_is_exact():
    # 100 000 values are counted by ranges between thresholds, not one by one.
    space = SearchSpace(
        [Integer("n", 0, 99_999), Categorical("big", ("a", "b", "c")), Categorical("tiny", (1, 2))],
        {"big": GreaterThan("n", 49_999), "tiny": Or(LessThan("n", 10), Equals("n", 77_777))},
        [
            ForbiddenAnd(ForbiddenEquals("n", 5), ForbiddenEquals("tiny", 1)),
            ForbiddenEquals("n", 60_000),
        ],
    )
    below = 10 * 2 - 1  # n < 10: tiny active, one pair forbidden
    middle = 50_000 - 10  # 10 <= n <= 49 999: nothing else active
    above = (50_000 - 2) * 3 + 3 * 2  # n >= 50 000 minus 60 000; n = 77 777 adds tiny
    assert space.size() == below + middle + above


def test_size_is_infinite_only_when_a_float_can_be_active():
    a = Categorical("a", ("x", "y"), default="y")
    f = Float("f", 0.0, 1.0)
    b = Categorical("b", (1, 2))
    assert SearchSpace([a, f], {"f": Equals("a", "x")}).size() == math.inf
    # f is active only where b is, and every value of b is forbidden there.
    never = SearchSpace(
        [a, f, b], {"f": Equals("a", "x"), "b": Equals("a", "x")}, [ForbiddenIn("b", (1, 2))]
    )
    assert never.size() == 1
    assert never.is_finite()


def test_size_with_a_float_threshold_over_a_forbidden_child():
    # The class f > 0.5 is infinite and has no valid continuation: inf * 0 must not leak a
    # nan into the count.
    space = SearchSpace(
        [Float("f", 0.0, 1.0), Categorical("y", ("a", "b"))],
        {"y": GreaterThan("f", 0.5)},
        [ForbiddenIn("y", ("a", "b"))],
    )
    assert space.size() == math.inf
    finite = SearchSpace(
        [Integer("n", 0, 9), Categorical("y", ("a", "b"))],
        {"y": GreaterThan("n", 4)},
        [ForbiddenIn("y", ("a", "b"))],
    )
    assert finite.size() == 5


def test_size_groups_values_that_clauses_treat_alike():
    # One clause per pair of neighbouring edges forbids "both not none": 9 of 10 values of each
    # edge behave alike, so the count stays fast and exact (checked against a recurrence).
    edges = [Integer(f"e{i}", 0, 9, default=0) for i in range(16)]
    rest = tuple(range(1, 10))
    clauses = [
        ForbiddenAnd(ForbiddenIn(f"e{i}", rest), ForbiddenIn(f"e{i + 1}", rest)) for i in range(15)
    ]
    space = SearchSpace(edges, forbidden=clauses)
    zero, other = 1, 9  # configs of the first edges ending in 0 / in another value
    for _ in range(15):
        zero, other = zero + other, 9 * zero
    assert space.size() == zero + other


# --------------------------------------------------------------------------- sampling


def test_sample_finds_a_valid_part_that_rejection_would_miss():
    # Valid only where the float hits exactly -1.5 (the child is forbidden whenever active).
    space = SearchSpace(
        [Float("f", -2.0, -1.0), Categorical("c", ("a",))],
        {"c": NotEquals("f", -1.5)},
        [ForbiddenEquals("c", "a")],
    )
    assert space.size() == 1
    assert space.sample(seed=0) == {"f": -1.5}
    # One valid config in 10**8: each edge but the last must be 0, the last one is free.
    edges = [Integer(f"e{i}", 0, 9, default=0) for i in range(8)]
    tiny = SearchSpace(
        edges, forbidden=[ForbiddenIn(f"e{i}", tuple(range(1, 10))) for i in range(7)]
    )
    assert tiny.size() == 10
    samples = [tiny.sample(seed=k) for k in range(20)]
    for config in samples:
        tiny.validate(config)
    assert len({c["e7"] for c in samples}) > 3  # the free edge is still drawn at random


# --------------------------------------------------------------------------- activity


def test_ordinal_greater_than_compares_positions_not_values():
    # "l" < "m" as strings, but "l" comes after "m" in the declared order.
    space = SearchSpace(
        [Categorical("size", ("s", "m", "l", "xl"), ordered=True), Integer("extra", 1, 3)],
        {"extra": GreaterThan("size", "m")},
    )
    space.validate({"size": "l", "extra": 1})
    space.validate({"size": "m"})
    with pytest.raises(ValueError, match="active parameter 'extra' is missing"):
        space.validate({"size": "xl"})
    assert assert_agrees_with_configspace(space) == 2 + 2 * 3
    assert space.size() == 8


def test_not_equals_with_an_inactive_parent_leaves_the_child_inactive():
    space = SearchSpace(
        [Categorical("a", ("x", "y")), Categorical("b", ("p", "q")), Categorical("c", (1, 2))],
        {"b": Equals("a", "x"), "c": NotEquals("b", "p")},
    )
    space.validate({"a": "y"})
    with pytest.raises(ValueError, match="parameter 'c' is inactive"):
        space.validate({"a": "y", "c": 1})
    space.validate({"a": "x", "b": "q", "c": 2})
    space.validate({"a": "x", "b": "p"})
    # ConfigSpace 1.2 alone would call c active for a == "y" (it compares NaN != "p"); the
    # export guards the relation so both agree on every assignment.
    assert assert_agrees_with_configspace(space) == 1 + 1 + 2 == space.size()


@pytest.mark.parametrize("parent", [Integer("b", 0, 3), Float("b", 0.0, 3.0)])
def test_not_equals_on_a_numeric_conditional_parent_agrees_with_configspace(parent):
    space = SearchSpace(
        [Categorical("a", ("x", "y")), parent, Categorical("c", (1, 2))],
        {"b": Equals("a", "x"), "c": NotEquals("b", 2)},
    )
    cs = space.to_configspace()
    for config, ok in [
        ({"a": "y"}, True),
        ({"a": "y", "c": 1}, False),
        ({"a": "x", "b": 2}, True),
        ({"a": "x", "b": 2, "c": 1}, False),
        ({"a": "x", "b": 0, "c": 1}, True),
        ({"a": "x", "b": 3}, False),
    ]:
        assert space.is_valid(config) == ok == cs_valid(cs, config), config


def test_nested_and_or_follow_one_definition_of_active():
    space = SearchSpace(
        [
            Categorical("a", (0, 1, 2)),
            Categorical("b", ("u", "v")),
            Integer("c", 0, 3),
            Categorical("d", ("p", "q")),
            Categorical("e", (True, False)),
        ],
        {
            "b": NotEquals("a", 0),
            "c": Or(Equals("a", 0), Equals("b", "v")),
            # active iff a in {1, 2} and (b == u or c > 1), every relation over active parents
            "d": And(In("a", (1, 2)), Or(Equals("b", "u"), GreaterThan("c", 1))),
            "e": Or(And(Equals("d", "p"), LessThan("c", 3)), Equals("a", 0)),
        },
    )

    def expected(cfg: Mapping[str, Any]) -> set[str]:
        active = {"a"}
        if cfg["a"] != 0:
            active.add("b")
        if cfg["a"] == 0 or ("b" in active and cfg.get("b") == "v"):
            active.add("c")
        if cfg["a"] in (1, 2) and (
            ("b" in active and cfg["b"] == "u") or ("c" in active and cfg["c"] > 1)
        ):
            active.add("d")
        if ("d" in active and cfg["d"] == "p" and "c" in active and cfg["c"] < 3) or cfg["a"] == 0:
            active.add("e")
        return active

    valid = [c for c in all_assignments(space) if space.is_valid(c)]
    for config in valid:
        assert set(config) == expected(config)
    assert len(valid) == space.size() == assert_agrees_with_configspace(space)


def test_conjunctions_configspace_would_confuse_keep_their_meaning():
    # ConfigSpace 1.2 groups children whose conditions look alike, without telling And from
    # Or, and then checks both with the first one's condition.
    space = SearchSpace(
        [Categorical(n, (0, 1)) for n in "abcd"],
        {"c": And(Equals("a", 1), Equals("b", 1)), "d": Or(Equals("a", 1), Equals("b", 1))},
    )
    # (a, b) = (0, 0): neither child; (0, 1) and (1, 0): d only; (1, 1): both.
    assert assert_agrees_with_configspace(space) == space.size() == 1 + 2 + 2 + 4
    assert SearchSpace.from_configspace(space.to_configspace()) == space
    # The guarded NotEquals of c1 looks, to ConfigSpace, like c2's two-part Or; padding one of
    # them must not break the guard's way back.
    guarded = SearchSpace(
        [
            Categorical("a", (0, 1), default=1),
            Categorical("p", ("u", "v")),
            Categorical("c1", (0, 1)),
            Categorical("c2", (0, 1)),
        ],
        {
            "p": Equals("a", 1),
            "c1": NotEquals("p", "u"),
            "c2": Or(In("p", ("u", "v")), In("p", ("u", "v"))),
        },
    )
    assert assert_agrees_with_configspace(guarded) == guarded.size() == 1 + 2 + 2 * 2
    assert SearchSpace.from_configspace(guarded.to_configspace()) == guarded


def test_forbidden_on_an_inactive_parameter_never_fires():
    space = SearchSpace(
        [Categorical("a", ("x", "y"), default="y"), Categorical("b", (1, 2))],
        {"b": Equals("a", "x")},
        [
            ForbiddenEquals("b", 1),
            ForbiddenAnd(ForbiddenEquals("a", "y"), ForbiddenIn("b", (1, 2))),
        ],
    )
    # a == "y" leaves b inactive: neither clause can fire, even the one naming a == "y".
    space.validate({"a": "y"})
    assert not space.is_forbidden({"a": "y"})
    assert space.is_forbidden({"a": "x", "b": 1})
    assert space.size() == 2
    assert assert_agrees_with_configspace(space) == 2


# --------------------------------------------------------------------------- sample, default, key


def test_sample_is_seeded_and_default_is_configspace_default(cond_space: SearchSpace):
    assert cond_space.sample(seed=3) == cond_space.sample(seed=3)
    assert len({cond_space.arch_key(cond_space.sample(seed=k)) for k in range(20)}) > 10
    for k in range(50):
        cond_space.validate(cond_space.sample(seed=k))
    default = cond_space.default()
    cond_space.validate(default)
    cs_default = cond_space.to_configspace().get_default_configuration()
    assert {k: v for k, v in dict(cs_default).items()} == default


def test_arch_key_is_canonical():
    space = SearchSpace([Categorical("w", (2, 2.5)), Float("f", 0.0, 4.0), Integer("n", 1, 3)])
    a = {"w": 2, "f": 1.0, "n": 3}
    assert space.arch_key(a) == space.arch_key(dict(reversed(list(a.items()))))
    # Equal dicts give equal keys, whatever numeric type ConfigSpace or numpy hands back.
    b = {"w": 2.0, "f": 1, "n": np.int64(3)}
    assert a == b and space.arch_key(a) == space.arch_key(b)
    assert json.loads(space.arch_key(a)) == {"f": 1.0, "n": 3, "w": 2}
    assert space.arch_key(a) != space.arch_key({**a, "w": 2.5})


def test_arch_key_is_the_sorted_compact_json_of_the_canonical_config():
    space = SearchSpace([Categorical("op", ("conv", "skip", False, True)),
                         Categorical("w", (8, 16.5)), Integer("n", 1, 3), Float("f", 0, 1)])
    for a in space.sample(seed=0), {"op": False, "w": 16.5, "n": 2, "f": 0.25}, \
            {"op": True, "w": 8, "n": np.int64(1), "f": 1}, {"op": "skip", "w": 8.0, "n": 3.0}:
        canonical = {k: space._keys.canonical(k, v) for k, v in a.items()}
        expected = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        # Twice (the second from the cached texts and name order) and in reverse order.
        assert space.arch_key(a) == space.arch_key(a) == expected
        assert space.arch_key(dict(reversed(list(a.items())))) == expected
    # Integer texts cached by value: a name JSON must escape, and bools are not ints here.
    odd = SearchSpace([Integer('n"\\', -3, 300), Categorical("b", (2, 3))])
    for config in ({'n"\\': 7, "b": 2}, {'n"\\': True, "b": 3}, {'n"\\': 7.0, "b": 2.0},
                   {'n"\\': -3, "b": 2}):
        canonical = {k: odd._keys.canonical(k, v) for k, v in config.items()}
        expected = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        assert odd.arch_key(config) == odd.arch_key(config) == expected
    # A choice spelled by another object of equal value gets the choice's text.
    assert space.arch_key({"op": "sk" + "ip", "w": 8.0}) == '{"op":"skip","w":8}'
    # The ids behind the fast path are rebuilt where the space is unpickled.
    clone = pickle.loads(pickle.dumps(space))
    config = {"op": clone._params["op"].choices[0], "w": 16.5}
    assert clone.arch_key(config) == space.arch_key(config) == '{"op":"conv","w":16.5}'


# --------------------------------------------------------------------------- neighbourhoods


def test_neighbors_change_one_parameter_and_repair_activation():
    space = layered()
    config = {"depth": 2, "layer1": "op3", "layer2": "op5"}
    neighbors = space.neighbors(config)
    assert {"depth": 1, "layer1": "op3"} in neighbors  # layer2 dropped
    assert {"depth": 3, "layer1": "op3", "layer2": "op5", "layer3": "op0"} in neighbors
    assert {"depth": 2, "layer1": "op3", "layer2": "op0"} in neighbors
    # 2 depth moves, 8 other choices for each of the two layers
    assert len(neighbors) == 2 + 8 + 8
    assert space.neighbors(config) == neighbors  # deterministic


def test_repair_gives_the_nearest_valid_config():
    space = SearchSpace(
        [Integer("depth", 1, 3), Categorical("a", ["conv", "mlp"]),
         Categorical("b", ["conv", "mlp"])],
        {"b": GreaterThan("depth", 1)},
        [ForbiddenAnd(ForbiddenEquals("a", "mlp"), ForbiddenEquals("b", "conv"))],
    )
    forbidden = {"depth": 2, "a": "mlp", "b": "conv"}
    assert space.is_forbidden(forbidden)
    for seed in range(10):
        fixed = space.repair(forbidden, seed)
        space.validate(fixed)
        changed = {k for k in set(fixed) | set(forbidden) if fixed.get(k) != forbidden.get(k)}
        assert len(changed) == 1 or changed == {"depth", "b"}  # one move (depth 1 drops b)
    assert space.repair({"depth": 3, "a": "conv", "b": "mlp"}) == {"depth": 3, "a": "conv",
                                                                     "b": "mlp"}
    # Values missing or outside the space are completed from the defaults.
    space.validate(space.repair({"depth": 2, "a": "nope"}))


def test_mutate_changes_exactly_one_active_parameter_and_inherits_the_rest():
    space = layered()
    config = {"depth": 2, "layer1": "op3", "layer2": "op5"}
    rng = np.random.default_rng(0)
    seen_depth_change = False
    for _ in range(200):
        child = space.mutate(config, rng)
        space.validate(child)
        changed = [n for n in config if n in child and child[n] != config[n]]
        assert len(changed) == 1
        kept = {n: config[n] for n in config if n in child and n not in changed}
        assert all(child[n] == v for n, v in kept.items())
        if changed == ["depth"]:
            seen_depth_change = True
            assert set(child) == {f"layer{k}" for k in range(1, child["depth"] + 1)} | {"depth"}
    assert seen_depth_change
    assert space.mutate(config, 7) == space.mutate(config, 7)


def test_mutate_without_any_valid_move_raises():
    only_one = SearchSpace([Categorical("a", ("x", "y"))], forbidden=[ForbiddenEquals("a", "y")])
    assert only_one.neighbors({"a": "x"}) == []
    with pytest.raises(ValueError, match="no valid configuration is one step away"):
        only_one.mutate({"a": "x"}, 0)
    with pytest.raises(ValueError, match="no parameter with more than one value"):
        SearchSpace([Constant("k", 3)]).mutate({"k": 3}, 0)
    with pytest.raises(ValueError, match="'a'"):
        only_one.mutate({"a": "y"}, 0)  # the parent itself must be valid


def test_neighbors_of_floats_stay_in_range():
    space = SearchSpace([Float("lr", 1e-4, 1.0, log=True), Float("p", 0.0, 1.0)])
    config = {"lr": 1.0, "p": 0.0}
    for child in space.neighbors(config):
        space.validate(child)
    assert len(space.neighbors(config)) == 2  # only the inward step of each bound


# --------------------------------------------------------------------------- optuna


def test_suggest_with_fixed_trial_asks_only_active_parameters(cond_space: SearchSpace):
    for k in range(20):
        config = cond_space.sample(seed=k)
        # FixedTrial raises for a name it was not given: asking an inactive one would fail.
        assert cond_space.suggest(optuna.trial.FixedTrial(config)) == config


def test_suggest_refuses_a_forbidden_fixed_trial(cond_space: SearchSpace):
    forbidden = {"optimizer": "adam", "lr": 0.1, "depth": 4, "act": "gelu"}
    with pytest.raises(ForbiddenConfigurationError, match="forbidden combination"):
        cond_space.suggest(optuna.trial.FixedTrial(forbidden))
    assert issubclass(ForbiddenConfigurationError, optuna.TrialPruned)


def test_suggest_in_a_study_prunes_forbidden_trials(cond_space: SearchSpace):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        config = cond_space.suggest(trial)
        cond_space.validate(config)
        return float(config["depth"])

    study.optimize(objective, n_trials=60)
    states = {t.state for t in study.trials}
    assert optuna.trial.TrialState.PRUNED in states  # adam & depth 4 is 1 in 8 of draws
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            cond_space.validate(t.params)
            assert set(t.params) <= set(cond_space.params)
        else:
            assert cond_space.is_forbidden(t.params)
            assert "optimizer == 'adam'" in t.user_attrs["forbidden"]


# --------------------------------------------------------------------------- ConfigSpace


def every_kind() -> SearchSpace:
    return SearchSpace(
        [
            Categorical("op", ("conv", "pool", 3), default="pool"),
            Categorical("size", ("s", "m", "l"), ordered=True, default="m"),
            Integer("width", 8, 256, log=True, default=64),
            Integer("depth", -2, 5),
            Float("lr", 1e-5, 1.0, log=True),
            Float("drop", 0.0, 0.5, default=0.1),
            Constant("seed", 7),
            Categorical("flag", (True, False)),
        ],
        {
            "width": In("op", ("conv", 3)),
            "lr": And(GreaterThan("size", "s"), NotEquals("width", 64)),
            "drop": Or(LessThan("depth", 0), And(Equals("flag", True), NotEquals("op", "pool"))),
        },
        [
            ForbiddenAnd(ForbiddenEquals("op", "conv"), ForbiddenIn("depth", (4, 5))),
            ForbiddenIn("size", ("l",)),
        ],
    )


def test_to_configspace_is_lossless_and_typed():
    space = every_kind()
    cs = space.to_configspace()
    assert isinstance(cs["size"], CS.OrdinalHyperparameter)
    assert isinstance(cs["op"], CS.CategoricalHyperparameter)
    assert cs["width"].log and cs["width"].default_value == 64
    assert isinstance(cs["seed"], CS.Constant)
    kinds = {c.child.name: type(c) for c in cs.conditions}
    assert kinds == {"width": CS.InCondition, "lr": CS.AndConjunction, "drop": CS.OrConjunction}
    assert SearchSpace.from_configspace(cs) == space


def test_configspace_json_round_trip(tmp_path):
    space = every_kind()
    path = tmp_path / "space.json"
    space.to_configspace().to_json(path)
    loaded = CS.ConfigurationSpace.from_json(path)
    back = SearchSpace.from_configspace(loaded)
    assert back == space
    assert back.size() == space.size() == math.inf
    for k in range(30):
        config = space.sample(seed=k)
        back.validate(config)
        CS.Configuration(loaded, values=config).check_valid_configuration()


def test_round_trip_is_not_equal_to_a_different_space():
    space = every_kind()
    other = SearchSpace(
        space.params.values(),
        {**space.conditions, "width": In("op", ("conv",))},
        space.forbidden,
    )
    assert other != space
    assert SearchSpace.from_configspace(other.to_configspace()) != space


def test_import_hand_written_space_with_several_conditions_and_priors():
    cs = CS.ConfigurationSpace(name="handmade")
    algo = CS.CategoricalHyperparameter("algo", ["svm", "rf", "knn"], weights=[0.5, 0.3, 0.2])
    kernel = CS.CategoricalHyperparameter("kernel", ["rbf", "poly"])
    degree = CS.NormalIntegerHyperparameter(
        "degree", mu=3, sigma=1, lower=2, upper=5, default_value=3
    )
    gamma = CS.BetaFloatHyperparameter("gamma", alpha=2, beta=3, lower=1e-3, upper=1.0, log=True)
    c = CS.NormalFloatHyperparameter("C", mu=1.0, sigma=0.5, lower=0.01, upper=10.0)
    cs.add(algo, kernel, degree, gamma, c)
    # ConfigSpace 1.2 refuses two separate conditions on one child (AmbiguousConditionError);
    # several conditions on one child are written as a conjunction.
    cs.add(
        CS.EqualsCondition(kernel, algo, "svm"),
        CS.AndConjunction(
            CS.EqualsCondition(degree, algo, "svm"),
            CS.EqualsCondition(degree, kernel, "poly"),
            CS.OrConjunction(
                CS.GreaterThanCondition(degree, gamma, 0.5), CS.LessThanCondition(degree, c, 1.0)
            ),
        ),
        CS.InCondition(gamma, algo, ["svm", "knn"]),
    )
    cs.add(
        CS.ForbiddenAndConjunction(
            CS.ForbiddenEqualsClause(algo, "knn"), CS.ForbiddenInClause(c, [0.01, 10.0])
        )
    )
    with pytest.warns(UserWarning) as record:
        space = SearchSpace.from_configspace(cs)
    warned = " ".join(str(w.message) for w in record)
    for name in ("'algo'", "'degree'", "'gamma'", "'C'"):
        assert name in warned
    assert "'kernel'" not in warned
    assert space.name == "handmade"
    assert space["degree"] == Integer("degree", 2, 5, default=3)
    assert space["gamma"].log and (space["gamma"].low, space["gamma"].high) == (1e-3, 1.0)
    assert space["algo"].choices == ("svm", "rf", "knn")
    assert space.conditions["degree"] == And(
        Equals("algo", "svm"),
        Equals("kernel", "poly"),
        Or(GreaterThan("gamma", 0.5), LessThan("C", 1.0)),
    )
    for cfg in cs.sample_configuration(200):
        if cs_valid(cs, dict(cfg)):
            space.validate(dict(cfg))
    for k in range(50):
        assert cs_valid(cs, space.sample(seed=k))


def test_import_warns_about_configspace_not_equals_on_a_conditional_parent():
    cs = CS.ConfigurationSpace()
    # ConfigSpace computes its default with the other reading of NotEquals and refuses the
    # space unless b is active in the default.
    a = CS.CategoricalHyperparameter("a", [0, 1], default_value=1)
    b, c = (CS.CategoricalHyperparameter(n, [0, 1]) for n in "bc")
    cs.add(a, b, c, CS.EqualsCondition(b, a, 1), CS.NotEqualsCondition(c, b, 1))
    with pytest.warns(UserWarning, match="'b' active"):
        space = SearchSpace.from_configspace(cs)
    assert space.conditions["c"] == NotEquals("b", 1)
    # Our export of the same space says what nas-hpo means; no warning on the way back.
    assert SearchSpace.from_configspace(space.to_configspace()) == space


def test_configspace_sampler_and_check_disagree_but_we_follow_the_check():
    # ConfigSpace 1.2 samples children in order of their shallowest parent, so c (parents a
    # at depth 1 and b at depth 3) is decided before b is switched off: some of its samples
    # fail its own check. Our verdict matches the check on every one of them.
    space = SearchSpace(
        [Categorical(n, (0, 1)) for n in "axdbc"],
        {"d": Equals("x", 1), "b": Equals("d", 1), "c": Or(Equals("a", 1), Equals("b", 1))},
    )
    cs = space.to_configspace()
    cs.seed(0)
    verdicts = []
    for cfg in cs.sample_configuration(300):
        theirs = cs_valid(cs, dict(cfg))
        assert space.is_valid(dict(cfg)) == theirs
        verdicts.append(theirs)
    assert any(verdicts)
    for k in range(100):
        assert cs_valid(cs, space.sample(seed=k))


def test_import_rewrites_or_and_order_forbidden_clauses_exactly():
    cs = CS.ConfigurationSpace()
    depth = CS.UniformIntegerHyperparameter("depth", 1, 6, default_value=2)
    size = CS.OrdinalHyperparameter("size", ["s", "m", "l"])
    op = CS.CategoricalHyperparameter("op", ["conv", "pool", "skip"])
    cs.add(depth, size, op)
    cs.add(
        CS.ForbiddenAndConjunction(
            CS.ForbiddenOrConjunction(
                CS.ForbiddenGreaterThanClause(depth, 4), CS.ForbiddenLessThanEqualsClause(size, "s")
            ),
            CS.ForbiddenEqualsClause(op, "pool"),
        ),
        CS.ForbiddenGreaterThanEqualsClause(size, "l"),
        CS.ForbiddenLessThanClause(depth, 1),  # forbids nothing
    )
    space = SearchSpace.from_configspace(cs)
    assert set(space.forbidden) == {
        ForbiddenAnd(ForbiddenIn("depth", (5, 6)), ForbiddenEquals("op", "pool")),
        ForbiddenAnd(ForbiddenIn("size", ("s",)), ForbiddenEquals("op", "pool")),
        ForbiddenIn("size", ("l",)),
    }
    # size != l leaves 6 * 2 * 3; pool is then forbidden with depth > 4 (2 * 2) or size s (6),
    # both at once counted twice (2).
    assert assert_agrees_with_configspace(space) == space.size() == 36 - (4 + 6 - 2)


def test_import_names_forbidden_clauses_it_cannot_express():
    cs = CS.ConfigurationSpace()
    a = CS.UniformIntegerHyperparameter("a", 0, 5)
    b = CS.UniformIntegerHyperparameter("b", 0, 5)
    f = CS.UniformFloatHyperparameter("f", 0.0, 1.0)
    cs.add(a, b, f, CS.ForbiddenLessThanRelation(a, b))
    with pytest.raises(ValueError, match="ForbiddenLessThanRelation.*not supported"):
        SearchSpace.from_configspace(cs)
    cs = CS.ConfigurationSpace()
    cs.add(f, CS.ForbiddenGreaterThanClause(f, 0.9))
    with pytest.raises(ValueError, match="finite domain.*'f' is a float"):
        SearchSpace.from_configspace(cs)
