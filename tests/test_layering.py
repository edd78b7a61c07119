"""The core imports torch only, and never the layers above it (the dependency direction)."""

from __future__ import annotations

import ast
from pathlib import Path

import vqkit

SRC = Path(vqkit.__file__).parent
CORE_MODULES = ["types.py", "codebooks.py", "estimators.py", "distributed.py",
                "serialization.py", "maintenance.py", "curve.py", "curve_estimators.py",
                "complexity.py", "strategy.py", "atomic.py", "registry.py"]
CORE_PACKAGES = ["functional", "quantizers"]
ALLOWED_EXTERNAL = {"torch", "__future__", "collections", "dataclasses", "typing", "math",
                    "inspect", "abc", "os", "tempfile", "pathlib", "itertools", "functools",
                    "types", "hashlib", "struct", "zlib", "enum", "warnings", "logging", "numbers"}
FORBIDDEN_INTERNAL = {"training", "apps", "experiments", "cli", "data", "interpret", "privacy"}


def _core_files():
    files = [SRC / m for m in CORE_MODULES if (SRC / m).exists()]
    for pkg in CORE_PACKAGES:
        files += sorted((SRC / pkg).glob("*.py"))
    return files


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield 0, alias.name
        elif isinstance(node, ast.ImportFrom):
            yield node.level, node.module or ""


def test_core_imports_only_torch_and_the_standard_library():
    bad = []
    for path in _core_files():
        for level, name in _imports(path):
            top = name.split(".")[0]
            if level == 0 and top not in ALLOWED_EXTERNAL and top != "vqkit":
                bad.append(f"{path.relative_to(SRC)} imports {name}")
            if (level > 0 or top == "vqkit") and set(name.split(".")) & FORBIDDEN_INTERNAL:
                bad.append(f"{path.relative_to(SRC)} imports {'.' * level}{name}")
    assert not bad, "\n".join(bad)


def test_import_has_no_side_effects():
    import subprocess
    import sys

    code = ("import torch; n = torch.get_num_threads(); import vqkit; "
            "assert torch.get_num_threads() == n; import logging; "
            "assert not logging.getLogger().handlers")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "" and out.stderr == "", out.stderr
