"""Every study file of ``tests/bad_studies/`` is refused before its first trial with the message
its first line states (``# expect: ...``), exit status 2, no traceback and no password: adding a
case is adding a file. Optional lines: ``# setup: file NAME`` / ``dir NAME`` / ``text NAME
CONTENT`` (made in the test's folder first), ``# args: ...`` (more command-line arguments).
``{tmp}`` stands for the test's folder."""

from __future__ import annotations

import shlex
from pathlib import Path

import optuna
import pytest

from nas_hpo.cli import main

CASES = sorted((Path(__file__).resolve().parents[1] / "bad_studies").glob("*.toml"))


def _header(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        found.setdefault(key, []).append(value)
    return found


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_a_bad_study_file_is_a_clear_error_before_the_first_trial(case, tmp_path, capsys,
                                                                  monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # tests.toy_objectives imports
    text = case.read_text().replace("{tmp}", str(tmp_path))
    header = _header(text)
    assert header.get("expect"), f"{case.name} states no expected message"
    for setup in header.get("setup", []):
        kind, name, *content = setup.split(" ", 2)
        target = tmp_path / name
        if kind == "file":
            target.write_text("a regular file\n")
        elif kind == "dir":
            target.mkdir()
        else:
            target.write_text((content[0] if content else "") + "\n")
    study = tmp_path / case.name
    study.write_text(text)
    args = ["run", str(study), "-q"]
    for extra in header.get("args", []):
        args += shlex.split(extra)
    if "storage =" not in text:
        args += ["--storage", f"sqlite:///{tmp_path / 'study.db'}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    expected = header["expect"][0]
    assert expected in err, err
    assert err.startswith("nas-hpo: error: ") and "Traceback" not in err
    assert "s3cret" not in err
    # Refused before the first trial: no trial was recorded.
    for db in tmp_path.glob("*.db"):
        summaries = optuna.get_all_study_summaries(f"sqlite:///{db}")
        assert all(s.n_trials == 0 for s in summaries), case.name


def test_there_are_cases_for_every_section():
    text = "".join(c.read_text() for c in CASES)
    for section in ("[study]", "[space]", "[objective]", "[strategy]", "[budget]", "[backend]"):
        assert f"# expect: {section}" in text or f"expect: {section[:-1]}" in text
    assert len(CASES) >= 50
