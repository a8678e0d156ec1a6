from __future__ import annotations

import math

import optuna
import pytest

import nas_hpo
import nas_hpo.study._lifecycle
from nas_hpo import Categorical, GreaterThan, Integer, SearchSpace, SpecError, spaces
from nas_hpo.study import counted, trial_seed
from nas_hpo.study._internals import count_query


def depth_space() -> SearchSpace:
    params = [Integer("depth", 1, 3)] + [
        Categorical(f"op_{k}", ["conv", "pool", "skip"]) for k in range(1, 4)
    ]
    return SearchSpace(params, {f"op_{k}": GreaterThan("depth", k - 1) for k in (2, 3)})


def score(config: dict) -> float:
    return config["depth"] + sum(v == "conv" for v in config.values()) / 10


def test_callable_objective_on_custom_space_records_every_trial(storage):
    space = depth_space()
    study = nas_hpo.run(space=space, objective=score, strategy="random", n_trials=8,
                        storage=storage, study_name="s", seed=3)
    trials = study.get_trials()
    assert len(trials) == 8
    for t in trials:
        assert t.state == optuna.trial.TrialState.COMPLETE
        space.validate(t.params)  # the params are exactly a valid config
        assert t.value == pytest.approx(score(t.params))
        assert t.user_attrs["arch"] == space.arch_key(t.params)
        assert isinstance(t.user_attrs["seed"], int)
    assert len({t.user_attrs["seed"] for t in trials}) == 8


def test_study_resumes_to_its_total_and_refuses_another_space(storage):
    space = depth_space()
    nas_hpo.run(space=space, objective=score, strategy="tpe", n_trials=3, storage=storage,
                study_name="resume")
    study = nas_hpo.run(space=space, objective=score, strategy="tpe", n_trials=5,
                        storage=storage, study_name="resume")
    assert len(study.trials) == 5
    again = nas_hpo.run(space=space, objective=score, n_trials=5, storage=storage,
                        study_name="resume")
    assert len(again.trials) == 5  # already complete: nothing more runs
    with pytest.raises(SpecError, match="resnet_blocks"):
        nas_hpo.run(space="resnet_blocks", objective="tests.toy_objectives:kernel_sum",
                    n_trials=6, storage=storage, study_name="resume")


def test_nan_score_fails_that_trial_with_reason_and_the_study_goes_on(storage):
    calls = []

    def sometimes_nan(config: dict) -> float:
        calls.append(config)
        return math.nan if len(calls) == 2 else 1.0

    study = nas_hpo.run(space=depth_space(), objective=sometimes_nan, strategy="random",
                        n_trials=4, storage=storage, study_name="nan")
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 1
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3
    failed = next(t for t in study.trials if t.state == optuna.trial.TrialState.FAIL)
    assert "non-finite" in failed.user_attrs["fail_reason"]


def test_multi_objective_callable(storage):
    study = nas_hpo.run(space=depth_space(), objective=lambda c: (score(c), c["depth"]),
                        directions=["maximize", "minimize"], strategy="random", n_trials=6,
                        storage=storage, study_name="mo")
    assert len(study.directions) == 2
    assert all(len(t.values) == 2 for t in study.trials)
    assert study.best_trials


def test_wrong_number_of_values_fails_the_trial(storage):
    study = nas_hpo.run(space=depth_space(), objective=lambda c: (1.0, 2.0), n_trials=2,
                        strategy="random", storage=storage, study_name="nvals")
    assert all(t.state == optuna.trial.TrialState.FAIL for t in study.trials)
    assert "2 value(s)" in study.trials[0].user_attrs["fail_reason"]


def test_module_function_objective_on_registered_space(storage):
    study = nas_hpo.run(
        {"space": {"name": "resnet_blocks"},
         "objective": {"name": "tests.toy_objectives:kernel_sum"},
         "strategy": {"name": "tpe", "n_startup_trials": 4},
         "budget": {"n_trials": 12},
         "study": {"storage": storage, "name": "ks", "seed": 1}},
    )
    space = spaces.get("resnet_blocks")
    assert len(study.trials) == 12
    best = study.best_trial
    assert best.value == sum(v for k, v in best.params.items() if k.endswith("_kernel"))
    assert best.user_attrs["arch"] == space.arch_key(best.params)


