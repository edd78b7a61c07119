"""Every code block of README.md and docs/*.md is run or parsed, and its printed claims hold.

The convention (docs/architecture.md, "Examples in the documents"):

- each ```python block runs, in document order, in one namespace per document, in a temporary
  working directory, on one thread;
- a ``print(...)`` line ends with ``# -> TEXT``, and what it prints must be exactly TEXT (a
  print without it fails the test, so no printed number goes unchecked); blocks assert
  their other claims themselves;
- ``<!-- doctest: skip REASON -->`` on the line before a fence skips the block, with the
  REASON shown by pytest (``-rs``); ``<!-- doctest: slow REASON -->`` runs it only in the
  ``slow`` variant of the document's test;
- every ``vqkit ...`` command of a shell block (also after ``-m vqkit`` of ``torchrun``) must
  parse with the real argument parser; in a usage synopsis the ``[optional]`` parts are
  dropped first; ``vqkit reproduce NAME [--variant V]`` must name a registered reproduction;
- a documented ``vqkit`` command that writes ``--json results/X.json`` is the command that
  ``results/X.json`` records (same options, paths aside).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from vqkit.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\S*)\s*$")
_MARK = re.compile(r"^<!--\s*doctest:\s*(skip|slow)\b\s*(.*?)\s*-->\s*$")
_EXPECT = re.compile(r"#\s*->\s?(.*)$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the first line of code
    lang: str
    source: str
    mark: str | None = None
    reason: str = ""


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of ``path`` with the doctest mark of the line before each."""
    lines = path.read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        mark = _MARK.match(lines[i - 1]) if i > 0 else None
        out.append(Block(path, i + 2, m.group(1), "\n".join(lines[i + 1:end]) + "\n",
                         mark.group(1) if mark else None, mark.group(2) if mark else ""))
        i = end + 1
    return out


def _python(path: Path) -> list[Block]:
    return [b for b in blocks(path) if b.lang == "python"]


def _expected_prints(block: Block) -> dict[int, str]:
    """``{line in file: expected text}`` of every print of the block; fails on a print
    without its ``# -> TEXT``."""
    expected = {}
    for k, line in enumerate(block.source.splitlines()):
        if re.search(r"\bprint\(", line):
            m = _EXPECT.search(line)
            assert m, f"{block.path.name}:{block.line + k}: a print needs `# -> expected output`"
            expected[block.line + k] = m.group(1).rstrip()
    return expected


