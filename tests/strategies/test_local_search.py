"""Local search's walk (``local_search``): it resumes where it was, starts from the best
initial trial, moves by first or best improvement, steps onto neighbours known by their network
(``skip_equivalent``) and tries the unseen neighbours in the order it is told (``order``)."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import optuna
import pytest

import nas_hpo
from nas_hpo.strategies._local import _score
from tests.toy_objectives import letters_score, letters_space


@pytest.mark.parametrize("improvement", ["best", "first"])
def test_a_resumed_local_search_continues_its_walk(storage, improvement):
    """The walk lives in the study: a resumed run goes on from the last center (a resumed run's
    random choices are its own, see ``nas_hpo.study._seeds``, but the walk does not restart)."""
    space = letters_space()
    spec = {"strategy": {"name": "local_search", "n_initial": 3, "improvement": improvement}}
    for stop in (9, 17):
        name = f"resumed-{stop}"
        nas_hpo.run(spec, space=space, objective=letters_score, n_trials=stop, seed=1,
                    storage=storage, study_name=name)
        study = nas_hpo.run(spec, space=space, objective=letters_score, n_trials=stop + 1, seed=1,
                            storage=storage, study_name=name)
        before, after = study.trials[stop - 1], study.trials[stop]
        center = before.system_attrs["nas_hpo:ls:center"]
        assert center is not None and after.system_attrs["nas_hpo:ls:role"] == "neighbor"
        new_center = study.trials[after.system_attrs["nas_hpo:ls:center"]]
        # The same center, or the better neighbour of it the walk moved to.
        assert new_center.number == center or (
            new_center.value > study.trials[center].value
            and space.arch_key(new_center.params)
            in {space.arch_key(n) for n in space.neighbors(study.trials[center].params)})
        keys = [space.arch_key(t.params) for t in study.trials]
        assert len(set(keys)) == len(keys)


def test_local_search_starts_from_the_best_initial_trial_and_moves_as_it_is_told(storage):
    space = letters_space()
    for improvement in ("best", "first"):
        study = nas_hpo.run({"strategy": {"name": "local_search", "n_initial": 5,
                                          "improvement": improvement, "restart": "best"}},
                            space=space, objective=letters_score, n_trials=45, seed=2,
                            storage=storage, study_name=improvement)
        trials = study.trials
        centers = [t.system_attrs.get("nas_hpo:ls:center") for t in trials]
        assert centers[:5] == [None] * 5
        best_initial = max(trials[:5], key=lambda t: t.value).number
        assert centers[5] == best_initial
        values = {t.number: t.value for t in trials}
        for t, center in zip(trials[5:], centers[5:], strict=True):
            neighbours = {space.arch_key(n) for n in space.neighbors(trials[center].params)}
            assert space.arch_key(t.params) in neighbours
        walk = [c for c in centers[5:] if c is not None]
        # Up to the maximum (after it, restarts from the best open trial follow).
        walk = walk[: next((k for k, c in enumerate(walk) if values[c] == 30), len(walk)) + 1]
        moves = [(a, b) for a, b in itertools.pairwise(walk)
                 if a != b and space.arch_key(trials[b].params)
                 in {space.arch_key(n) for n in space.neighbors(trials[a].params)}]
        assert moves, "the walk never moved"
        early = 0
        for a, b in moves:
            assert values[b] > values[a]  # a move goes to a better neighbour
            first_from_b = min(t.number for t, c in zip(trials, centers, strict=True) if c == b)
            seen = {space.arch_key(t.params) for t in trials[:first_from_b]}
            all_seen = all(space.arch_key(n) in seen for n in space.neighbors(trials[a].params))
            if improvement == "best":
                # Only once every neighbour was evaluated, and to the best of them.
                assert all_seen
                assert values[b] == max(t.value for t in trials[:first_from_b]
                                        if space.arch_key(t.params) in {
                                            space.arch_key(n)
                                            for n in space.neighbors(trials[a].params)})
            early += not all_seen
        if improvement == "first":
            assert early > 0  # it moved before it had seen every neighbour
        # Both reach the maximum (x = d everywhere: 30).
        assert study.best_value == 30


def _center(study: optuna.Study, t: optuna.trial.FrozenTrial) -> tuple[dict, float]:
    """A walking trial's center config (``nas_hpo:ls:at`` where it is not the cell of the trial
    holding its network) and that trial's value."""
    holder = study.trials[t.system_attrs["nas_hpo:ls:center"]]
    return t.system_attrs.get("nas_hpo:ls:at") or holder.params, holder.value


