"""What the FAISS comparison benchmarks share: the provenance options, the run record that
refuses a dirty source tree, and FAISS with the thread count fixed for both libraries."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import ModuleType

import torch

from vqkit.training.provenance import Run
from vqkit.training.source_state import DirtyTreeError


def add_record_options(parser: argparse.ArgumentParser, out: Path) -> None:
    """``--threads``, ``--repeats``, ``--seed``, ``--out`` (default ``out``), ``--allow-dirty``."""
    parser.add_argument("--threads", type=int, default=1, help="torch and FAISS threads")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs; the best counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--allow-dirty", action="store_true",
                        help="run even if the source tree has uncommitted changes "
                        "(recorded as dirty)")


def start(parser: argparse.ArgumentParser, args: argparse.Namespace, script: str,
          argv: list[str] | None) -> tuple[Run, ModuleType]:
    """The run record of ``python benchmarks/<script> <argv>`` and the ``faiss`` module, with
    ``args.threads`` threads for torch and FAISS.

    Raises:
        ImportError: FAISS is not installed (naming the extra that installs it).
        SystemExit: the source tree is dirty without ``--allow-dirty`` (exit 2).
    """
    try:
        import faiss
    except ImportError as err:
        raise ImportError("this benchmark needs FAISS: pip install 'vqkit[faiss]'") from err
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    command = f"python benchmarks/{script} " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        return Run(command=command, seeds=[args.seed], allow_dirty=args.allow_dirty), faiss
    except DirtyTreeError as err:
        parser.error(str(err))
