from __future__ import annotations

from collections import Counter

import numpy as np
import optuna
import pytest
import torch

import nas_hpo
from nas_hpo import Categorical, SearchSpace, objectives, spaces
from nas_hpo.objectives import Context, TrialFailure
from nas_hpo.objectives import supernet as sn


@pytest.fixture(scope="module")
def space():
    return spaces.get("nb201", C=4, N=1)


@pytest.fixture(autouse=True)
def fresh_process_memory():
    """Each test starts as a new process would: no supernet held in memory."""
    sn._TRAINED.clear()
    yield
    sn._TRAINED.clear()


@pytest.mark.parametrize("name", [n for n in spaces.names() if spaces.meta(n).get("supernet")])
def test_a_path_of_the_supernet_is_the_built_network_with_its_weights(name):
    space = spaces.get(name, **spaces.meta(name)["test_options"])
    supernet = space.build_supernet(input_shape=(3, 16, 16), num_classes=7)
    # Non-trivial BN statistics and weights, so that a wrong mapping would show.
    supernet.train()
    x = torch.randn(8, 3, 16, 16)
    with torch.no_grad():
        for seed in range(3):
            supernet(x, space.sample(seed=seed))
    supernet.eval()
    for seed in range(6):
        config = space.sample(seed=seed)
        net = supernet.subnet(config)
        built = space.build(config, input_shape=(3, 16, 16), num_classes=7)
        assert (sum(p.numel() for p in net.parameters())
                == sum(p.numel() for p in built.parameters()))
        net.eval()
        assert torch.allclose(supernet(x, config), net(x), atol=1e-5)


def test_fairnas_draws_every_choice_of_every_parameter_exactly_once(space):
    rng = np.random.default_rng(0)
    paths = sn.fair_paths(space, rng)
    assert len(paths) == 5
    for name, param in space.params.items():
        assert sorted(p[name] for p in paths) == sorted(param.choices)
    assert all(space.validate(p) is None for p in paths)
    # A parameter with fewer choices repeats some, each choice at least once.
    mixed = SearchSpace([Categorical("a", [1, 2, 3, 4]), Categorical("b", ["x", "y"])])
    paths = sn.fair_paths(mixed, rng)
    assert sorted(p["a"] for p in paths) == [1, 2, 3, 4]
    assert set(Counter(p["b"] for p in paths)) == {"x", "y"}


@pytest.mark.parametrize("method", ["spos", "fairnas"])
def test_trained_once_then_every_architecture_scores_from_it(space, tmp_path, method):
    objective = objectives.get("supernet", method=method, epochs=3, cache_dir=str(tmp_path))
    configs = [space.sample(seed=s) for s in range(4)]
    first = objective(configs[0], space=space, ctx=Context())
    info = first.user_attrs["supernet"]
    assert info["trained_here"] and info["method"] == method and info["epochs"] == 3
    steps = 3 * 17  # 1,077 digits training images, batches of 64
    assert info["paths_trained"] == steps * (5 if method == "fairnas" else 1)
    assert len(first.user_attrs["supernet_loss_curve"]) == 3
    assert 0.0 <= first.values[0] <= 1.0 and 0.0 <= first.user_attrs["test_accuracy"] <= 1.0
    scores = [objective(c, space=space, ctx=Context()).values[0] for c in configs]
    assert scores[0] == first.values[0]  # recalibrated on the same batches: the same score
    again = objective(configs[0], space=space, ctx=Context())
    assert not again.user_attrs["supernet"]["trained_here"]
    # Another process (memory cleared) loads the file: the same scores, nothing trained.
    sn._TRAINED.clear()
    loaded = [objective(c, space=space, ctx=Context()) for c in configs]
    assert [r.values[0] for r in loaded] == scores
    assert not loaded[0].user_attrs["supernet"]["trained_here"]
    assert len(list(tmp_path.glob("*.pt"))) == 1
    # Another seed is another supernet (another file).
    other = objectives.get("supernet", method=method, epochs=3, seed=1, cache_dir=str(tmp_path))
    assert other.key(space) != objective.key(space)
    assert other(configs[0], space=space, ctx=Context()).user_attrs["supernet"]["trained_here"]


def test_without_recalibration_a_path_uses_the_statistics_training_left(space, tmp_path):
    """bn_batches = 0 scores with the BN statistics of the supernet's training, also after
    other paths were recalibrated in the same process (the same supernet, one file)."""
    config, other = space.sample(seed=1), space.sample(seed=2)
    plain = objectives.get("supernet", epochs=2, bn_batches=0, cache_dir=str(tmp_path))
    fresh = plain(config, space=space, ctx=Context())
    assert fresh.user_attrs["supernet"]["bn_batches"] == 0
    recalibrating = objectives.get("supernet", epochs=2, cache_dir=str(tmp_path))
    assert recalibrating.key(space) == plain.key(space)
    recalibrated = recalibrating(config, space=space, ctx=Context())
    recalibrating(other, space=space, ctx=Context())
    assert recalibrated.user_attrs["supernet"]["bn_batches"] == 4
    assert recalibrated.values != fresh.values
    assert plain(config, space=space, ctx=Context()).values == fresh.values
    sn._TRAINED.clear()
    assert plain(config, space=space, ctx=Context()).values == fresh.values


