"""Torch CPU threads: the one default and the one setter that every command and reproduction
uses (``--threads``); nothing below them overrides it, and results JSON record
``torch.get_num_threads()`` when written."""

from __future__ import annotations

import argparse

import torch

#: The default of every ``--threads``. One thread, not torch's choice (all cores) nor 2: on the
#: small shared machines vqkit runs on, a second thread helps only when a core is idle, and
#: under load it stalls (``make demo`` took 65 minutes with 2 threads on a busy 2-core machine,
#: 112 s with 1, bit-identical numbers). A fixed number keeps runs deterministic and results
#: files comparable; pass ``--threads N`` on an idle machine. Numbers on CPU do not depend on it.
DEFAULT_THREADS = 1


def _thread_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def add_threads(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads`` (default :data:`DEFAULT_THREADS`); the command then calls
    :func:`set_threads`."""
    parser.add_argument(
        "--threads", type=_thread_count, default=DEFAULT_THREADS,
        help="torch CPU threads (default: %(default)s; more help only on an idle machine)",
    )


def set_threads(threads: int) -> int:
    """Use ``threads`` torch CPU threads; returns the number in use.

    Raises:
        ValueError: ``threads < 1``.
    """
    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(int(threads))
    return torch.get_num_threads()
