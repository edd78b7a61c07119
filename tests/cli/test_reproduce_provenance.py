"""`vqkit reproduce`: a dirty tree is refused in one line before any work unless
--allow-dirty; --list shows the measured minutes of the quick and the full run."""

from __future__ import annotations

import re
from pathlib import Path

from vqkit.cli.commands import reproduce
from vqkit.cli.main import main
from vqkit.experiments import registry
from vqkit.training import provenance
from vqkit.training.source_state import SourceState

DIRTY = SourceState(commit="a" * 40, dirty=True, diff_sha256="d" * 64, untracked_src=())


def _dirty(monkeypatch):
    read = classmethod(lambda cls, cwd=None: DIRTY)
    monkeypatch.setattr(reproduce.SourceState, "read", read)
    monkeypatch.setattr(provenance.SourceState, "read", read)


def test_a_dirty_tree_is_refused_in_one_line_before_any_work(monkeypatch, tmp_path, capsys):
    _dirty(monkeypatch)
    assert main(["reproduce", "sfvq-toy", "--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "dirty" in err and "--allow-dirty" in err
    assert not any(Path(tmp_path).iterdir())


def test_allow_dirty_runs_and_the_json_says_so(monkeypatch, tmp_path):
    import json

    _dirty(monkeypatch)
    assert main(["reproduce", "sfvq-toy", "--quick", "--allow-dirty",
                 "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "sfvq_toy.json").read_text())
    assert data["dirty"] is True and data["diff_sha256"] == "d" * 64
    assert data["git_commit"] == "a" * 40 + "-dirty"
    assert data["libraries"]["torch"] and "numpy" in data["libraries"]


def test_list_shows_the_quick_and_the_full_minutes(capsys):
    assert main(["reproduce", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    for line, (name, rep) in zip(lines, registry().items(), strict=True):
        assert line.startswith(name)
        assert f"full ~{rep.expected_minutes:g} min" in line
        quick = (r"quick not measured" if rep.quick_minutes is None
                 else rf"quick ~{re.escape(f'{rep.quick_minutes:g}')} min")
        assert re.search(quick, line), line
