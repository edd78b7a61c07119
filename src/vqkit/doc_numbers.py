"""Numbers quoted in the documents, tied to the results JSON they come from.

A measured number in README.md or docs/*.md is written inside a marker that names its source::

    PESQ <!-- result: speech_envelope.json results.world_codec[4].pesq .2f -->2.29<!-- /result -->

``FILE`` is a file of results/, ``EXPR`` a path into its JSON (``a.b[3]["key"]``, ``+ - * /``,
numbers, and the functions of :data:`FUNCTIONS`, e.g. ``where(rows, bits=9)`` = the one row
with ``bits == 9``), ``FORMAT`` a Python format spec (``.2f``, ``+.2f``, ``,.0f``, ``.3g``).
``vqkit report`` rewrites the text between the tags from the JSON; ``vqkit report --check``
fails when it differs.

:func:`unmarked_numbers` finds measured-looking numbers outside markers (the rule is in its
docstring and in docs/architecture.md), which ``--check`` also fails on.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: ``<!-- result: FILE EXPR FORMAT -->TEXT<!-- /result -->`` on one line.
MARKER = re.compile(r"<!-- result: (\S+) (.+?) (\S+) -->(.*?)<!-- /result -->")


def _where(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    if len(found) != 1:
        raise ValueError(f"where({match}) matches {len(found)} rows, not one")
    return found[0]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


#: The functions an expression may call.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "where": _where, "mean": _mean, "min": min, "max": max, "abs": abs, "len": len,
}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def evaluate(expr: str, data: Any) -> Any:
    """The value of ``expr`` over the JSON value ``data`` (names are its top-level keys).

    Raises:
        ValueError: the expression uses anything else than keys, indices, arithmetic,
            numbers and :data:`FUNCTIONS`, or names a key or index that is not there.

    Example:
        >>> evaluate("results.rows[1].psnr - results.rows[0].psnr",
        ...          {"results": {"rows": [{"psnr": 20.0}, {"psnr": 21.5}]}})
        1.5
    """

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
            return node.value
        if isinstance(node, ast.Name):
            return _get(data, node.id, expr)
        if isinstance(node, ast.Attribute):
            return _get(ev(node.value), node.attr, expr)
        if isinstance(node, ast.Subscript):
            return _get(ev(node.value), ev(node.slice), expr)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](ev(node.operand))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in FUNCTIONS):
            return FUNCTIONS[node.func.id](*[ev(a) for a in node.args],
                                           **{k.arg: ev(k.value) for k in node.keywords})
        raise ValueError(f"{expr!r}: {ast.dump(node)} is not allowed in a result expression")

    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as err:
        raise ValueError(f"{expr!r} is not an expression: {err.msg}") from err
    return ev(tree)


def _get(obj: Any, key: Any, expr: str) -> Any:
    try:
        return obj[key]
    except (KeyError, IndexError, TypeError) as err:
        raise ValueError(f"{expr!r}: no {key!r} in {type(obj).__name__}") from err


@dataclass(frozen=True)
class Problem:
    """A marker whose value cannot be read or differs from its text, or an unmarked number."""

    line: int
    message: str


def _format(value: Any, spec: str, expr: str) -> str:
    try:
        return format(value, spec)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{expr!r}: cannot format {value!r} with {spec!r}") from err


def fill(text: str, results_dir: Path) -> tuple[str, list[Problem]]:
    """``text`` with every marker's text rewritten from its JSON, and the markers that could
    not be read (their text is left as it was).

    Raises:
        ValueError: a results file is not valid JSON.
    """
    cache: dict[str, Any] = {}
    problems: list[Problem] = []

    def value(match: re.Match[str], line: int) -> str:
        name, expr, spec, old = match.groups()
        path = Path(results_dir) / name
        if name not in cache:
            if not path.is_file():
                problems.append(Problem(line, f"no results file {path}"))
                return match.group(0)
            cache[name] = json.loads(path.read_text())
        try:
            new = _format(evaluate(expr, cache[name]), spec, expr)
        except ValueError as err:
            problems.append(Problem(line, f"{name}: {err}"))
            return match.group(0)
        return match.group(0)[: match.start(4) - match.start(0)] + new + "<!-- /result -->"

    lines = [MARKER.sub(lambda m, n=n: value(m, n), line)
             for n, line in enumerate(text.split("\n"), 1)]
    return "\n".join(lines), problems


def stale_markers(text: str, results_dir: Path) -> list[Problem]:
    """The markers of ``text`` whose text differs from (or cannot be read from) their JSON."""
    filled, problems = fill(text, results_dir)
    for n, (old, new) in enumerate(zip(text.split("\n"), filled.split("\n"), strict=True), 1):
        for a, b in zip(MARKER.finditer(old), MARKER.finditer(new), strict=True):
            if a.group(4) != b.group(4):
                problems.append(Problem(n, f"{a.group(1)} {a.group(2)}: the document says "
                                           f"{a.group(4)!r}, the JSON gives {b.group(4)!r}"))
    return sorted(problems, key=lambda p: p.line)


# ----- generated sections -----

#: ``<!-- results-section: NAME -->`` ... ``<!-- /results-section -->`` (the tags on lines of
#: their own): the section NAME of docs/results.md, without its heading.
SECTION = re.compile(r"^<!-- results-section: (\S+) -->\n(.*?)^<!-- /results-section -->$",
                     re.M | re.S)


def fill_sections(text: str, sections: dict[str, str]) -> tuple[str, list[Problem]]:
    """``text`` with every generated section rewritten from ``sections`` (name -> Markdown,
    the first line its heading), and the sections whose name is unknown."""
    problems: list[Problem] = []

    def body(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in sections:
            line = text.count("\n", 0, match.start()) + 1
            problems.append(Problem(line, f"no results section {name!r}; known: "
                                          f"{', '.join(sections)}"))
            return match.group(0)
        content = sections[name].split("\n", 1)[1].strip("\n")
        return f"<!-- results-section: {name} -->\n{content}\n<!-- /results-section -->"

    return SECTION.sub(body, text), problems


def refresh(text: str, results_dir: Path, sections: dict[str, str]
            ) -> tuple[str, list[Problem]]:
    """``text`` with its generated sections and marked numbers rewritten from the results,
    and what could not be read (see :func:`fill_sections`, :func:`fill`).

    Raises:
        ValueError: a results file is not valid JSON.
    """
    text, problems = fill_sections(text, sections)
    text, more = fill(text, results_dir)
    return text, sorted(problems + more, key=lambda p: p.line)


# ----- numbers outside markers -----

_NUMBER = r"(?<![\w.^/-])[+\-−]?\d[\d,]*(?:\.\d+)?"
#: A number with a measurement's unit: dB, %, bpp, a ratio ``1.5x``, a time in s / min / h.
_UNIT = re.compile(_NUMBER + r"(?:\s?(?:dB|%|bpp)(?!\w)|[x×](?![\w.])"
                   r"|\s(?:s|min|minutes|h|hours)(?!\w))")
#: A number with a fractional part (``0.9595``, ``+1.45``); a version (``torch 2.13``) is not.
_DECIMAL = re.compile(r"(?<!Python )(?<!torch )(?<!FAISS )(?<!version )"
                      r"(?<![\w.^/-])[+\-−]?\d[\d,]*\.\d+(?![\w.])")
#: A sentence that quotes another source: the paper, the thesis or a citation key.
_QUOTED = re.compile(r"\bpaper|\bthesis|\bpublished|\[[a-z]+\d{4}[a-z0-9]*\]", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=[A-Z(*_`-])")


def _prose(text: str) -> list[tuple[int, str]]:
    """``(line, text)`` of ``text`` without generated sections, fenced code, inline code,
    markers, HTML comments and link targets (each removed piece is replaced by a space)."""
    out = []
    fenced = generated = False
    for n, line in enumerate(text.split("\n"), 1):
        if line.startswith(("<!-- results-section:", "<!-- /results-section -->")):
            generated = line.startswith("<!-- results-section:")
            continue
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or generated:
            continue
        line = MARKER.sub(" ", line)
        line = re.sub(r"<!--.*?-->|`[^`]*`|\]\([^)]*\)", " ", line)
        out.append((n, line))
    return out


@dataclass(frozen=True)
class Unmarked:
    """A measured-looking number outside a marker: its line, its text and its sentence (or
    table row), whitespace collapsed; ``(number, sentence)`` identifies it across edits
    elsewhere in the document."""

    line: int
    number: str
    sentence: str

    @property
    def message(self) -> str:
        return f"unmarked number {self.number!r} in: {self.sentence[:100]}"


def _numbers(body: str) -> list[re.Match[str]]:
    found = {m.start(): m for m in list(_DECIMAL.finditer(body)) + list(_UNIT.finditer(body))}
    return [found[k] for k in sorted(found)]


def unmarked_numbers(text: str) -> list[Unmarked]:
    """Measured-looking numbers of a Markdown document that are not in a marker.

    The rule: outside generated sections, fenced code, inline code, HTML comments, link
    targets and markers, a number with decimals (``0.9595``, ``+1.45``; not a version such as
    ``torch 2.13``) or a number followed by ``dB``, ``%``, ``bpp``, ``x`` (a ratio:
    ``3x``) or a time unit (``s``, ``min``, ``minutes``, ``h``) is a measured number, unless
    its sentence (in a table: its row) quotes another source: it names the paper, the
    thesis, "published", or a citation key (``[vali2022nsvq]``).

    Example:
        >>> [u.number for u in unmarked_numbers("We get 22.78 dB in 3 s. The paper: 23.7 dB.")]
        ['22.78 dB', '3 s']
    """
    found: list[Unmarked] = []
    paragraph: list[tuple[int, str]] = []

    def scan(pieces: list[tuple[int, str]], split: bool) -> None:
        joined, starts = "", []
        for n, piece in pieces:
            starts.append((len(joined), n))
            joined += " ".join(piece.split()) + " "
        offset = 0
        for sentence in (_SENTENCE_END.split(joined) if split else [joined]):
            offset = joined.index(sentence, offset)
            if not _QUOTED.search(sentence):
                for m in _numbers(sentence):
                    line = max(n for s, n in starts if s <= offset + m.start())
                    found.append(Unmarked(line, " ".join(m.group(0).split()),
                                          sentence.strip()))
            offset += len(sentence)

    for n, line in _prose(text):
        if line.lstrip().startswith("|"):
            scan(paragraph, True)
            paragraph.clear()
            if not re.fullmatch(r"[\s|:-]*", line):
                scan([(n, line)], False)
        elif line.strip():
            paragraph.append((n, line))
        else:
            scan(paragraph, True)
            paragraph.clear()
    scan(paragraph, True)
    return found


def read_baseline(path: Path) -> set[tuple[str, str, str]]:
    """The known unmarked numbers of ``path``: lines ``DOC<TAB>NUMBER<TAB>SENTENCE`` (``#``
    starts a comment); an absent file is empty."""
    if not Path(path).is_file():
        return set()
    rows = set()
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            doc, number, sentence = line.split("\t")
            rows.add((doc, number, sentence))
    return rows


def baseline_line(doc: str, unmarked: Unmarked) -> str:
    """The baseline line of one unmarked number of document ``doc``."""
    return f"{doc}\t{unmarked.number}\t{unmarked.sentence}"
