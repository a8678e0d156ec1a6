"""Architectures that build the same network: ``SearchSpace.network_key`` (NAS-Bench-201's
isomorphic cells) and the strategies' ``skip_equivalent``."""

from __future__ import annotations

import optuna
import pytest

import nas_hpo
from nas_hpo import spaces
from nas_hpo.spaces import nb201
from tests.strategies.test_unseen import SMALL, repeats

NB201 = spaces.get("nb201", C=4, N=1)


def test_network_key_joins_isomorphic_nb201_cells_only():
    # Edge 3<-1 runs from node 1, which gets nothing (its only input edge is none): whatever
    # that edge does, the cell computes the same function.
    a = nb201.from_arch_str("|none~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|"
                            "nor_conv_1x1~1|skip_connect~2|")
    b = {**a, "edge_3_1": "nor_conv_3x3"}
    c = {**a, "edge_3_2": "nor_conv_3x3"}
    assert NB201.arch_key(a) != NB201.arch_key(b)
    assert NB201.network_key(a) == NB201.network_key(b) == nb201.canonical(a)
    assert NB201.network_key(c) != NB201.network_key(a)
    # Kept by copies of the space.
    for copy in (spaces.widened(NB201, 2.0), NB201.with_builder(lambda c, **kw: None)):
        assert copy.network_key(b) == copy.network_key(a)
    # A space that says nothing: the architecture key.
    config = SMALL.sample(seed=0)
    assert SMALL.network_key(config) == SMALL.arch_key(config)


def score(config: dict) -> float:
    """A deterministic value per network (equal for isomorphic cells, as on NB201-digits)."""
    key = nb201.canonical(config)
    return key.count("nor_conv_3x3") + 0.5 * key.count("nor_conv_1x1") - 0.1 * len(key) / 40


def same_networks(study: optuna.Study, after: int = 0) -> int:
    """Trials from number ``after`` on whose network an earlier trial already built."""
    return repeats(study, after, key=NB201.network_key)


@pytest.mark.parametrize(("name", "options", "after", "seed"), [
    ("tpe", {"n_startup_trials": 5}, 5, 1),
    ("re", {"population_size": 10, "sample_size": 3}, 0, 1),
    ("local_search", {"n_initial": 5}, 0, 3),
    ("bananas", {"n_startup_trials": 5, "n_candidates": 30, "epochs": 20}, 5, 3),
    # (no random interleaving: those proposals are SMAC's random design, not its maximizer's)
    ("smac", {"n_initial": 5, "random_probability": 0}, 5, 1),
    ("reinforce", {"unseen": True}, 0, 1),
])
def test_skip_equivalent_never_builds_a_network_twice(name, options, after, seed):
    """After the random start-up of TPE, bananas and SMAC (their own draws), none of the proposals
    (reinforce's with ``unseen``) builds a network a trial built; without the option some do."""
    def run(skip: bool, study_name: str = "s") -> optuna.Study:
        return nas_hpo.run({"strategy": {"name": name, "skip_equivalent": skip, **options}},
                           space=NB201, objective=score, storage=":memory:", n_trials=40,
                           seed=seed, study_name=study_name)

    plain, ours = run(False), run(True)
    assert same_networks(plain, after) >= 1
    assert same_networks(ours, after) == 0
    # Seed-reproducible with the option as without.
    assert [t.params for t in run(True, "again").trials] == [t.params for t in ours.trials]


def test_smac_skips_equivalent_networks_only_with_its_own_maximizer():
    """Unset, ``skip_equivalent`` follows ``maximizer``; asked for with SMAC's own maximizer
    (which cannot skip anything), it is refused, saying why."""
    def run(**options) -> optuna.Study:
        return nas_hpo.run({"strategy": {"name": "smac", "n_initial": 2, **options}},
                           space=NB201, objective=score, storage=":memory:", n_trials=3, seed=0)

    assert len(run(maximizer="smac").trials) == 3
    with pytest.raises(ValueError, match="skip_equivalent needs maximizer = 'unseen'"):
        run(maximizer="smac", skip_equivalent=True)


class EpochScore(nas_hpo.objectives.Objective):
    """``score`` reached after ``epoch`` of 5 epochs (an ``epoch`` fidelity, as NB201-digits')."""

    fidelities = ("epoch",)

    def __call__(self, config, *, space, ctx):
        return nas_hpo.objectives.Result((score(config) * ctx.fidelity.get("epoch", 5) / 5,))


def test_smac_hyperband_skips_equivalent_networks_by_default():
    """SMAC-Hyperband runs a configuration again at a larger budget (a promotion); a
    configuration it runs for the first time builds, with ``skip_equivalent`` (unset: on with
    the unseen maximizer), no network an earlier trial built (after its Sobol start-up, without
    random interleaving); without it some do."""
    def run(**options) -> optuna.Study:
        return nas_hpo.run({"strategy": {"name": "smac_hyperband", "fidelity": "epoch",
                                         "min_budget": 2, "max_budget": 5, "eta": 2,
                                         "n_initial": 5, "random_probability": 0, **options}},
                           space=NB201, objective=EpochScore(), storage=":memory:",
                           n_trials=40, seed=1)

    def new_with_a_built_network(study: optuna.Study) -> int:
        configs, networks, n = [], set(), 0
        for t in study.trials:
            if t.params not in configs:  # not a promotion
                # (from the sixth new configuration on: the first five are SMAC's Sobol design)
                n += len(configs) >= 5 and NB201.network_key(t.params) in networks
                configs.append(t.params)
            networks.add(NB201.network_key(t.params))
        return n

    default, plain = run(), run(skip_equivalent=False)
    assert {t.user_attrs["budget"]["epoch"] for t in default.trials} == {2.5, 5}
    assert new_with_a_built_network(plain) >= 1
    assert new_with_a_built_network(default) == 0