def _run(path: Path, blocks_: list[Block], tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    printed: dict[int, list[str]] = {}
    name = str(path)

    def record(*args, sep=" ", end="\n", file=None, flush=False):
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename != name:
            frame = frame.f_back
        assert frame is not None, "print from outside the document"
        printed.setdefault(frame.f_lineno, []).append(sep.join(str(a) for a in args))

    namespace: dict = {"__name__": "__doc__", "print": record}
    for block in blocks_:
        expected = _expected_prints(block)
        padded = "\n" * (block.line - 1) + block.source  # tracebacks name the document's lines
        exec(compile(padded, name, "exec"), namespace)  # noqa: S102 - our own documents
        for line, text in expected.items():
            got = printed.pop(line, [])
            assert got, f"{path.name}:{line}: the print did not run"
            assert all(g == text for g in got), f"{path.name}:{line}: printed {got}, doc: {text!r}"


RUNNABLE = [p for p in DOCUMENTS if _python(p)]


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


@pytest.mark.parametrize("path", RUNNABLE, ids=_ids(RUNNABLE))
def test_python_blocks_run_and_print_what_they_say(path, tmp_path, monkeypatch):
    code = _python(path)
    for b in code:
        if b.mark:
            assert len(b.reason.split()) >= 3, f"{path.name}:{b.line}: a mark needs a reason"
    _run(path, [b for b in code if b.mark is None], tmp_path, monkeypatch)
    skipped = [f"line {b.line}: {b.reason}" for b in code if b.mark]
    if skipped:
        pytest.skip(f"{path.name}: the other blocks ran; not run here: " + "; ".join(skipped))


SLOW = [p for p in RUNNABLE if any(b.mark == "slow" for b in _python(p))]


@pytest.mark.slow
@pytest.mark.parametrize("path", SLOW, ids=_ids(SLOW))
def test_python_blocks_with_slow_ones(path, tmp_path, monkeypatch):
    _run(path, [b for b in _python(path) if b.mark != "skip"], tmp_path, monkeypatch)


def test_the_runner_checks_prints(tmp_path, monkeypatch):
    """A wrong expectation, a print without one, and a failing block all fail the runner."""
    doc = tmp_path / "doc.md"
    ok = "```python\nx = 2 + 2\nprint(x)  # -> 4\n```\n"
    for body, error in [(ok.replace("-> 4", "-> 5"), "printed"),
                        (ok.replace("  # -> 4", ""), "needs"),
                        (ok.replace("x = 2 + 2", "assert 2 + 2 == 5"), None)]:
        doc.write_text(body)
        with pytest.raises(AssertionError, match=error):
            _run(doc, _python(doc), tmp_path, monkeypatch)
    doc.write_text(ok)
    _run(doc, _python(doc), tmp_path, monkeypatch)


# ----- shell blocks: every `vqkit ...` command parses -----

def _commands(block: Block) -> list[list[str]]:
    """The ``vqkit`` argument lists of a shell block (continuations joined, comments
    dropped, ``[optional]`` synopsis parts removed)."""
    text = re.sub(r"\\\n\s*", " ", block.source)
    out = []
    for line in text.splitlines():
        line = re.sub(r"\[[^\]]*\]", " ", line)
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        if "-m" in tokens and "vqkit" in tokens and tokens[0] == "torchrun":
            tokens = tokens[tokens.index("-m") + 1:]
        command: list[str] = []
        for token in [*tokens, "&&"]:  # `a && b`, `a; b`: two commands
            if token not in ("&&", ";"):
                command.append(token)
                continue
            if command and command[0] == "vqkit":
                out.append([t for t in command[1:] if t != "..."])
            command = []
    return out


def _shell_commands() -> list[tuple[str, list[str]]]:
    return [(f"{b.path.name}:{b.line}", argv) for p in DOCUMENTS for b in blocks(p)
            if b.lang in ("", "bash", "sh", "console") for argv in _commands(b)]


COMMANDS = _shell_commands()


def test_documents_show_vqkit_commands():
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("where,argv", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_shell_commands_parse(where, argv):
    from vqkit.experiments import registry

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        pytest.fail(f"{where}: `vqkit {shlex.join(argv)}` does not parse (exit {exit_.code})")
    if args.command == "reproduce" and args.name:
        reg = registry()
        assert args.name in reg, f"{where}: no reproduction {args.name!r}"
        if args.variant:
            assert args.variant in reg[args.name].variants, f"{where}: no variant {args.variant}"


def _json_commands() -> list[tuple[str, list[str], Path]]:
    out = []
    for where, argv in COMMANDS:
        if "--json" in argv and argv[argv.index("--json") + 1].startswith("results/"):
            out.append((where, argv, ROOT / argv[argv.index("--json") + 1]))
    return out


JSON_COMMANDS = _json_commands()


def _options(argv: list[str]) -> dict:
    """The parsed options of a ``vqkit`` command, its paths (data, -o, --plot) left out."""
    args = vars(build_parser().parse_args(argv))
    return {k: v for k, v in args.items()
            if k not in ("data", "out", "plot", "func", "json", "resume")}


def test_some_documented_command_writes_a_results_json():
    assert JSON_COMMANDS


@pytest.mark.parametrize("where,argv,result", JSON_COMMANDS, ids=[w for w, _, _ in JSON_COMMANDS])
def test_documented_command_is_the_one_the_json_records(where, argv, result):
    recorded = shlex.split(json.loads(result.read_text())["command"])
    assert recorded[0] == "vqkit"
    assert _options(argv) == _options(recorded[1:]), (
        f"{where} shows another command than {result.name} records: {shlex.join(recorded)}")
