"""Comparing a rerun's results record with the committed one: numbers only, provenance and
timings skipped, within a stated tolerance."""

from __future__ import annotations

import math

import pytest

from vqkit.experiments import Reproduction, Variant
from vqkit.experiments.verification import (
    EXACT,
    MISSING,
    Comparison,
    Difference,
    Tolerance,
    fixture_runs,
)


def _record(**results):
    return {"command": "vqkit reproduce x --quick", "git_commit": "abc", "dirty": False,
            "wall_seconds": 3.2, "environment": {"threads": 1, "load_average_1min": 1.5},
            "libraries": {"torch": "2.13.0"}, "seeds": [0], "started_at": "t",
            "results": results}


def test_identical_records_match_and_count_every_number():
    rec = _record(rows=[{"mse": 0.5, "bits": 6, "ok": True, "label": "a"}], psnr=31.0)
    comparison = Comparison(rec, rec)
    assert comparison.matches and comparison.differences == []
    assert comparison.compared == 4  # mse, bits, ok, psnr; the label is not a number


def test_a_changed_number_is_reported_with_its_path_and_both_values():
    old = _record(rows=[{"mse": 0.5}, {"mse": 0.25}])
    new = _record(rows=[{"mse": 0.5}, {"mse": 0.26}])
    comparison = Comparison(old, new)
    assert not comparison.matches
    assert comparison.differences == [Difference("results.rows[1].mse", 0.25, 0.26)]
    assert str(comparison.differences[0]) == "results.rows[1].mse: committed 0.25, now 0.26"


def test_provenance_and_timings_are_not_compared():
    old = _record(rows=[{"mse": 0.5, "train_seconds": 1.0, "encode_seconds": 2.0}])
    new = {**_record(rows=[{"mse": 0.5, "train_seconds": 9.0, "encode_seconds": 7.0}]),
           "git_commit": "def", "wall_seconds": 99.0, "seeds": [1], "workers": 2,
           "environment": {"threads": 2, "load_average_1min": 9.0}}
    old["workers"] = 1
    new["results"]["seconds"] = {"a/b": 3.0}
    assert Comparison(old, new).matches
    # ... but the same key names below the top level are results, and are compared.
    old["results"]["seeds"] = [0, 1]
    new["results"]["seeds"] = [0, 2]
    assert Comparison(old, new).differences == [Difference("results.seeds[1]", 1, 2)]


def test_missing_keys_list_lengths_types_and_bools_differ():
    old = _record(a=1, b=[1, 2], c=True, d={"x": 1.0}, e="s")
    new = _record(b=[1], c=False, d="text", e="other", f=2)
    assert Comparison(old, new).differences == [
        Difference("results.a", 1, MISSING), Difference("results.b[1]", 2, MISSING),
        Difference("results.c", True, False), Difference("results.d", {"x": 1.0}, "text"),
        Difference("results.f", MISSING, 2)]
    assert Comparison(_record(c=True), _record(c=1)).differences == [
        Difference("results.c", True, 1)]


def test_nan_matches_nan_and_infinity_only_itself():
    assert Comparison(_record(v=math.nan), _record(v=math.nan)).matches
    assert not Comparison(_record(v=math.nan), _record(v=1.0)).matches
    assert Comparison(_record(v=math.inf), _record(v=math.inf)).matches
    assert not Comparison(_record(v=math.inf), _record(v=-math.inf)).matches


def test_a_tolerance_allows_the_stated_spread_and_no_more():
    tol = Tolerance(rel=1e-3, abs=1e-6, reason="FAISS k-means")
    assert tol.allows(100.0, 100.0999) and not tol.allows(100.0, 100.11)
    assert tol.allows(0.0, 1e-6) and not tol.allows(0.0, 2e-6)
    assert Comparison(_record(v=100.0), _record(v=100.05), tol).matches
    assert not Comparison(_record(v=100.0), _record(v=100.05), EXACT).matches
    assert EXACT.describe() == "exact" and "FAISS k-means" in tol.describe()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"rel": -1e-3, "reason": "r"}, "rel"), ({"abs": math.nan, "reason": "r"}, "abs"),
    ({"rel": 1e-3}, "reason"),
])
def test_tolerance_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Tolerance(**kwargs)


def test_nothing_numeric_compared_is_no_match():
    comparison = Comparison(_record(label="a"), _record(label="a"))
    assert comparison.compared == 0 and not comparison.matches


def test_fixture_runs_are_the_quick_runs_under_a_minute_with_their_variants():
    def run(out_dir, *, quick=False, seed=0, allow_dirty=False):
        raise AssertionError("not run")

    reg = {
        "fast": Reproduction("fast", "d", 5.0, ("f.json",), run, str, quick_minutes=0.2,
                             variants={"v": Variant("v", run)}),
        "slow": Reproduction("slow", "d", 5.0, ("s.json",), run, str, quick_minutes=1.5),
        "unmeasured": Reproduction("unmeasured", "d", 5.0, ("u.json",), run, str),
    }
    assert fixture_runs(reg) == [("fast", None), ("fast", "v")]


def test_reproduction_checks_its_quick_minutes_and_tolerance():
    def fields(**kw):
        return dict(name="toy", description="d", expected_minutes=1.0,
                    result_files=("t.json",), run=print, report=str, **kw)

    with pytest.raises(ValueError, match="quick_minutes"):
        Reproduction(**fields(quick_minutes=0))
    with pytest.raises(TypeError, match="Tolerance"):
        Reproduction(**fields(tolerance=1e-3))
    assert Reproduction(**fields()).tolerance == EXACT


def test_a_record_from_another_cpu_is_named_as_such():
    from vqkit.experiments.verification import platform_difference

    old = _record()
    old["environment"] = {"cpu": "AMD EPYC", "torch": "2.13.0", "threads": 1}
    new = _record()
    new["environment"] = {"cpu": "AMD EPYC", "torch": "2.13.0", "threads": 2,
                          "cpu_capability": "AVX512"}
    # threads are not the platform, but a capability the committed record lacks may be
    assert platform_difference(old, new) == (
        "committed on another platform (cpu_capability 'unrecorded' -> 'AVX512')")
    old["environment"]["cpu_capability"] = "AVX512"
    assert platform_difference(old, new) is None
    new["environment"]["cpu"] = "Intel Xeon"
    assert platform_difference(old, new) == (
        "committed on another platform (cpu 'AMD EPYC' -> 'Intel Xeon')")
