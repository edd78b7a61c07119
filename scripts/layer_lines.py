"""Lines of ``src/vqkit`` per layer at one or more git revisions.

    python scripts/layer_lines.py 7a9a0d5 HEAD

Layers are those of ``tests/test_layering.py`` (the test every module is placed by); modules
that have since moved are counted in the layer of the package that now holds their concept
(``LEGACY``), so revisions compare like for like. Counts are physical lines of ``*.py`` files,
as ``wc -l`` counts them.
"""

from __future__ import annotations

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


def count(rev: str) -> dict[str, int]:
    files = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "src/vqkit"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split()
    totals = {layer: 0 for layer, _ in LAYERS}
    for path in files:
        if path.endswith(".py"):
            text = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True,
                                  capture_output=True, text=True).stdout
            totals[layer_of(path.removeprefix("src/vqkit/"))] += text.count("\n")
    return totals


def main(revs: list[str]) -> None:
    counts = {rev: count(rev) for rev in revs}
    print("| layer | " + " | ".join(revs) + " |")
    print("|---|" + "---:|" * len(revs))
    for layer, _ in LAYERS:
        print(f"| {layer} | " + " | ".join(str(counts[r][layer]) for r in revs) + " |")
    print("| total | " + " | ".join(str(sum(counts[r].values())) for r in revs) + " |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["HEAD"])