@pytest.mark.parametrize(("order", "seed", "stop"),
                         [("mean", 1, None), ("random", 4, None), ("random", 4, 30)])
def test_with_skip_equivalent_the_walk_steps_onto_neighbours_known_by_their_network(
        storage, order, seed, stop):
    """A neighbour building a network a trial built is not evaluated; the walk knows its value
    from that trial and, when it is better, steps onto the neighbour itself (the walk goes on
    around it), not onto that trial's own cell, which lies elsewhere (the walk's
    ``nas_hpo:ls:at``); a resumed study continues from it."""
    from tests.strategies.test_equivalent import NB201, score

    spec = {"strategy": {"name": "local_search", "n_initial": 5, "skip_equivalent": True,
                         "order": order}}

    def run(n_trials: int) -> optuna.Study:
        return nas_hpo.run(spec, space=NB201, objective=score, n_trials=n_trials, seed=seed,
                           storage=storage, study_name="eq")

    if stop is not None:
        run(stop)
    study = run(60)
    trials = study.trials
    stepped_on = 0
    for t in trials:
        if t.system_attrs["nas_hpo:ls:role"] != "neighbor":
            continue
        center, value = _center(study, t)
        holder = trials[t.system_attrs["nas_hpo:ls:center"]]
        assert NB201.network_key(center) == NB201.network_key(holder.params)
        assert value == score(center)  # (the score is the network's)
        assert NB201.arch_key(t.params) in {NB201.arch_key(n) for n in NB201.neighbors(center)}
        stepped_on += NB201.arch_key(center) != NB201.arch_key(holder.params)
    assert stepped_on > 0
    if stop is not None:  # the resumed run's first trial walks on from the last center
        before, after = trials[stop - 1], trials[stop]
        assert after.system_attrs["nas_hpo:ls:role"] == "neighbor"
        assert _center(study, after)[1] >= _center(study, before)[1]
    keys = [NB201.network_key(t.params) for t in trials]
    assert len(set(keys)) == len(keys)


def test_ordered_by_mean_the_walk_tries_the_neighbour_with_the_best_values_first(storage):
    """``order = "mean"``: of the center's unseen neighbours, the one whose parameter values
    the finished trials score best (each value's mean over the trials that have it, with one
    pseudo-trial at the overall mean) is evaluated first; ``random`` draws among them."""
    space = letters_space()
    study = nas_hpo.run({"strategy": {"name": "local_search", "n_initial": 5, "order": "mean"}},
                        space=space, objective=letters_score, n_trials=40, seed=3,
                        storage=storage, study_name="mean")
    trials, checked = study.trials, 0
    for t in trials:
        if t.system_attrs["nas_hpo:ls:role"] != "neighbor":
            continue
        before = trials[: t.number]
        overall = float(np.mean([u.value for u in before]))

        def score(config: dict, before=before, overall=overall) -> float:
            total = 0.0
            for name, v in config.items():
                having = [u.value for u in before if u.params[name] == v]
                total += (sum(having) + overall) / (len(having) + 1)
            return total

        seen = {space.arch_key(u.params) for u in before}
        center, _ = _center(study, t)
        todo = [n for n in space.neighbors(center) if space.arch_key(n) not in seen]
        assert score(t.params) == pytest.approx(max(score(n) for n in todo))
        checked += len(todo) > 1
    assert checked > 10
    assert study.best_value == 30


