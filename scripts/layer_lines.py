"""Lines of ``src/vqkit`` per layer at one or more git revisions.

    python scripts/layer_lines.py 7a9a0d5 HEAD
    python scripts/layer_lines.py --code 7a9a0d5 HEAD   # code only

Layers are those of ``tests/test_layering.py`` (the test every module is placed by); modules
that have since moved are counted in the layer of the package that now holds their concept
(``LEGACY``), so revisions compare like for like. Counts are physical lines of ``*.py`` files,
as ``wc -l`` counts them; with ``--code``, only lines of code (no blank lines, comments or
docstrings).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_layering import LAYERS  # noqa: E402

#: Modules of earlier revisions -> the module that holds their concept now.
LEGACY = {
    "curve": "space_filling", "curve_estimators": "space_filling", "atomic": "io",
    "serialization": "io", "codes_file": "io", "plots": "plotting",
}


def layer_of(rel: str) -> str:
    """The layer of a module path relative to src/vqkit (``quantizers/vector.py``)."""
    name = rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    name = LEGACY.get(name, name)
    for layer, members in LAYERS:
        if any(name == m or name.startswith(m + ".") for m in members):
            return layer
    raise ValueError(f"{rel}: in no layer of tests/test_layering.py")


def code_lines(text: str) -> int:
    """Lines of ``text`` that are neither blank, a comment, nor part of a docstring."""
    docs: set[int] = set()
    scopes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for node in ast.walk(ast.parse(text)):
        body = node.body if isinstance(node, scopes) else []
        first = body[0] if body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                and isinstance(first.value.value, str):
            docs.update(range(first.lineno, first.end_lineno + 1))
    return sum(1 for i, line in enumerate(text.splitlines(), 1)
               if line.strip() and not line.strip().startswith("#") and i not in docs)


def count(rev: str, code: bool = False) -> dict[str, int]:
    files = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "src/vqkit"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split()
    totals = {layer: 0 for layer, _ in LAYERS}
    for path in files:
        if path.endswith(".py"):
            text = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True,
                                  capture_output=True, text=True).stdout
            lines = code_lines(text) if code else text.count("\n")
            totals[layer_of(path.removeprefix("src/vqkit/"))] += lines
    return totals


def main(revs: list[str], code: bool = False) -> None:
    counts = {rev: count(rev, code) for rev in revs}
    print("| layer | " + " | ".join(revs) + " |")
    print("|---|" + "---:|" * len(revs))
    for layer, _ in LAYERS:
        print(f"| {layer} | " + " | ".join(str(counts[r][layer]) for r in revs) + " |")
    print("| total | " + " | ".join(str(sum(counts[r].values())) for r in revs) + " |")


if __name__ == "__main__":
    args = sys.argv[1:]
    code = "--code" in args
    main([a for a in args if a != "--code"] or ["HEAD"], code)