@pytest.mark.parametrize("where", ["memory", "sqlite"])
def test_forbidden_draws_are_pruned_never_evaluated_nor_counted(storage, where):
    """A forbidden draw is recorded (PRUNED, with its clause) and drawn again: n_trials counts
    evaluations, on a resumed study too, as on the Ray backend."""
    from nas_hpo import ForbiddenEquals
    from nas_hpo.report import summary

    space = SearchSpace([Categorical("a", ["x", "y", "z"]), Categorical("b", [0, 1])],
                        forbidden=[ForbiddenEquals("a", "z")])
    seen = []
    where = storage if where == "sqlite" else ":memory:"

    def run(n: int) -> optuna.Study:
        # Every draw evaluated (reevaluate): ``seen`` counts evaluations of 4 architectures.
        return nas_hpo.run({"strategy": {"name": "random", "reevaluate": True}},
                           space=space, objective=lambda c: seen.append(c) or 1.0,
                           n_trials=n, storage=where, study_name="forb")

    study = run(30)
    forbidden = [t for t in study.trials if "forbidden" in t.user_attrs]
    assert forbidden, "a third of random draws should hit the clause"
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in forbidden)
    assert all(c["a"] != "z" for c in seen)
    assert len(seen) == 30 and len(study.trials) == 30 + len(forbidden)
    assert f"; {len(forbidden)} of the pruned were forbidden draws" in summary(study)
    assert counted(study) == 30
    if where == ":memory:":
        return
    # The SQL count (not its fallback) leaves the forbidden draws out.
    backend = study._storage._backend
    with backend.engine.connect() as connection:
        query = count_query(study._study_id)
        assert connection.execute(query).scalar_one() == 30
    assert len(run(30).trials) == 30 + len(forbidden)  # finished: nothing runs again
    resumed = run(33)
    assert len(seen) == 33 and counted(resumed) == 33