def test_ordered_additively_the_walk_tries_the_neighbour_the_least_squares_fit_rates_best(
        storage):
    """``order = "additive"`` (the default): of the center's unseen neighbours, the one with the
    best sum of per-value effects, fitted to the finished trials' centered values by least
    squares with a ridge penalty of 1 (here solved as the augmented system [X; I] b = [y; 0]),
    is evaluated first."""
    space = letters_space()
    study = nas_hpo.run({"strategy": {"name": "local_search", "n_initial": 5}},
                        space=space, objective=letters_score, n_trials=40, seed=3,
                        storage=storage, study_name="additive")
    trials, checked = study.trials, 0
    for t in trials:
        if t.system_attrs["nas_hpo:ls:role"] != "neighbor":
            continue
        before = trials[: t.number]
        items = sorted({item for u in before for item in u.params.items()})
        x = np.array([[float(item in u.params.items()) for item in items] for u in before])
        y = np.array([u.value for u in before])
        effect = np.linalg.lstsq(np.vstack([x, np.eye(len(items))]),
                                 np.concatenate([y - y.mean(), np.zeros(len(items))]),
                                 rcond=None)[0]

        def score(config: dict, items=items, effect=effect) -> float:
            return sum(e for item, e in zip(items, effect, strict=True) if item in config.items())

        seen = {space.arch_key(u.params) for u in before}
        center, _ = _center(study, t)
        todo = [n for n in space.neighbors(center) if space.arch_key(n) not in seen]
        assert score(t.params) == pytest.approx(max(score(n) for n in todo))
        checked += len(todo) > 1
    assert checked > 10
    assert study.best_value == 30


def test_the_additive_fit_separates_values_the_walk_saw_together():
    """A walk's trials share values with its centers: here x1 = "b" was only seen beside the
    strong x0 = "b", so its plain mean credits it with x0's effect and ``mean`` ranks a cell
    with x1 = "b" first; the joint fit ranks the truly best unseen cell first."""
    def true(config: dict) -> float:
        return 3.0 * (config["x0"] == "b") + 1.0 * (config["x1"] == "b") + 0.5 * (
            config["x2"] == "b")

    def cell(code: str) -> dict:
        return dict(zip(("x0", "x1", "x2"), code, strict=True))

    trials = [SimpleNamespace(params=cell(c), value=true(cell(c)))
              for c in ("aaa", "aaa", "aab", "bba", "bab", "bbb")]
    unseen = [cell(c) for c in ("aba", "abb", "baa")]
    best = {o: max(unseen, key=_score(o, trials, lambda t: t.value))
            for o in ("mean", "additive")}
    assert best["additive"] == max(unseen, key=true) == cell("baa")
    assert best["mean"] == cell("abb")


def test_the_additive_fit_on_more_values_than_trials_is_the_ridge_solution():
    """Float values are each seen once: the fit then has more columns than trials and is solved
    on the trials' side; its per-value effects must still be the ridge solution (penalty 1) of
    the one-hot system, which is checked here as the augmented least squares [X; I] b = [y; 0]
    for configs seen and unseen, with a value no trial has counting as no effect."""
    rng = np.random.default_rng(0)
    trials = [SimpleNamespace(params={"op": str(rng.choice(["a", "b", "c"])),
                                      "lr": float(rng.uniform()), "wd": float(rng.uniform())},
                              value=float(rng.normal())) for _ in range(12)]
    items = sorted({item for t in trials for item in t.params.items()}, key=repr)
    assert len(items) > len(trials)  # 3 op values + 24 floats against 12 trials: the dual
    x = np.array([[float(item in t.params.items()) for item in items] for t in trials])
    y = np.array([t.value for t in trials])
    effect = dict(zip(items, np.linalg.lstsq(
        np.vstack([x, np.eye(len(items))]), np.concatenate([y - y.mean(), np.zeros(len(items))]),
        rcond=None)[0], strict=True))
    score = _score("additive", trials, lambda t: t.value)
    configs = [t.params for t in trials] + [
        {"op": "b", "lr": trials[0].params["lr"], "wd": 0.5},  # wd: a value no trial has
        {"op": "d", "lr": 0.25, "wd": trials[3].params["wd"]}]
    for config in configs:
        want = sum(effect.get(item, 0.0) for item in config.items())
        assert score(config) == pytest.approx(want, abs=1e-10)
    assert len({round(score(c), 9) for c in configs}) == len(configs)  # not all equal
