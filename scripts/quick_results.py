"""Regenerate ``results/quick/`` (``make quick-results``): the committed JSON of each quick run
that ``vqkit reproduce NAME --verify`` and the default tests compare with.

For every quick run of :func:`vqkit.experiments.verification.fixture_runs` (the reproductions
whose quick version takes under a minute, with their variants) it runs
``vqkit reproduce NAME [--variant V] --quick --threads 1`` in a fresh process into a temporary
folder and copies the JSON (not the plots) into ``results/quick/``. Every run refuses a dirty
source tree, so commit first: the files then record a clean commit.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from vqkit.experiments import registry
from vqkit.experiments.verification import fixture_runs
from vqkit.io.atomic import atomic_write

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "quick"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, variant in fixture_runs(registry()):
        extra = ["--variant", variant] if variant else []
        with tempfile.TemporaryDirectory(prefix="vqkit-quick-") as tmp:
            cmd = [sys.executable, "-m", "vqkit", "reproduce", name, *extra, "--quick",
                   "--threads", "1", "--out", tmp]
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{' '.join(cmd[2:])} failed:\n{done.stderr}", file=sys.stderr)
                return 1
            for path in sorted(Path(tmp).glob("*.json")):
                data = path.read_bytes()
                atomic_write(OUT / path.name, lambda f, data=data: f.write(data))
                print(f"{name} {variant or ''}: wrote {(OUT / path.name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
