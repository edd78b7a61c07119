"""scripts/regeneration_check.py on a throw-away repository whose "vqkit" writes a results
file: a file its recorded command makes again passes; an edited number, a dirty commit or a
failing command fails, naming the difference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .script_module import load_script

ROOT = Path(__file__).resolve().parents[1]

#: The fake package's command line: ``vqkit make VALUE`` writes results/x.json.
FAKE_MAIN = '''\
import json, os, subprocess, sys
value = float(sys.argv[2])
if value < 0:
    sys.exit("negative")
commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout
record = {"command": "vqkit make " + sys.argv[2], "git_commit": commit.strip(),
          "wall_seconds": 1.0, "results": {"value": value, "twice": [value, 2 * value],
                                           "train_seconds": 3.0}}
os.makedirs("results", exist_ok=True)
json.dump(record, open("results/x.json", "w"))
'''


def _script():
    return load_script(ROOT / "scripts" / "regeneration_check.py", "regeneration_check")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository with the fake vqkit, committed; the script's ROOT points at it."""
    repo = tmp_path / "repo"
    (repo / "src" / "vqkit").mkdir(parents=True)
    (repo / "src" / "vqkit" / "__init__.py").write_text("")  # a package, not a namespace
    (repo / "src" / "vqkit" / "__main__.py").write_text(FAKE_MAIN)
    _git(repo.parent, "init", "-q", str(repo))
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "fake")
    subprocess.run([sys.executable, "-m", "vqkit", "make", "1.5"], cwd=repo, check=True,
                   env={**os.environ, "PYTHONPATH": str(repo / "src")})
    # A later commit computes another value: the check must rerun the recorded commit.
    main = repo / "src" / "vqkit" / "__main__.py"
    main.write_text(FAKE_MAIN.replace("2 * value", "3 * value"))
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "later")
    script = _script()
    monkeypatch.setattr(script, "ROOT", repo)
    return repo, script


def _edit(path: Path, **changes) -> None:
    record = json.loads(path.read_text())
    for key, value in changes.items():
        if key in record:
            record[key] = value
        else:
            record["results"][key] = value
    path.write_text(json.dumps(record))


def test_a_file_its_command_makes_again_passes(repo, capsys, tmp_path):
    repo, script = repo
    path = repo / "results" / "x.json"
    _edit(path, train_seconds=99.0, wall_seconds=77.0)  # timings are not compared
    assert script.check(path, keep=tmp_path) is True
    assert "3 numbers compared, 0 differ" in capsys.readouterr().out


def test_an_edited_number_fails_and_is_named(repo, capsys, tmp_path):
    repo, script = repo
    path = repo / "results" / "x.json"
    _edit(path, twice=[1.5, 3.0000001])
    assert script.check(path, keep=tmp_path) is False
    assert "results.twice[1]: committed 3.0000001, now 3.0" in capsys.readouterr().out


def test_a_dirty_commit_or_a_failing_command_fails(repo, capsys, tmp_path):
    repo, script = repo
    path = repo / "results" / "x.json"
    record = json.loads(path.read_text())
    _edit(path, git_commit=record["git_commit"] + "-dirty")
    assert script.check(path, keep=tmp_path) is False
    assert "not reproducible" in capsys.readouterr().out
    _edit(path, git_commit=record["git_commit"], command="vqkit make -1")
    assert script.check(path, keep=tmp_path) is False
    assert "failed" in capsys.readouterr().out
