"""Pieces the sub-commands share: building the quantizer ``fit`` names, threads, tables.

Quantizer, estimator and learning names (``vq``, ``nsvq``, ``ema``, ...) are the aliases of
:mod:`vqkit.registry`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from typing import Any

import torch


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


#: The default of every ``--threads``. One thread, not torch's choice (all cores) nor 2: on the
#: small shared machines vqkit runs on, a second thread helps only when a core is idle, and
#: under load it stalls (``make demo`` took 65 minutes with 2 threads on a busy 2-core machine,
#: 112 s with 1, bit-identical numbers). A fixed number keeps runs deterministic and results
#: files comparable; pass ``--threads N`` on an idle machine. Numbers on CPU do not depend on it.
DEFAULT_THREADS = 1


def add_threads(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads`` (default :data:`DEFAULT_THREADS`); the command then calls
    :func:`set_threads`."""
    parser.add_argument(
        "--threads", type=positive_int, default=DEFAULT_THREADS,
        help="torch CPU threads (default: %(default)s; more help only on an idle machine)",
    )


def set_threads(threads: int) -> int:
    """Use ``threads`` torch CPU threads, the one place a command sets them; nothing below
    (experiments, applications) overrides it, and results JSON record ``torch.get_num_threads()``
    when written. Returns the number in use."""
    torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def make_learning(name: str, ema_decay: float) -> Any:
    """The codebook learning called ``name``; ``ema_decay`` is EMA's decay."""
    from ...codebooks import EMA
    from ...registry import LEARNINGS

    cls = LEARNINGS.lookup(name)
    return cls(decay=ema_decay) if cls is EMA else cls()


def make_quantizer(settings: Mapping[str, Any], dim: int) -> Any:
    """Build the quantizer that ``fit``'s ``settings`` describe for vectors of size ``dim``."""
    from ...quantizers.build import build_quantizer

    options = {}
    if settings.get("initial_size"):
        options["initial_size"] = int(settings["initial_size"])
    return build_quantizer(
        settings["quantizer"], dim, int(settings["codebook_size"]),
        int(settings["num_codebooks"]), estimator=settings["estimator"],
        learning=make_learning(settings["learning"], settings["ema_decay"]), **options,
    )


def format_value(value: Any) -> str:
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return str(value)
        return f"{value:.6g}"
    return str(value)


def print_table(rows: Mapping[str, Any], title: str | None = None) -> None:
    """Print ``name  value`` lines (what the commands show on stdout)."""
    if title:
        print(title)
    width = max((len(k) for k in rows), default=0)
    for key, value in rows.items():
        print(f"  {key:<{width}}  {format_value(value)}")
