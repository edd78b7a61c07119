"""Provenance is read when a run starts: the source tree's state (commit, dirty, the diff's
SHA-256, untracked sources), a dirty tree refused unless allowed, and the versions recorded."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vqkit.training import provenance
from vqkit.training.provenance import Run
from vqkit.training.source_state import DirtyTreeError, SourceState
from vqkit.training.versions import data_package_versions, library_versions, read_package_list

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed checkout: src/pkg/a.py, results/r.json, README."""
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_text("{}\n")
    (tmp_path / "README").write_text("hi\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    return tmp_path


@needs_git
def test_a_clean_checkout_is_clean_and_names_its_commit(repo):
    state = SourceState.read(repo / "src")
    assert state.commit == _git(repo, "rev-parse", "HEAD") and len(state.commit) == 40
    assert state.dirty is False and state.diff_sha256 is None and state.untracked_src == ()
    assert state.label == state.commit
    assert state.checked(allow_dirty=False) is state


@needs_git
def test_a_tracked_change_is_dirty_with_the_sha256_of_the_diff(repo):
    (repo / "README").write_text("changed\n")
    state = SourceState.read(repo)
    diff = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=repo, capture_output=True,
                          check=True).stdout
    assert state.dirty is True and state.diff_sha256 == hashlib.sha256(diff).hexdigest()
    assert state.label == state.commit + "-dirty"
    with pytest.raises(DirtyTreeError, match="tracked files differ.*--allow-dirty"):
        state.checked(allow_dirty=False)
    assert state.checked(allow_dirty=True) is state
    (repo / "README").write_text("changed again\n")
    assert SourceState.read(repo).diff_sha256 != state.diff_sha256


@needs_git
def test_untracked_sources_are_dirty_but_other_untracked_files_and_results_are_not(repo):
    (repo / "notes.txt").write_text("scratch\n")
    (repo / "results" / "r.json").write_text('{"new": 1}\n')
    (repo / "results" / "s.json").write_text("{}\n")
    assert SourceState.read(repo).dirty is False
    (repo / "src" / "pkg" / "b.py").write_text("y = 2\n")
    state = SourceState.read(repo)
    assert state.dirty is True and state.diff_sha256 is None
    assert state.untracked_src == ("src/pkg/b.py",)
    with pytest.raises(DirtyTreeError, match=r"untracked files under src/ \(src/pkg/b.py\)"):
        state.checked(allow_dirty=False)
    assert state.as_record() == {"dirty": True, "diff_sha256": None,
                                 "untracked_src": ["src/pkg/b.py"]}


def test_outside_git_nothing_is_known_and_nothing_refused(tmp_path):
    state = SourceState.read(tmp_path)
    assert state == SourceState(commit=None, dirty=None, diff_sha256=None, untracked_src=())
    assert state.label is None and state.checked(allow_dirty=False) is state


DIRTY = SourceState(commit="a" * 40, dirty=True, diff_sha256="d" * 64, untracked_src=())
CLEAN = SourceState(commit="b" * 40, dirty=False, diff_sha256=None, untracked_src=())


def test_run_refuses_a_dirty_tree_unless_allowed_and_then_records_it(monkeypatch):
    monkeypatch.setattr(provenance.SourceState, "read", classmethod(lambda cls: DIRTY))
    with pytest.raises(DirtyTreeError):
        Run(command="c", seeds=[0])
    record = Run(command="c", seeds=[0], allow_dirty=True).record({"x": 1})
    assert record["git_commit"] == "a" * 40 + "-dirty"
    assert record["dirty"] is True and record["diff_sha256"] == "d" * 64
    assert record["results"] == {"x": 1} and record["environment"]["threads"] >= 1


def test_the_state_recorded_is_the_one_read_when_the_run_started(monkeypatch):
    """A commit made while the run goes on must not be recorded instead."""
    monkeypatch.setattr(provenance.SourceState, "read", classmethod(lambda cls: CLEAN))
    run = Run(command="c")
    monkeypatch.setattr(provenance.SourceState, "read", classmethod(lambda cls: DIRTY))
    record = run.record({})
    assert record["git_commit"] == "b" * 40 and record["dirty"] is False
    assert run.summary()["git_commit"] == "b" * 40
    assert run.same_code(record) and not run.same_code({**record, "diff_sha256": "e"})


def test_library_versions_name_only_the_libraries_the_process_imported(monkeypatch):
    from importlib.metadata import version

    from vqkit.training import versions

    found = library_versions({"torch": sys.modules["torch"], "numpy": sys.modules["numpy"],
                              "json": sys.modules["json"]})
    assert found == {"numpy": version("numpy"), "torch": version("torch")}
    assert library_versions({}) == {}
    # An imported module without an installed distribution is recorded as None.
    monkeypatch.setitem(versions.LIBRARIES, "fake_mod", ("no-such-dist-vqkit",))
    assert library_versions({"fake_mod": object()}) == {"no-such-dist-vqkit": None}


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian system")
def test_data_package_versions_from_dpkg():
    versions = data_package_versions(["dpkg", "no-such-package-vqkit"])
    assert versions == {"dpkg": _dpkg_version("dpkg"), "no-such-package-vqkit": None}
    assert versions["dpkg"]


def _dpkg_version(name: str) -> str:
    return subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True,
                          text=True, check=True).stdout


def test_without_dpkg_the_data_packages_are_none(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert data_package_versions(["dpkg"]) is None


def test_read_package_list_skips_comments_and_blanks(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("# data\nfoo\n\n  bar  # why\n#baz\n")
    assert read_package_list(path) == ["foo", "bar"]


def test_the_default_command_of_a_script_is_its_path_from_the_working_directory(tmp_path):
    from vqkit.training.provenance import command_line

    script = tmp_path / "benchmarks" / "bench.py"
    assert command_line([str(script), "--repeats", "3"], cwd=tmp_path) == (
        "python benchmarks/bench.py --repeats 3")
    # Outside the working directory the path stays as given; programs keep their name.
    assert command_line([str(script)], cwd=tmp_path / "elsewhere") == f"python {script}"
    assert command_line(["/usr/local/bin/vqkit", "fit", "x.npy"]) == "vqkit fit x.npy"
