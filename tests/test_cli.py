from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nas_hpo.cli import main

STUDY = """
[study]
name = "cli"
storage = "sqlite:///{db}"
[space]
name = "resnet_blocks"
[objective]
name = "tests.toy_objectives:kernel_sum"
[strategy]
name = "random"
[budget]
n_trials = 3
"""


def test_spaces_lists_registered_spaces_with_exact_sizes(capsys):
    assert main(["spaces"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("resnet_blocks"))
    assert "43,046,721" in line and line.endswith(" yes")  # 9^8, and it has a supernet
    assert next(ln for ln in out.splitlines() if ln.startswith("chain")).endswith(" -")


def test_run_prints_best_architecture_table_and_dashboard_hint(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(STUDY.format(db=tmp_path / "cli.db"))
    assert main(["run", str(path), "--n-trials", "4", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "study 'cli': 4 trials (4 complete, 0 pruned, 0 failed)" in out
    assert "best trial #" in out and "arch: k" in out
    assert f"nas-hpo dashboard --storage sqlite:///{tmp_path / 'cli.db'}" in out


def test_run_with_flags_only(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'flags.db'}"
    code = main(["run", "--space", "resnet_blocks", "--objective",
                 "tests.toy_objectives:kernel_sum", "--strategy", "tpe", "--n-trials", "2",
                 "--storage", storage, "--study-name", "flags"])
    assert code == 0
    assert "study 'flags': 2 trials" in capsys.readouterr().out


def test_study_file_error_exits_2_naming_file_section_key(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(STUDY.format(db=tmp_path / "x.db").replace("n_trials = 3", "n_trials = 'x'"))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: [budget] n_trials: expected an integer" in err


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "nas-hpo"
    out = subprocess.run([str(exe), "spaces"], capture_output=True, text=True, check=True)
    assert "resnet_blocks" in out.stdout