def test_a_strategy_stuck_on_a_forbidden_point_is_an_error_that_keeps_the_record(
        storage, monkeypatch):
    from nas_hpo import ForbiddenEquals

    monkeypatch.setattr(nas_hpo.study._lifecycle, "MAX_FORBIDDEN_DRAWS", 7)
    space = SearchSpace([Categorical("a", ["x", "z"])], forbidden=[ForbiddenEquals("a", "z")])
    study = optuna.create_study(study_name="stuck", storage=storage, direction="maximize")
    for _ in range(7):
        study.enqueue_trial({"a": "z"})  # a warm start gone wrong: every draw is forbidden
    study.enqueue_trial({"a": "x"})
    with pytest.raises(RuntimeError, match=r"7 draws in a row hit a forbidden clause \(a == 'z'\)"):
        nas_hpo.run(space=space, objective=lambda c: 1.0, strategy="random", n_trials=3,
                    storage=storage, study_name="stuck")
    trials = optuna.load_study(study_name="stuck", storage=storage).trials
    assert [t.state.name for t in trials] == ["PRUNED"] * 7 + ["WAITING"]
    # The same study, run again, goes on from where it stopped.
    again = nas_hpo.run(space=space, objective=lambda c: 1.0, strategy="random", n_trials=3,
                        storage=storage, study_name="stuck")
    done = [t for t in again.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 3 and {t.params["a"] for t in done} == {"x"}


@pytest.mark.parametrize("where", ["before_trial", "tell"])
def test_ctrl_c_outside_the_trial_function_still_fails_the_trial(storage, monkeypatch, where):
    """A Ctrl-C can land after Optuna created the trial and before it calls the function (the
    sampler's before_trial), or after the function returned and before Optuna wrote the result
    (its tell, where Optuna 5.0 turns the interrupt into an UnboundLocalError of its own): the
    run stops with KeyboardInterrupt, and the trial is failed with the reason and the
    attributes it had, not left RUNNING."""
    import optuna.study._tell as optuna_tell

    calls = []

    def interrupt_second(original):
        def hook(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return original(*args, **kwargs)
        return hook

    if where == "before_trial":
        monkeypatch.setattr(optuna.samplers.RandomSampler, "before_trial",
                            interrupt_second(lambda *a, **k: None))
    else:
        monkeypatch.setattr(optuna_tell, "_tell_with_warning",
                            interrupt_second(optuna_tell._tell_with_warning))
    from nas_hpo import Result

    def noted(config: dict) -> Result:
        return Result((score(config),), {"note": config["depth"]})

    with pytest.raises(KeyboardInterrupt):
        nas_hpo.run(space=depth_space(), objective=noted, strategy="random", n_trials=4,
                    storage=storage, study_name="intr", seed=3)
    trials = optuna.load_study(study_name="intr", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL"]
    failed = trials[1]
    assert failed.user_attrs["fail_reason"] == "interrupted (Ctrl-C / SIGINT)"
    assert failed.user_attrs["seed"] == trial_seed(3, 1)
    if where == "tell":  # what the trial function recorded is kept
        assert failed.user_attrs["arch"] == depth_space().arch_key(failed.params)
        assert failed.user_attrs["note"] == failed.params["depth"]
    else:  # interrupted before its first parameter: no architecture to name
        assert not failed.params and "arch" not in failed.user_attrs
    monkeypatch.undo()
    again = nas_hpo.run(space=depth_space(), objective=score, strategy="random", n_trials=4,
                        storage=storage, study_name="intr", seed=3)
    assert [t.state.name for t in again.trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]


def test_train_objective_in_a_study_reports_every_epoch(storage):
    study = nas_hpo.run(
        {"space": {"name": "resnet_blocks", "base_width": 4},
         "objective": {"name": "train", "epochs": 2},
         "strategy": {"name": "random"},
         "budget": {"n_trials": 2},
         "study": {"storage": storage, "name": "train"}},
    )
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert sorted(t.intermediate_values) == [1, 2]
        assert t.value == t.intermediate_values[2] == t.user_attrs["learning_curve"][-1]
        assert 0.0 <= t.user_attrs["test_accuracy"] <= 1.0
        assert t.user_attrs["params"] > 0
        assert t.user_attrs["fidelity"] == {
            "epochs": 2, "data_fraction": 1.0, "resolution": 8, "width_mult": 1.0,
            "dataset": "digits",
        }


def test_pruner_stops_a_training_trial(storage):
    from nas_hpo import strategies
    from nas_hpo.study import FINISHED

    def _always(setting):  # a pruner that stops every trial at its first report
        return strategies.Strategy("x", optuna.samplers.RandomSampler(seed=setting.seed),
                                   optuna.pruners.ThresholdPruner(lower=2.0))

    with strategies.REGISTRY.temporarily("test_prune_always", _always):
        study = nas_hpo.run({"space": {"name": "resnet_blocks", "base_width": 4},
                             "objective": {"name": "train", "epochs": 3}},
                            strategy="test_prune_always", n_trials=1, storage=storage,
                            study_name="prune")
    t = study.trials[0]
    assert t.state == optuna.trial.TrialState.PRUNED
    assert list(t.intermediate_values) == [1]
    assert optuna.trial.TrialState.PRUNED in FINISHED  # pruned trials count toward the budget


def test_memory_storage_runs_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = nas_hpo.run(space=depth_space(), objective=score, strategy="random", n_trials=3,
                        storage=":memory:", study_name="m")
    assert len(study.trials) == 3 and isinstance(study._storage,
                                                 optuna.storages.InMemoryStorage)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["memory", "sqlite"])
def test_user_attributes_land_on_the_trial_in_memory_and_on_a_database(where, tmp_path):
    # In memory they are held during the trial and written in one step at its end; on a
    # database in the transaction that finishes it. Either way: all of them, the objective's
    # own over what its context set earlier, failed trials included.
    from nas_hpo import Result, TrialFailure

    space = depth_space()

    def objective(config: dict, ctx) -> Result:
        ctx.set_attr("note", "ctx")
        ctx.set_attr("early", 1)
        if config["depth"] == 1:
            raise TrialFailure("depth one is not allowed")
        return Result((score(config),), {"note": "result", "layers": config["depth"]})

    storage = ":memory:" if where == "memory" else f"sqlite:///{tmp_path / 'a.db'}"
    study = nas_hpo.run(space=space, objective=objective, strategy="random", n_trials=12,
                        storage=storage, study_name="attrs", seed=5)
    trials = study.get_trials()
    assert {t.state for t in trials} == {optuna.trial.TrialState.COMPLETE,
                                         optuna.trial.TrialState.FAIL}
    for t in trials:
        assert t.user_attrs["seed"] == trial_seed(5, t.number)
        assert t.user_attrs["arch"] == space.arch_key(t.params)
        assert t.user_attrs["early"] == 1
        if t.state == optuna.trial.TrialState.FAIL:
            assert t.user_attrs["fail_reason"] == "depth one is not allowed"
            assert t.user_attrs["note"] == "ctx"
        else:
            assert t.user_attrs["note"] == "result"
            assert t.user_attrs["layers"] == t.params["depth"]
