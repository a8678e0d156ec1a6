from __future__ import annotations

import dataclasses

import pytest
import torch

from nas_hpo import data, objectives, spaces
from nas_hpo.objectives import Context, TrialFailure


@pytest.fixture(scope="module")
def space():
    return spaces.get("resnet_blocks", base_width=4)


def test_digits_splits_are_fixed_stratified_and_disjoint():
    a = data.load("digits", split_seed=0)
    b = data.load("digits", split_seed=0)
    c = data.load("digits", split_seed=1)
    assert torch.equal(a.x_val, b.x_val)
    assert not torch.equal(a.x_val, c.x_val)
    assert (len(a.x_train), len(a.x_val), len(a.x_test)) == (1077, 360, 360)
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    assert set(a.y_val.tolist()) == set(range(10))
    rows = {tuple(r.tolist()) for r in a.x_train.flatten(1)}
    assert not any(tuple(r.tolist()) in rows for r in a.x_test.flatten(1)[:50])


def test_same_seed_same_curve_on_cpu(space):
    objective = objectives.get("train", epochs=2)
    config = space.sample(seed=5)
    runs = [objective(config, space=space, ctx=Context(seed=7)) for _ in range(2)]
    assert runs[0].user_attrs["learning_curve"] == runs[1].user_attrs["learning_curve"]
    other = objective(config, space=space, ctx=Context(seed=8))
    assert runs[0].user_attrs["test_accuracy"] >= 0.0
    assert other.user_attrs["learning_curve"] != runs[0].user_attrs["learning_curve"] or (
        other.values == runs[0].values)


def test_training_learns_digits_and_reports_each_epoch(space):
    ctx = Context(seed=0)
    result = objectives.get("train", epochs=4)(space.default(), space=space, ctx=ctx)
    assert [s for s, _ in ctx.reports] == [1, 2, 3, 4]
    assert result.values[0] == ctx.reports[-1][1]
    assert result.values[0] > 0.85, result.user_attrs["learning_curve"]
    assert result.user_attrs["params"] == sum(
        p.numel() for p in space.build(space.default(), input_shape=(1, 8, 8),
                                       num_classes=10).parameters())


def test_nan_loss_is_a_trial_failure(space):
    objective = objectives.get("train", epochs=1, lr=1e30, optimizer="sgd")
    with pytest.raises(TrialFailure, match="training loss became"):
        objective(space.default(), space=space, ctx=Context(seed=0))


@pytest.mark.parametrize("options, match", [
    ({"optimizer": "lion"}, "optimizer: unknown 'lion'; known: adamw, sgd"),
    ({"dataset": "imagenet"}, "dataset: unknown 'imagenet'"),
    ({"epochs": 0}, "epochs must be >= 1"),
])
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        objectives.get("train", **options)


def test_options_are_a_frozen_dataclass():
    objective = objectives.get("train", epochs=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        objective.epochs = 4
