"""SMAC's acquisition maximizer proposing only new configurations (``smac``'s
``maximizer = "unseen"``): what it returns, and the proposals it changes on NB201-digits."""

from __future__ import annotations

import collections

import pytest

import nas_hpo
from nas_hpo.strategies import _smac
from nas_hpo.strategies._smac_maximizer import UnseenLocalAndSortedRandomSearch

TABLE = {"name": "tabular", "path": "nb201_digits", "metrics": ["val_accuracy"]}
FALLBACK = "Random Search (max retries, no candidates)"


@pytest.fixture
def origins(monkeypatch):
    """Trial number -> the origin SMAC gave the configuration it proposed for it."""
    seen: dict[int, str] = {}
    before = _smac.SmacSampler.before_trial

    def recording(self, study, trial):
        before(self, study, trial)
        entry = self._pending.get(trial._trial_id)
        if entry is not None:
            seen[trial.number] = entry[0].config.origin

    monkeypatch.setattr(_smac.SmacSampler, "before_trial", recording)
    return seen


def _run_with(strategy: dict, n_trials: int):
    return nas_hpo.run({"space": {"name": "nb201"}, "objective": TABLE, "strategy": strategy},
                       n_trials=n_trials, seed=0, storage=":memory:", cost=[])


def _run(maximizer: str, n_trials: int = 60):
    return _run_with({"name": "smac", "maximizer": maximizer}, n_trials)


def test_the_maximizer_ranks_new_candidates_only(origins):
    study = _run("unseen", n_trials=30)
    maximizer = study.sampler._smac._config_selector._acquisition_maximizer
    assert type(maximizer) is UnseenLocalAndSortedRandomSearch
    evaluated = study.sampler._smac.runhistory.get_configs()
    ranked = maximizer._maximize(evaluated, 200)
    values = [v for v, _ in ranked]
    configs = [c for _, c in ranked]
    assert values == sorted(values, reverse=True)
    assert not set(configs) & set(evaluated)
    assert len(set(configs)) == len(configs)
    # more than the ~10 local-search end points SMAC's own returns: the scored random ones too
    assert len(configs) > 50


def test_smac_s_own_runs_out_of_candidates_and_proposes_at_random_ours_does_not(origins):
    """SMAC 2.x's maximizer hands over only its local searches' end points, on NB201 mostly
    cells already evaluated; skipping them, its selector falls back to random cells. Ours
    proposes what the model ranks first, except for SMAC's interleaved random configurations."""
    shares = {}
    for maximizer in ("smac", "unseen"):
        origins.clear()
        _run(maximizer)
        counts = collections.Counter(o for n, o in origins.items() if n >= 10)  # after Sobol
        shares[maximizer] = sum(v for o, v in counts.items()
                                if o.startswith("Acquisition Function Maximizer")) / 50
        if maximizer == "smac":
            assert counts[FALLBACK] >= 5, counts
        else:
            assert counts[FALLBACK] == 0, counts
    assert shares["unseen"] >= shares["smac"] + 0.2, shares


def test_random_probability_sets_smacs_random_interleaving(origins):
    """``random_probability = 0``: after the Sobol design every proposal is the model's; by
    default (the HPO facade's 0.2) some of them are SMAC's interleaved random ones."""
    def after_sobol(probability):
        origins.clear()
        strategy = {"name": "smac"}
        if probability is not None:
            strategy["random_probability"] = probability
        study = _run_with(strategy, n_trials=40)
        design = study.sampler._smac._config_selector._random_design
        return design, collections.Counter(o for n, o in origins.items() if n >= 10)

    design, counts = after_sobol(0.0)
    assert design._probability == 0.0
    assert set(counts) == {"Acquisition Function Maximizer: Local Search"} | (
        set(counts) & {"Acquisition Function Maximizer: Random Search (sorted)"}), counts
    design, counts = after_sobol(None)
    assert design._probability == pytest.approx(0.2)
    assert sum(v for o, v in counts.items() if not o.startswith("Acquisition")) >= 2, counts


def test_random_probability_outside_0_1_is_refused():
    with pytest.raises(nas_hpo.SpecError, match="random_probability"):
        _run_with({"name": "smac", "random_probability": 1.5}, n_trials=1)
