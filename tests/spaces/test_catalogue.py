"""Contract tests over every registered space: a new space is tested without new test code."""

from __future__ import annotations

import math

import optuna
import pytest
import torch

from nas_hpo import SearchSpace, cost, spaces

NAMES = spaces.names()


@pytest.fixture(params=NAMES)
def space(request) -> SearchSpace:
    return spaces.get(request.param)


def test_registry_refuses_duplicates_and_names_unknowns():
    with pytest.raises(ValueError, match="registered already"):
        spaces.register("resnet_blocks")(lambda: None)
    with pytest.raises(ValueError, match="unknown space 'nope'; registered: .*resnet_blocks"):
        spaces.get("nope")


def test_samples_are_valid_and_keys_canonical(space):
    for seed in range(20):
        config = space.sample(seed=seed)
        space.validate(config)
        reordered = dict(reversed(list(config.items())))
        assert space.arch_key(reordered) == space.arch_key(config)
    assert space.sample(seed=1) == space.sample(seed=1)
    assert space.size() > 0


def test_configspace_round_trip(space):
    assert SearchSpace.from_configspace(space.to_configspace()) == space


def test_suggest_with_fixed_trial(space):
    config = space.sample(seed=4)
    assert space.suggest(optuna.trial.FixedTrial(config)) == config


def test_optuna_round_trip(space):
    """A real study's trial params are exactly valid configs, and replay to the same config."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {}

    def objective(trial):
        seen[trial.number] = space.suggest(trial)  # prunes a forbidden draw
        return 0.0

    study.optimize(objective, n_trials=10)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete
    for trial in study.trials:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            config = seen[trial.number]
            space.validate(trial.params)
            assert trial.params == config
            assert space.suggest(optuna.trial.FixedTrial(trial.params)) == config
        else:
            assert trial.state == optuna.trial.TrialState.PRUNED
            assert "forbidden" in trial.user_attrs


def test_size_matches_the_known_count(space):
    """Each registration states its size (from the literature or a closed form, which the
    space's own tests derive); the counting of the space model must agree."""
    assert space.size() == spaces.meta(space.name)["size"]


def test_registry_metadata_is_complete_and_agrees_with_the_space(space):
    meta = spaces.meta(space.name)
    assert {"size", "test_options"} <= set(meta)
    assert space.has_supernet == bool(meta.get("supernet"))
    small = spaces.get(space.name, **meta["test_options"])
    model = small.build(small.sample(seed=0), input_shape=(1, 8, 8), num_classes=3)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)


def test_a_space_registered_for_a_while_is_served_and_then_gone():
    with spaces.REGISTRY.temporarily("tmp_space", lambda: SearchSpace([]), size=1):
        assert "tmp_space" in spaces.names() and spaces.meta("tmp_space")["size"] == 1
    assert "tmp_space" not in spaces.names()


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_build_forward_backward(space, shape):
    for seed in (0, 1, 2):
        config = space.sample(seed=seed)
        torch.manual_seed(seed)
        model = space.build(config, input_shape=shape, num_classes=7)
        assert isinstance(model, torch.nn.Module)
        out = model(torch.randn(2, *shape))
        assert out.shape == (2, 7) and torch.isfinite(out).all()
        torch.nn.functional.cross_entropy(out, torch.tensor([0, 6])).backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        # The head always gets a gradient; nothing is NaN.
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
        assert all(g is None or torch.isfinite(g).all() for g in grads)


def test_builds_for_imagenet_sized_input(space):
    """224×224 works too (the default config, one image, no gradient: a smoke test of shapes)."""
    model = space.build(space.default(), input_shape=(3, 224, 224), num_classes=5).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 5) and torch.isfinite(out).all()


def test_cost_metrics_of_every_space(space):
    config = space.sample(seed=0)
    model = space.build(config, input_shape=(3, 32, 32), num_classes=10)
    attrs = cost.measure(model, (3, 32, 32), repeats=2, warmup=1)
    assert attrs["params"] == sum(p.numel() for p in model.parameters()) > 0
    assert attrs["flops"] > 0 and attrs["latency_ms"] > 0


def test_build_rejects_an_invalid_config(space):
    config = space.sample(seed=0)
    name = next(iter(config))
    bad = dict(config)
    bad[name] = "not-a-value"
    with pytest.raises(ValueError, match=name):
        space.build(bad, input_shape=(1, 8, 8), num_classes=10)


def test_resnet_blocks_structure():
    space = spaces.get("resnet_blocks")
    assert space.size() == 9**8 and len(space) == 16
    small = {k: (3 if k.endswith("kernel") else 0.5) for k in space.default()}
    large = {k: (7 if k.endswith("kernel") else 2.0) for k in space.default()}
    n = [sum(p.numel() for p in space.build(c, input_shape=(3, 32, 32), num_classes=10)
             .parameters()) for c in (small, large)]
    assert n[0] < n[1]
    model = space.build(large, input_shape=(3, 32, 32), num_classes=10)
    convs = [m for m in model.blocks.modules() if isinstance(m, torch.nn.Conv2d)
             and m.kernel_size[0] > 1]
    assert len(convs) == 16 and all(m.kernel_size == (7, 7) for m in convs)
    # inner width of block 1 (stage width 16) with multiplier 2
    assert model.blocks[0].conv1.out_channels == 32
    # 32x32 input: three halvings to 4x4; 8x8 input: halvings stop at 1x1
    feats = model.blocks(model.stem(torch.randn(1, 3, 32, 32)))
    assert feats.shape[-2:] == (4, 4)
    tiny = space.build(large, input_shape=(1, 2, 2), num_classes=10)
    assert tiny.blocks(tiny.stem(torch.randn(2, 1, 2, 2))).shape[-2:] == (1, 1)
    assert space.arch_key(large) == "-".join(["k7w2"] * 8)
    assert not math.isinf(space.size())
