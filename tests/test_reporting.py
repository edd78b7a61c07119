"""vqkit.reporting: the one Markdown table, the number formats, the paper's cells."""

from __future__ import annotations

import pytest

from vqkit.reporting import (
    MISSING,
    format_number,
    format_value,
    markdown_table,
    paper_cells,
)


def test_markdown_table_exact_text():
    lines = markdown_table(["method", "MSE", ""], [["NSVQ", "0.125", 3], ["k-means", "", None]])
    assert "\n".join(lines) == (
        "| method | MSE |  |\n"
        "|---|---|---|\n"
        "| NSVQ | 0.125 | 3 |\n"
        "| k-means |  | None |"
    )
    assert markdown_table(["a"], []) == ["| a |", "|---|"]


def test_markdown_table_refuses_ragged_rows_and_no_columns():
    with pytest.raises(ValueError, match="2 cells, the header 3"):
        markdown_table(["a", "b", "c"], [[1, 2]])
    with pytest.raises(ValueError, match="at least one column"):
        markdown_table([], [])


@pytest.mark.parametrize(("value", "digits", "text"), [
    (3.14159, 2, "3.14"), (2.5, 0, "2"), (0.81234, 3, "0.812"), (9, 2, "9"), ("x", 2, "x"),
    (None, 2, MISSING), (float("nan"), 4, MISSING), (float("inf"), 1, "inf"),
])
def test_format_number(value, digits, text):
    assert format_number(value, digits) == text


@pytest.mark.parametrize(("value", "text"), [
    (0.123456, "0.1235"), (1234567.0, "1.235e+06"), (True, "True"), (None, "None"), (7, "7"),
    ([1.0, 2], "[1, 2]"), (list(range(9)), "9 values"), ({"a": {"b": 0.5}}, "{a: {b: 0.5}}"),
    ("a|b", "a\\|b"),
])
def test_format_value(value, text):
    assert format_value(value) == text


def test_paper_cells():
    assert paper_cells((23.704, None, 0.5), 3, 2) == ["23.70", MISSING, "0.50"]
    assert paper_cells(None, 2, 3) == [MISSING, MISSING]
    with pytest.raises(ValueError, match="2 values, expected 3"):
        paper_cells((1.0, 2.0), 3)
