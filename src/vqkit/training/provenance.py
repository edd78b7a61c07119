"""Results JSON with provenance: every reported number traces to a command that made it.

Each results file records the command, the git commit, the seeds, torch version, thread
count, CPU/GPU and wall time (the rule in README.md, Results), and is written atomically.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..io.atomic import atomic_write


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """The git commit (with ``-dirty`` if the tree has changes) of the checkout that holds
    ``cwd``, by default the one vqkit is installed from (editable installs); None outside git."""
    cwd = Path(__file__).resolve().parent if cwd is None else cwd
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """torch version, threads, CPU and GPU of this process."""
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        # Other processes on the machine slow wall times down; record how loaded it was.
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


class Run:
    """Collects provenance for one results file.

    Example:
        >>> run = Run(command="python benchmarks/x.py", seeds=[0])
        >>> record = run.record({"mse": 0.5})
        >>> sorted(record)[:4]
        ['command', 'environment', 'git_commit', 'results']
    """

    def __init__(self, command: str | None = None, seeds: list[int] | None = None) -> None:
        self.command = command if command is not None else " ".join(
            [Path(sys.argv[0]).name, *sys.argv[1:]]
        )
        self.seeds = list(seeds or [])
        self.started = time.perf_counter()
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def record(self, results: Any, **extra: Any) -> dict[str, Any]:
        return {
            "command": self.command,
            "git_commit": git_commit(),
            "seeds": self.seeds,
            "started_at": self.started_at,
            "wall_seconds": round(time.perf_counter() - self.started, 3),
            "environment": environment(),
            **extra,
            "results": results,
        }


def write_json(path: str | os.PathLike[str], payload: Any) -> Path:
    """Write ``payload`` as indented JSON to ``path`` atomically; returns the path."""
    text = json.dumps(payload, indent=2, sort_keys=False, allow_nan=True) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()))


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path) as f:
        return json.load(f)
