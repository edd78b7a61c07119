"""Check that a committed results JSON is what its recorded command makes: clone this
repository at the JSON's recorded commit into a temporary folder, run the recorded command
there (1 thread), and compare the numbers of the file it writes with the committed file.

    python scripts/regeneration_check.py results/sfvq_toy.json [results/other.json ...]

The comparison is :class:`vqkit.experiments.verification.Comparison` (the one
``vqkit reproduce --verify`` uses): every number, exactly, except timings, machine load and
provenance. It prints, for each file, how many numbers were compared and every difference,
and exits 1 when a file differs, records a ``-dirty`` commit, or its command fails. A file
whose run takes long takes as long here: run it in the background.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from vqkit.experiments.verification import Comparison

ROOT = Path(__file__).resolve().parents[1]


def _argv(command: str) -> list[str]:
    """The recorded command as this interpreter runs it (``vqkit ...`` or ``python ...``)."""
    words = shlex.split(command)
    if words[0] == "vqkit":
        return [sys.executable, "-m", "vqkit", *words[1:]]
    if words[0] in ("python", "python3"):
        return [sys.executable, *words[1:]]
    raise ValueError(f"cannot rerun the recorded command {command!r}")


def check(path: Path, keep: Path | None) -> bool:
    """Rerun the command recorded in ``path`` and compare; True when every number agrees."""
    committed = json.loads(path.read_text())
    commit, command = committed.get("git_commit", ""), committed.get("command", "")
    if not commit or commit.endswith("-dirty") or not command:
        print(f"{path}: records commit {commit!r} and command {command!r}: not reproducible")
        return False
    work = Path(tempfile.mkdtemp(prefix="vqkit-regen-", dir=keep))
    subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
    subprocess.run(["git", "-C", str(work), "checkout", "-q", commit], check=True)
    env = {**os.environ, "PYTHONPATH": str(work / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(_argv(command), cwd=work, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"{path}: `{command}` failed at {commit[:10]}:\n{done.stderr[-2000:]}")
        return False
    rerun = json.loads((work / path.resolve().relative_to(ROOT)).read_text())
    comparison = Comparison(committed, rerun)
    print(f"{path}: `{command}` at {commit[:10]} in {work}: {comparison.compared} numbers "
          f"compared, {len(comparison.differences)} differ")
    for difference in comparison.differences[:20]:
        print(f"  {difference}")
    return comparison.matches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="committed results JSON files")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="make the clones under DIR (default: the system's temporary "
                        "folder); they are not deleted, so the rerun's files can be read")
    args = parser.parse_args(argv)
    results = [check(path, args.keep) for path in args.files]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
