"""optuna-dashboard reads a nas-hpo study: its own WSGI app, queried in-process (no server)."""

from __future__ import annotations

import json
from wsgiref.util import setup_testing_defaults

import optuna_dashboard

import nas_hpo


def _get(app, path: str) -> dict:
    env: dict = {}
    setup_testing_defaults(env)
    env.update(PATH_INFO=path, REQUEST_METHOD="GET")
    status: list[str] = []
    body = b"".join(app(env, lambda s, h, exc_info=None: status.append(s)))
    assert status[0].startswith("200"), (status, body[:500])
    return json.loads(body)


def test_dashboard_shows_trials_with_architecture_and_curves(storage):
    nas_hpo.run({"space": {"name": "resnet_blocks", "base_width": 4},
                 "objective": {"name": "train", "epochs": 3}},
                strategy="random", n_trials=2, storage=storage, study_name="dash")
    app = optuna_dashboard.wsgi(storage)
    summaries = _get(app, "/api/studies")["study_summaries"]
    (summary,) = [s for s in summaries if s["study_name"] == "dash"]
    attrs = {a["key"]: a["value"] for a in summary["user_attrs"]}
    assert attrs["space"] == "resnet_blocks" and attrs["objective"] == "train"
    detail = _get(app, f"/api/studies/{summary['study_id']}")
    assert len(detail["trials"]) == 2
    trial = detail["trials"][0]
    user = {a["key"] for a in trial["user_attrs"]}
    assert {"arch", "seed", "params", "test_accuracy", "learning_curve"} <= user
    assert len(trial["intermediate_values"]) == 3  # one per epoch
    assert {p["name"] for p in trial["params"]} == set(
        nas_hpo.spaces.get("resnet_blocks").default())
