"""Results JSON with provenance: every reported number traces to a command that made it.

Each results file records the command, the git commit and whether the tree was dirty (read
when the run starts, :mod:`.source_state`), the seeds, the versions of the libraries the run
imported and of the Debian data packages (:mod:`.versions`), torch version, thread count,
CPU/GPU and wall time (the rule in README.md, Results), and is written atomically.

A results file is written by exactly one command (one :class:`Run`); no file merges runs.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..io.atomic import atomic_write
from .source_state import SourceState
from .versions import checkout_data_packages, library_versions


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
        # The instruction set torch's CPU kernels use ("AVX2", "AVX512", ...): float32
        # results can differ in the last bits between two of them.
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        # Other processes on the machine slow wall times down; record how loaded it was.
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def command_line(argv: list[str], cwd: str | os.PathLike[str] | None = None) -> str:
    """The command that reruns this process: ``python SCRIPT ARGS`` for a script (its path
    relative to ``cwd``, the working directory by default, when it lies below it), else the
    program's name and its arguments.

    Example:
        >>> command_line(["benchmarks/bench.py", "--repeats", "3"], cwd=".")
        'python benchmarks/bench.py --repeats 3'
        >>> command_line(["/usr/bin/vqkit", "fit", "x.npy"])
        'vqkit fit x.npy'
    """
    program = Path(argv[0])
    if program.suffix != ".py" or program.name == "__main__.py":
        return " ".join([program.name, *argv[1:]])
    base = Path(os.getcwd() if cwd is None else cwd).resolve()
    resolved = program.resolve()
    if resolved.is_relative_to(base):
        program = resolved.relative_to(base)
    return " ".join(["python", program.as_posix(), *argv[1:]])


class Run:
    """Collects provenance for one results file; constructing it is the start of the run.

    The source tree's state (:class:`~.source_state.SourceState`: commit, dirty, the diff's
    SHA-256) and the Debian data packages' versions are read here, before any work; the
    library versions (those the process imported by then) when :meth:`record` is called.

    Args:
        command: the command line recorded (default: :func:`command_line` of this process's
            ``sys.argv``).
        seeds: the random seeds of the run.
        allow_dirty: run from a dirty tree anyway (the record then says ``"dirty": true``);
            by default a dirty tree is refused.

    Raises:
        DirtyTreeError: (a ValueError) the tree is dirty and ``allow_dirty`` is False.

    Example:
        >>> run = Run(command="python benchmarks/x.py", seeds=[0], allow_dirty=True)
        >>> record = run.record({"mse": 0.5})
        >>> sorted(record)[:4]
        ['command', 'data_packages', 'diff_sha256', 'dirty']
    """

    def __init__(self, command: str | None = None, seeds: list[int] | None = None, *,
                 allow_dirty: bool = False) -> None:
        self.source = SourceState.read().checked(allow_dirty=allow_dirty)
        self.data_packages = checkout_data_packages()
        self.command = command if command is not None else command_line(sys.argv)
        self.seeds = list(seeds or [])
        self.started = time.perf_counter()
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def summary(self) -> dict[str, Any]:
        """What identifies this run within a file that several runs built (a resumed one):
        command, commit, dirty, the diff's SHA-256 and start time."""
        return {"command": self.command, "git_commit": self.source.label,
                "dirty": self.source.dirty, "diff_sha256": self.source.diff_sha256,
                "started_at": self.started_at}

    def same_code(self, record: dict[str, Any]) -> bool:
        """Whether the results ``record`` (a payload of :meth:`record`) was made from the very
        source this run starts from: same commit, same dirty state, same diff. Only then may
        this run add to it."""
        return (self.source.commit is not None and record.get("git_commit") == self.source.label
                and record.get("diff_sha256") == self.source.diff_sha256)

    def record(self, results: Any, **extra: Any) -> dict[str, Any]:
        """The JSON payload: provenance fields, then ``extra``, then ``results``."""
        return {
            "command": self.command,
            "git_commit": self.source.label,
            **self.source.as_record(),
            "seeds": self.seeds,
            "started_at": self.started_at,
            "wall_seconds": round(time.perf_counter() - self.started, 3),
            "environment": environment(),
            "libraries": library_versions(),
            "data_packages": self.data_packages,
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
