"""Cost metrics: exact counts on hand-checkable layers, latency bookkeeping, the ``cost``
objective, and the cost attributes the runner stores on every trial."""

from __future__ import annotations

import optuna
import pytest
import torch
from torch import nn

import nas_hpo
from nas_hpo import SpecError, cost, spaces
from nas_hpo.objectives import Context
from nas_hpo.objectives import get as get_objective


def test_params_and_flops_are_exact_on_hand_checkable_layers():
    lin = nn.Linear(10, 5)
    assert cost.count_params(lin) == 10 * 5 + 5
    # One multiply-add is 2 FLOPs: 2 · 10 · 5 per sample.
    assert cost.count_flops(lin, (10,)) == 100
    assert cost.count_flops(lin, (10,), batch_size=3) == 300
    conv = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
    assert cost.count_params(conv) == 3 * 4 * 9 + 2 * 4  # BN running stats are buffers
    # Every one of the 8·8 outputs of each of 4 channels costs 3·3·3 multiply-adds.
    assert cost.count_flops(conv, (3, 8, 8)) == 2 * 4 * 64 * 27


def test_flops_leave_the_model_as_it_was():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cost.count_flops(model, (1, 8, 8))
    assert model.training and model[1].training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN stats untouched


def test_latency_is_the_median_of_the_timed_repeats():
    model = nn.Sequential(nn.Linear(16, 16), nn.Dropout(0.5))
    model.train()
    lat = cost.measure_latency(model, (16,), batch_size=4, warmup=1, repeats=7)
    assert len(lat.times_ms) == 7 and all(t > 0 for t in lat.times_ms)
    assert lat.median_ms == sorted(lat.times_ms)[3]
    assert (lat.batch_size, lat.device, lat.repeats) == (4, "cpu", 7)
    assert model.training and model[1].training
    with pytest.raises(ValueError, match="repeats"):
        cost.measure_latency(model, (16,), repeats=0)


def test_measure_names_unknown_metrics():
    with pytest.raises(ValueError, match="unknown cost metric 'energy'; known: params, flops"):
        cost.measure(nn.Linear(2, 2), (2,), ["params", "energy"])
    attrs = cost.measure(nn.Linear(2, 3), (2,), ["params", "latency"], repeats=2)
    assert attrs["params"] == 9 and attrs["latency_ms"] > 0
    assert attrs["latency_batch_size"] == 1 and attrs["latency_device"] == "cpu"
    assert "flops" not in attrs


def test_cost_objective_values_match_the_built_network():
    space = spaces.get("resnet_blocks", base_width=4)
    config = space.sample(seed=0)
    objective = get_objective("cost", metrics=["params", "flops"])
    assert objective.directions == ("minimize", "minimize")
    result = objective(config, space=space, ctx=Context(seed=1))
    model = space.build(config, input_shape=(1, 8, 8), num_classes=10)
    assert result.values == (cost.count_params(model), cost.count_flops(model, (1, 8, 8)))
    assert result.user_attrs["cost_input_shape"] == [1, 8, 8]
    big = get_objective("cost", metrics=["flops"], input_shape=[3, 32, 32], num_classes=10)
    flops32 = big(config, space=space, ctx=Context()).values[0]
    assert flops32 > result.values[1]  # same net, a larger input costs more


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"metrics": ["speed"]}, "unknown cost metric 'speed'"),
        ({"metrics": []}, "at least one"),
        ({"metrics": ["params", "params"]}, "twice"),
        ({"input_shape": [8, 8]}, "input_shape"),
        ({"input_shape": [1, 8, 8]}, "num_classes: required"),
        ({"dataset": "imagenet-21k"}, "dataset: unknown"),
        ({"repeats": 0}, "repeats"),
    ],
)
def test_cost_objective_refuses_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        get_objective("cost", **options)


def noisy(config: dict) -> float:
    # Depends on torch's global RNG: cost recording must not shift it.
    return float(torch.rand(()).item()) + len(config)


def test_every_trial_stores_costs_and_the_objective_rng_is_untouched(storage):
    space = spaces.get("resnet_blocks", base_width=4)
    runs = {}
    for metrics in (["params", "flops", "latency"], []):
        torch.manual_seed(0)
        study = nas_hpo.run(
            {"study": {"cost": metrics}},
            space=space,
            objective=noisy,
            strategy="random",
            n_trials=3,
            storage=storage,
            study_name=f"costs-{len(metrics)}",
        )
        runs[len(metrics)] = study
    with_costs, without = runs[3].trials, runs[0].trials
    assert [t.value for t in with_costs] == [t.value for t in without]
    for t in with_costs:
        model = space.build(t.params, input_shape=(1, 8, 8), num_classes=10)
        assert t.user_attrs["params"] == cost.count_params(model)
        assert t.user_attrs["flops"] == cost.count_flops(model, (1, 8, 8))
        assert t.user_attrs["latency_ms"] > 0 and t.user_attrs["latency_device"] == "cpu"
        assert t.user_attrs["cost_input_shape"] == [1, 8, 8]
    assert all("params" not in t.user_attrs for t in without)


def pruned_after_report(config: dict, ctx) -> float:
    raise optuna.TrialPruned("stop")


def test_pruned_and_failed_trials_carry_costs_and_a_bare_space_gets_none(storage):
    space = spaces.get("resnet_blocks", base_width=4)
    study = nas_hpo.run(
        space=space, objective=pruned_after_report, strategy="random", n_trials=2,
        storage=storage, study_name="pruned",
    )
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    assert all(t.user_attrs["params"] > 0 for t in study.trials)
    bare = nas_hpo.SearchSpace([nas_hpo.Integer("x", 0, 3)])
    study = nas_hpo.run(space=bare, objective=lambda c: c["x"], strategy="random", n_trials=2,
                        storage=storage, study_name="bare")
    assert all("params" not in t.user_attrs and "cost_error" not in t.user_attrs
               for t in study.trials)


def test_study_file_cost_key_is_checked(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[study]\ncost = ["params", "watts"]\n[space]\nname = "resnet_blocks"\n'
                    '[objective]\nname = "cost"\n')
    with pytest.raises(SpecError, match=r"s.toml: \[study\] cost: unknown cost metric.*watts"):
        nas_hpo.run(path)