def test_a_damaged_cache_file_is_trained_again(space, tmp_path):
    objective = objectives.get("supernet", epochs=1, cache_dir=str(tmp_path))
    (tmp_path / f"{objective.key(space)}.pt").write_bytes(b"not a checkpoint")
    result = objective(space.default(), space=space, ctx=Context())
    info = result.user_attrs["supernet"]
    assert info["trained_here"] and "replaced_damaged_file" in info
    sn._TRAINED.clear()
    assert not objective(space.default(), space=space,
                         ctx=Context()).user_attrs["supernet"]["trained_here"]


def test_what_cannot_have_a_supernet_is_refused_before_the_study_and_fails_a_direct_call(
        tmp_path):
    objective = objectives.get("supernet", epochs=1, cache_dir=str(tmp_path))
    chain = spaces.get("chain")
    with pytest.raises(TrialFailure, match="space chain has no supernet"):
        objective(chain.default(), space=chain, ctx=Context())
    with pytest.raises(nas_hpo.SpecError, match=r"\[objective\]: space chain has no "
                       "supernet; the supernet objective needs one"):
        nas_hpo.run(space="chain", objective="supernet", n_trials=1, storage=":memory:")
    conditional = SearchSpace(
        [Categorical("depth", [1, 2]), Categorical("op", ["a", "b"])],
        {"op": nas_hpo.Equals("depth", 2)},
        supernet=lambda **kw: torch.nn.Identity())
    fair = objectives.get("supernet", method="fairnas", epochs=1, cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="fairnas needs a space of unconditional categorical"):
        fair.check_space(conditional)
    with pytest.raises(nas_hpo.SpecError, match="space mobilenet is not \\(use spos\\)"):
        nas_hpo.run({"objective": {"name": "supernet", "method": "fairnas"}},
                    space="mobilenet", n_trials=1, storage=":memory:")


def test_spos_on_a_conditional_space_trains_every_depth(tmp_path):
    """mobilenet's depths are conditional: SPOS draws whole configurations (depths included),
    so every position and choice gets trained, and paths of any depth score."""
    space = spaces.get("mobilenet", max_depth=2, width_mult=0.25)
    # 6 epochs: 102 paths, so each of the 30 (position, choice) pairs of the optional second
    # blocks (5 stages × 6 choices, each drawn with probability 1/12 a step) is trained
    # (seeded: the same draws on every run).
    objective = objectives.get("supernet", epochs=6, cache_dir=str(tmp_path))
    shallow = {**space.default(), **{f"stage{s}_depth": 1 for s in range(1, 6)}}
    shallow = {k: v for k, v in shallow.items() if "block2" not in k}
    deep = {**space.default(), **{f"stage{s}_depth": 2 for s in range(1, 6)}}
    deep.update({f"stage{s}_block2_{p}": v for s in range(1, 6)
                 for p, v in (("kernel", 7), ("expand", 3))})
    scores = [objective(c, space=space, ctx=Context()).values[0] for c in (shallow, deep)]
    assert all(0.0 <= v <= 1.0 for v in scores)
    trained = dict(sn._TRAINED[objective.key(space)].model.named_parameters())
    initial = dict(objective._build(space)[0].named_parameters())  # the same seeded init
    untouched = [n for n, p in initial.items() if torch.equal(p, trained[n])]
    assert not untouched, untouched[:5]


def test_a_diverging_supernet_fails_every_trial_with_the_reason_and_trains_once(
        space, tmp_path, monkeypatch):
    objective = objectives.get("supernet", epochs=2, lr=1e30, momentum=0.0,
                               cache_dir=str(tmp_path))
    trainings = []
    train = sn.Supernet._train
    monkeypatch.setattr(sn.Supernet, "_train",
                        lambda self, *a: trainings.append(1) or train(self, *a))
    for _ in range(2):
        with pytest.raises(TrialFailure, match="supernet training failed: training loss became"):
            objective(space.default(), space=space, ctx=Context())
    assert len(trainings) == 1 and not list(tmp_path.glob("*.pt"))


@pytest.mark.parametrize("options, match", [
    ({"method": "darts"}, "method: unknown 'darts'; known: fairnas, spos"),
    ({"epochs": 0}, "epochs must be >= 1"),
    ({"bn_batches": -1}, "bn_batches must be >= 0"),
    ({"dataset": "imagenet"}, "dataset: unknown 'imagenet'"),
])
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        objectives.get("supernet", **options)


def test_two_workers_share_one_supernet_trained_once(tmp_path):
    """Two worker processes of a study: one trains the supernet (the other waits on the file
    lock, then loads it), every trial is scored from it."""
    study = nas_hpo.run(
        {"space": {"name": "nb201", "C": 4, "N": 1},
         "objective": {"name": "supernet", "epochs": 2, "cache_dir": str(tmp_path / "cache")}},
        strategy="random", n_trials=6, workers=2, storage=f"sqlite:///{tmp_path / 's.db'}",
        study_name="sn", seed=0)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 6
    assert sum(t.user_attrs["supernet"]["trained_here"] for t in done) == 1
    assert len({t.user_attrs["supernet"]["file"] for t in done}) == 1
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1
