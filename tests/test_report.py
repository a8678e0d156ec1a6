"""``nas-hpo report`` (tables and plots) and ``nas-hpo dashboard`` in a real headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pandas as pd
import pytest

import nas_hpo
from nas_hpo import report
from nas_hpo.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).parent / "nas-hpo")
# Screenshots land here (CI keeps the folder as an artifact); NAS_HPO_TEST_ARTIFACTS moves it.
ARTIFACTS = Path(os.environ.get("NAS_HPO_TEST_ARTIFACTS", ROOT / "test-artifacts"))


def _two_objective(config: dict) -> tuple[float, float]:
    kernels = sum(v for k, v in config.items() if k.endswith("_kernel"))
    widths = sum(v for k, v in config.items() if k.endswith("_width"))
    return float(kernels), float(widths)


def test_report_writes_tables_and_plots_single_objective(tmp_path, storage, capsys):
    nas_hpo.run(space="resnet_blocks", objective="tests.toy_objectives:kernel_sum",
                strategy="random", n_trials=10, storage=storage, study_name="rep")
    out = tmp_path / "out"
    assert main(["report", "rep", "--storage", storage, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "study 'rep': 10 trials" in printed and "history.png" in printed
    csv = pd.read_csv(out / "trials.csv")
    parquet = pd.read_parquet(out / "trials.parquet")
    assert len(csv) == len(parquet) == 10
    assert {"number", "value", "params_b1_kernel", "user_attrs_arch",
            "user_attrs_flops"} <= set(csv.columns)
    assert list(csv["value"]) == list(parquet["value"])
    best = pd.read_csv(out / "best.csv")
    assert list(best["value"]) == sorted(csv["value"], reverse=True)
    assert {"flops", "params", "arch"} <= set(best.columns)
    for name in ("history.png", "pareto.png", "importances.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_report_of_a_multi_objective_study_draws_the_pareto_front(tmp_path, storage):
    study = nas_hpo.run(space="resnet_blocks", objective=_two_objective, strategy="nsga2",
                        directions=["maximize", "minimize"], n_trials=12, storage=storage,
                        study_name="mo")
    written = report.write(study, tmp_path, formats=("csv",))
    assert Path(written["pareto.png"]).stat().st_size > 1000
    best = pd.read_csv(tmp_path / "best.csv")
    assert len(best) == len(study.best_trials)
    assert {"value_0", "value_1"} <= set(best.columns)


def test_pareto_points_by_hand():
    pts = [(1.0, 0.5), (2.0, 0.7), (3.0, 0.6), (2.0, 0.4), (4.0, 0.9)]
    # minimize cost (x), maximize accuracy (y)
    assert report.pareto_points(pts, (False, True)) == [0, 1, 4]


def test_report_names_what_is_wrong(tmp_path, storage, capsys):
    nas_hpo.run(space="resnet_blocks", objective="tests.toy_objectives:kernel_sum",
                n_trials=1, storage=storage, study_name="only")
    assert main(["report", "nope", "--storage", storage]) == 2
    assert "no study named 'nope'; it holds: only" in capsys.readouterr().err
    # A mistyped storage file is named, and not created empty by looking for it.
    for command in ("report", "dashboard"):
        for url, path in ((f"sqlite:///{tmp_path}/sub/typo.db", tmp_path / "sub"),
                          (f"journal:{tmp_path}/typo.log", tmp_path / "typo.log")):
            assert main([command, "--storage", url]) == 2
            assert f"no such file '{tmp_path}" in capsys.readouterr().err
            assert not path.exists()
    assert main(["correlate", "only", "--estimators", "params", "--storage",
                 f"sqlite:///{tmp_path}/typo.db"]) == 2
    assert "typo.db' (nothing was created)" in capsys.readouterr().err
    assert not (tmp_path / "typo.db").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chromium(args: list[str], tmp_path: Path) -> str:
    exe = shutil.which("chromium")
    assert exe, "Debian's chromium is installed by `make test` (apt-get install chromium)"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chrome-profile'}", "--window-size=1400,900",
             "--virtual-time-budget=20000"]
    done = subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_dashboard_serves_the_study_in_headless_chromium(tmp_path, storage):
    study = nas_hpo.run(space="resnet_blocks", objective="tests.toy_objectives:kernel_sum",
                        strategy="random", n_trials=3, storage=storage, study_name="dash-nas")
    port = _free_port()
    server = subprocess.Popen([EXE, "dashboard", "--storage", storage, "--port", str(port)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/studies", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.5)
        study_id = study._study_id
        dom = _chromium(["--dump-dom", f"{base}/dashboard"], tmp_path)
        assert "dash-nas" in dom
        dom = _chromium(["--dump-dom", f"{base}/dashboard/studies/{study_id}/trials"], tmp_path)
        assert all(f"Trial {t.number}" in dom for t in study.trials)  # the trial list
        first = study.trials[0]  # shown in detail: its architecture key, costs and params
        assert first.user_attrs["arch"] in dom and f"{first.user_attrs['flops']}" in dom
        assert "b1_kernel" in dom
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "dashboard-trials.png"
        _chromium([f"--screenshot={shot}", f"{base}/dashboard/studies/{study_id}/trials"],
                  tmp_path)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(autouse=True)
def _quiet():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
