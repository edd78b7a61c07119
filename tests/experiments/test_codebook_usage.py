"""The codebook-usage reproduction: the quick run in the default test run, the committed full
run's JSON under ``-m slow``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vqkit.experiments import codebook_usage as cu
from vqkit.experiments import registry

RESULTS = Path(__file__).resolve().parents[2] / "results" / cu.RESULT_FILE


def _check_rows(rows, test_images, train_images):
    assert [(r["method"], r["codes"]) for r in rows] == [
        (m, 1000 if (m == "FSQ" and k == 1024) else 15360 if m == "FSQ" else k)
        for k, _ in cu.SIZES for m in cu.METHODS]
    for r in rows:
        assert 1 <= r["used"] <= min(r["codes"], 49 * test_images)
        assert r["usage"] == r["used"] / r["codes"]
        assert 1 <= r["train_used"] <= min(r["codes"], 49 * train_images)
        assert r["train_usage"] == r["train_used"] / r["codes"]
        # exp(H) of a histogram over `used` codes lies in [1, used].
        assert 1.0 <= r["perplexity"] <= r["used"] * (1 + 1e-9)
        assert 0 < r["test_mse"] < 1


def test_quick_run_writes_every_method_at_both_sizes(tmp_path):
    path = cu.run(tmp_path, quick=True, seed=0, allow_dirty=True)
    data = json.loads(path.read_text())
    assert data["command"] == "vqkit reproduce codebook-usage --quick" and data["quick"]
    assert data["config"] == {**cu.QUICK.__dict__}
    _check_rows(data["results"]["rows"], cu.QUICK.test_images, cu.QUICK.train_usage_images)
    assert registry()["codebook-usage"].report(tmp_path).startswith("## Codebook usage")


def test_rows_do_not_depend_on_the_number_of_worker_processes(tmp_path):
    """Each point seeds itself, so 2 spawned single-threaded workers give the rows of one
    process (timings aside)."""
    def numbers(rows):
        return [{k: v for k, v in r.items() if k != "train_seconds"} for r in rows]

    one = cu._run_points(cu.QUICK, seed=3, workers=1)
    two = cu._run_points(cu.QUICK, seed=3, workers=2)
    assert numbers(one) == numbers(two)
    assert [r["method"] for r in two] == [m for _ in cu.SIZES for m in cu.METHODS]


def test_methods_are_the_named_families():
    from vqkit import FSQ, Cosine, SimVQ

    assert isinstance(cu.make_quantizer("FSQ", 1024, (8, 5, 5, 5)), FSQ)
    assert cu.make_quantizer("SimVQ", 64, ()).parameterisation == SimVQ()
    assert cu.make_quantizer("Cosine VQ", 64, ()).parameterisation == Cosine()
    with pytest.raises(ValueError, match="method must be one of"):
        cu.make_quantizer("LFQ", 64, ())


@pytest.mark.slow
def test_committed_full_run():
    data = json.loads(RESULTS.read_text())
    assert not data["quick"] and data["config"] == {**cu.CONFIG.__dict__}
    rows = {(r["method"], r["codes"]): r for r in data["results"]["rows"]}
    _check_rows(data["results"]["rows"], cu.CONFIG.test_images, cu.CONFIG.train_usage_images)
    # The usage targets: FSQ and SimVQ >= 95 % at ~1k and at ~16k codes, and cosine VQ
    # strictly above plain VQ at 16k.
    assert rows[("FSQ", 1000)]["usage"] >= 0.95
    assert rows[("SimVQ", 1024)]["usage"] >= 0.95
    assert rows[("FSQ", 15360)]["usage"] >= 0.95
    assert rows[("SimVQ", 16384)]["usage"] >= 0.95
    assert rows[("Cosine VQ", 16384)]["usage"] > rows[("VQ", 16384)]["usage"]
