"""The markers, generated sections and the unmarked-number rule of vqkit.doc_numbers."""

from __future__ import annotations

import json

import pytest

from vqkit.doc_numbers import evaluate, fill, fill_sections, stale_markers, unmarked_numbers

DATA = {"results": {"rows": [{"bits": 6, "psnr": 20.004}, {"bits": 9, "psnr": 22.7849}],
                    "summary": {"4": {"kl": 35.532}}}, "wall_seconds": 1849.6}


def test_evaluate_paths_arithmetic_and_where():
    assert evaluate("results.rows[1].psnr", DATA) == 22.7849
    assert evaluate('results.summary["4"].kl', DATA) == 35.532
    assert evaluate("where(results.rows, bits=9).psnr - results.rows[0].psnr", DATA) == \
        pytest.approx(2.7809)
    assert evaluate("100 * results.rows[0].psnr / 2", DATA) == pytest.approx(1000.2)
    for bad, match in [("results.nope", "'nope'"), ("results.rows[5]", "5"),
                       ("__import__('os')", "not allowed"), ("where(results.rows, bits=7)",
                                                             "0 rows"), ("a b", "expression")]:
        with pytest.raises(ValueError, match=match):
            evaluate(bad, DATA)


def _results(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps(DATA))
    return tmp_path


def test_fill_rewrites_marked_numbers_and_reports_unreadable_ones(tmp_path):
    res = _results(tmp_path)
    text = ("PSNR <!-- result: r.json results.rows[1].psnr .2f -->0.00<!-- /result --> dB, "
            "wall <!-- result: r.json wall_seconds ,.0f -->1<!-- /result --> s\n"
            "<!-- result: nope.json x .1f -->3.0<!-- /result -->")
    new, problems = fill(text, res)
    assert new.splitlines()[0] == (
        "PSNR <!-- result: r.json results.rows[1].psnr .2f -->22.78<!-- /result --> dB, "
        "wall <!-- result: r.json wall_seconds ,.0f -->1,850<!-- /result --> s")
    assert [p.line for p in problems] == [2] and "nope.json" in problems[0].message
    stale = stale_markers(text, res)
    assert [p.line for p in stale] == [1, 1, 2]
    assert stale_markers(new.splitlines()[0], res) == []


def test_sections_are_filled_without_their_heading():
    text = "intro\n<!-- results-section: toy -->\nold\n<!-- /results-section -->\nend"
    new, problems = fill_sections(text, {"toy": "## Toy\n\n| a |\n|---|\n| 1.5 |\n"})
    assert new == ("intro\n<!-- results-section: toy -->\n| a |\n|---|\n| 1.5 |\n"
                   "<!-- /results-section -->\nend")
    assert problems == []
    _, problems = fill_sections(text, {})
    assert "no results section 'toy'" in problems[0].message
    assert unmarked_numbers(new) == []  # generated content is not checked as prose


def test_the_unmarked_rule():
    text = "\n".join([
        "We reach 22.78 dB and 7 % usage; it took 364 s and runs 6.39x faster.",  # 1: four
        "The paper reports 23.7 dB [vali2022nsvq].",  # 2: quoted
        "Weights `beta=0.25` and <!-- result: r.json x .2f -->1.50<!-- /result --> dB.",  # 3
        "With torch 2.13 and Python 3.11 on 4 x 256 codebooks of 7x7 latents.",  # 4: none
        "",
        "| bits | PSNR |",
        "|---|---|",
        "| 9 | 22.78 |",  # 8
        "| 9, paper | 23.96 |",
        "",
        "```python",
        "x = 0.5  # 3.2 dB",
        "```",
    ])
    found = [(u.line, u.number) for u in unmarked_numbers(text)]
    assert found == [(1, "22.78 dB"), (1, "7 %"), (1, "364 s"), (1, "6.39x"), (8, "22.78")]
