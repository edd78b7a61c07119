"""``vqkit report`` rebuilds docs/results.md deterministically from results/; ``reproduce``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vqkit.cli.commands.reproduce import list_lines
from vqkit.experiments import registry
from vqkit.training.provenance import Run, write_json

REPO = Path(__file__).resolve().parents[2]


def test_committed_results_md_is_what_report_rebuilds(vqkit, monkeypatch):
    """docs/results.md must be exactly what `vqkit report` makes from the committed JSON."""
    if not (REPO / "docs" / "results.md").exists():
        pytest.skip("docs/results.md is not generated yet")
    monkeypatch.chdir(REPO)
    code, out, err = vqkit("report", "--check")
    assert code == 0, out + err


def _bench(path: Path) -> None:
    run = Run(command="python benchmarks/layer_speed.py", seeds=[0], allow_dirty=True)
    write_json(path, run.record([
        {"quantizer": "vqkit VQ", "batch": 4096, "ms_per_step": 1.2345},
        {"quantizer": "peer VQ", "batch": 4096, "ms_per_step": 2.5},
    ]))


def _fit_json(vqkit, tmp_path: Path, results: Path) -> None:
    import numpy as np

    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((300, 4)).astype("f4"))
    code, _, err = vqkit("fit", tmp_path / "x.npy", "--bits", "3", "--steps", "10", "--batch",
                         "32", "--log-every", "5", "-q", "-o", tmp_path / "q.ckpt",
                         "--json", results / "fit_toy.json")
    assert code == 0, err


def test_report_is_deterministic_and_traces_numbers(vqkit, tmp_path):
    results, docs = tmp_path / "results", tmp_path / "docs"
    results.mkdir()
    _bench(results / "bench_layer.json")
    _fit_json(vqkit, tmp_path, results)
    out = docs / "results.md"
    assert vqkit("report", "--results", results, "--out", out)[0] == 0
    first = out.read_text()
    assert (results / "fit_toy_curves.png").exists()     # the plot it links was drawn
    assert "![training curves" in first
    assert vqkit("report", "--results", results, "--out", out)[0] == 0
    assert out.read_text() == first
    assert vqkit("report", "--results", results, "--out", out, "--check")[0] == 0
    # Numbers trace to the JSON: the benchmark's values and the fit's final MSE appear.
    assert "1.234" in first and "python benchmarks/layer_speed.py" in first
    mse = json.loads((results / "fit_toy.json").read_text())["results"]["final"]["mse"]
    assert f"{mse:.4g}" in first
    # A changed JSON makes --check fail until the report is rebuilt.
    _bench(results / "bench_beam.json")
    code, _, err = vqkit("report", "--results", results, "--out", out, "--check")
    assert code == 1 and "out of date" in err


def test_report_notes_reproductions_not_run(vqkit, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    out = tmp_path / "docs" / "results.md"
    code, _, err = vqkit("report", "--results", results, "--out", out)
    assert code == 0
    text = out.read_text()
    for name in registry():
        assert f"vqkit reproduce {name}" in text
        assert "warning" in err


def test_reproduce_list_has_one_line_per_reproduction(vqkit):
    code, out, _ = vqkit("reproduce", "--list")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines == list_lines() and len(lines) == len(registry())
    for line in lines:
        assert re.search(r"~[0-9.]+ min", line)


def test_reproduce_unknown_name(vqkit):
    code, _, err = vqkit("reproduce", "no-such-thing")
    assert code == 2 and "unknown reproduction" in err and len(err.strip().splitlines()) == 1


def test_report_missing_results_folder(vqkit, tmp_path):
    code, _, err = vqkit("report", "--results", tmp_path / "nope", "--out", tmp_path / "r.md")
    assert code == 2 and "no results folder" in err


def test_quick_reproduction_never_writes_into_results(vqkit, tmp_path, monkeypatch):
    import vqkit.experiments as experiments

    calls = []

    def run(out_dir, *, quick=False, seed=0, allow_dirty=False):
        calls.append((Path(out_dir), quick, seed))
        return Path(out_dir) / "f.json"

    fake = experiments.Reproduction("fake", "a fake", 0.1, ("f.json",), run, lambda d: "")
    monkeypatch.setattr(experiments, "registry", lambda: {"fake": fake})
    monkeypatch.chdir(tmp_path)
    assert vqkit("reproduce", "fake", "--quick", "--seed", "2", "--allow-dirty")[0] == 0
    assert vqkit("reproduce", "fake", "--allow-dirty")[0] == 0
    assert calls == [(Path("out/quick"), True, 2), (Path("results"), False, 0)]


def test_bare_plot_links_of_a_reproduction_point_into_results(tmp_path):
    from vqkit.cli.commands.report import _fix_links

    results, docs = tmp_path / "results", tmp_path / "docs"
    results.mkdir()
    docs.mkdir()
    (results / "a.png").write_bytes(b"png")
    text = "![a](a.png) ![b](b.png) ![c](../results/a.png)"
    assert _fix_links(text, results, docs) == "![a](../results/a.png) ![b](b.png) " \
        "![c](../results/a.png)"
