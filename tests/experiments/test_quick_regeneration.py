"""Every committed quick result regenerates: each quick run with a JSON in results/quick/ is run
twice in this process on 1 thread, once through ``vqkit reproduce NAME --verify`` (which must
pass against the committed JSON) and once by calling its run function; the two runs must agree
exactly (or within the reproduction's declared tolerance).

The quick runs of a few seconds run by default; the three of 15 to 20 seconds
(ann-fashion, codebook-usage, speech-envelope) are marked slow to keep the default run short.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vqkit.cli.main import main
from vqkit.experiments import registry
from vqkit.experiments.verification import Comparison, fixture_runs, platform_difference

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "results" / "quick"
#: Quick runs measured above this (minutes) are marked slow here.
DEFAULT_MAX_MINUTES = 0.1
REGISTRY = registry()
RUNS = fixture_runs(REGISTRY)


def _param(name: str, variant: str | None):
    slow = REGISTRY[name].quick_minutes >= DEFAULT_MAX_MINUTES
    return pytest.param((name, variant), id=f"{name}-{variant or 'main'}",
                        marks=[pytest.mark.slow] if slow else [])


class Twice:
    """Both runs of one quick run: the --verify one (exit code, printed lines, JSON) and the
    direct one (JSON)."""

    def __init__(self, name: str, variant: str | None, tmp: Path) -> None:
        self.name, self.variant = name, variant
        verify_dir, direct_dir = tmp / "verify", tmp / "direct"
        extra = ["--variant", variant] if variant else []
        torch.set_num_threads(1)
        self.code = main(["reproduce", name, *extra, "--verify", "--threads", "1",
                          "--committed", str(COMMITTED), "--out", str(verify_dir)])
        run_fn = REGISTRY[name].runner(variant)
        path = run_fn(direct_dir, quick=True, seed=0, allow_dirty=True)
        self.file = path.name
        self.direct = json.loads(path.read_text())
        self.verified = json.loads((verify_dir / path.name).read_text())


@pytest.fixture(scope="module", params=[_param(n, v) for n, v in RUNS])
def twice(request, tmp_path_factory) -> Twice:
    name, variant = request.param
    return Twice(name, variant, tmp_path_factory.mktemp(f"{name}-{variant or 'main'}"))


def test_verify_passes_against_the_committed_quick_result(twice, capsys):
    out = capsys.readouterr().out
    committed = json.loads((COMMITTED / twice.file).read_text())
    platform = platform_difference(committed, twice.verified)
    if platform and twice.code != 0:
        pytest.skip(f"{twice.file}: {platform}; exactness is checked on the same platform "
                    "(test_two_runs_in_one_process_give_the_same_numbers runs here)")
    assert twice.code == 0, out
    comparison = Comparison(committed, twice.verified, REGISTRY[twice.name].tolerance)
    assert comparison.matches and comparison.compared > 0


def test_two_runs_in_one_process_give_the_same_numbers(twice):
    comparison = Comparison(twice.verified, twice.direct, REGISTRY[twice.name].tolerance)
    assert comparison.compared > 0
    assert comparison.matches, [str(d) for d in comparison.differences[:10]]


def test_the_committed_quick_results_are_exactly_the_quick_runs_and_clean():
    files = sorted(p.name for p in COMMITTED.glob("*.json"))
    assert files, "results/quick/ is empty: run make quick-results"
    assert len(files) == len(RUNS)
    for name in files:
        data = json.loads((COMMITTED / name).read_text())
        assert data["dirty"] is False, f"{name} was made from a dirty tree"
        assert data["git_commit"] and "--quick" in data["command"]
        assert data["environment"]["threads"] == 1


def _fresh_sfvq_toy(tmp_path: Path) -> tuple[Path, dict]:
    """An empty folder for a planted committed file, and the record of a fresh sfvq-toy quick
    run on this machine: it stands for the committed one, which may come from another CPU,
    where other numbers differ in the last bits too."""
    committed = tmp_path / "committed"
    committed.mkdir()
    fresh = REGISTRY["sfvq-toy"].runner(None)(tmp_path / "fresh", quick=True, seed=0,
                                              allow_dirty=True)
    return committed, json.loads(fresh.read_text())


def test_verify_reports_a_changed_number_and_exits_1(tmp_path, capsys):
    committed, data = _fresh_sfvq_toy(tmp_path)
    true = data["results"]["test"]["mse_curve_vertices_only"]
    data["results"]["test"]["mse_curve_vertices_only"] = true + 0.125
    (committed / "sfvq_toy.json").write_text(json.dumps(data))
    code = main(["reproduce", "sfvq-toy", "--verify", "--committed", str(committed)])
    out = capsys.readouterr().out
    assert code == 1
    line = [ln for ln in out.splitlines() if "mse_curve_vertices_only" in ln]
    assert line == [f"  results.test.mse_curve_vertices_only: committed {true + 0.125!r}, "
                    f"now {true!r}"]
    assert "1 differ" in out


def test_verify_without_a_committed_result_is_one_line_exit_2(tmp_path, capsys):
    code = main(["reproduce", "sfvq-toy", "--verify", "--committed", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "no committed quick result" in err
    assert len(err.strip().splitlines()) == 1


def test_verify_names_another_platform_when_numbers_differ(tmp_path, capsys):
    committed, data = _fresh_sfvq_toy(tmp_path)
    data["environment"]["cpu"] = "another CPU"
    (committed / "sfvq_toy.json").write_text(json.dumps(data))
    assert main(["reproduce", "sfvq-toy", "--verify", "--committed", str(committed)]) == 0
    assert "another platform" not in capsys.readouterr().out  # the numbers match: no note
    data["results"]["test"]["mse_curve_vertices_only"] += 0.125
    (committed / "sfvq_toy.json").write_text(json.dumps(data))
    assert main(["reproduce", "sfvq-toy", "--verify", "--committed", str(committed)]) == 1
    assert "committed on another platform (cpu 'another CPU' -> " in capsys.readouterr().out
