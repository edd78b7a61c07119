"""Markdown for docs/results.md: one table function, the number formats, the paper's columns.

Every reproduction's ``report`` and ``vqkit report`` build their tables with
:func:`markdown_table`, so all tables of the document have one shape::

    | bits | PSNR |
    |---|---|
    | 9 | 24.01 |
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

#: The cell of a missing value.
MISSING = "–"


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> list[str]:
    """The lines of a Markdown table: the header, the ``|---|`` rule, one line per row.

    Cells are written with ``str`` as given: format numbers first (:func:`format_number`,
    :func:`format_value`).

    Raises:
        ValueError: if ``header`` is empty or a row has another number of cells.

    Example:
        >>> markdown_table(["a", "b"], [[1, "x"]])
        ['| a | b |', '|---|---|', '| 1 | x |']
    """
    width = len(header)
    if width == 0:
        raise ValueError("a table needs at least one column")
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * width]
    for row in rows:
        if len(row) != width:
            raise ValueError(f"a row has {len(row)} cells, the header {width}: {list(row)!r}")
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return lines


def format_number(value: Any, digits: int = 2) -> str:
    """A table cell of a number: floats with ``digits`` decimals, other values as ``str``,
    missing ones (None, NaN) as :data:`MISSING`.

    Example:
        >>> [format_number(v) for v in (3.14159, 9, None, float("nan"))]
        ['3.14', '9', '–', '–']
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_value(value: Any) -> str:
    """A table cell of any JSON value: floats to 4 significant digits, short lists and dicts
    element-wise, a list of more than 8 values as its length, ``|`` escaped.

    Example:
        >>> format_value({"a": [0.123456, True], "b": "x|y"})
        '{a: [0.1235, True], b: x\\\\|y}'
    """
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        if len(value) > 8:
            return f"{len(value)} values"
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    return str(value).replace("|", "\\|")


def paper_cells(paper: Sequence[float | None] | None, columns: int, digits: int = 2
                ) -> list[str]:
    """The cells of the paper's numbers beside ours in one row: ``columns`` cells of
    :func:`format_number`, all :data:`MISSING` when the paper has no value there (``None``).

    Raises:
        ValueError: if ``paper`` has another number of values than ``columns``.

    Example:
        >>> paper_cells((23.7, 23.96), 2), paper_cells(None, 2)
        (['23.70', '23.96'], ['–', '–'])
    """
    values = (None,) * columns if paper is None else tuple(paper)
    if len(values) != columns:
        raise ValueError(f"the paper's row has {len(values)} values, expected {columns}")
    return [format_number(v, digits) for v in values]
