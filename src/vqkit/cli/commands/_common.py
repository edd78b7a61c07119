"""Pieces the sub-commands share: quantizer and estimator names, threads, tables."""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from typing import Any

import torch

#: ``--quantizer`` names and the class names in :data:`vqkit.registry.QUANTIZERS`.
QUANTIZER_NAMES = {
    "vq": "VectorQuantizer",
    "rvq": "ResidualVQ",
    "pvq": "ProductVQ",
    "avq": "AdditiveVQ",
    "sfvq": "SpaceFillingVQ",
}
#: Quantizers with M codebooks (``--num-codebooks``).
MULTI = ("rvq", "pvq", "avq")

#: ``--estimator`` names and the class names in :data:`vqkit.registry.ESTIMATORS`.
ESTIMATOR_NAMES = {
    "nsvq": "NoiseSubstitution",
    "ste": "StraightThrough",
    "rotation": "RotationTrick",
    "diveq": "DiVeQ",
    "diveq-detach": "DiVeQDetach",
}
LEARNING_NAMES = {"gradient": "Gradient", "ema": "EMA"}


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


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads", type=positive_int, default=None,
        help="torch CPU threads (default: torch's choice)",
    )


def set_threads(threads: int | None) -> None:
    if threads is not None:
        torch.set_num_threads(int(threads))


def make_estimator(name: str) -> Any:
    """The estimator strategy called ``name`` (a short name or a class name)."""
    from ...registry import ESTIMATORS

    return ESTIMATORS.lookup(name)()


def make_learning(name: str, ema_decay: float) -> Any:
    from ...codebooks import EMA
    from ...registry import LEARNINGS

    cls = LEARNINGS.lookup(name)
    return cls(decay=ema_decay) if cls is EMA else cls()


def make_quantizer(settings: Mapping[str, Any], dim: int) -> Any:
    """Build the quantizer that ``fit``'s ``settings`` describe for vectors of size ``dim``."""
    from ...registry import QUANTIZERS

    name = settings["quantizer"]
    cls_name = QUANTIZER_NAMES.get(name)
    if cls_name is None:
        raise ValueError(f"--quantizer must be one of {sorted(QUANTIZER_NAMES)}, got {name!r}")
    cls = QUANTIZERS.lookup(cls_name)
    kwargs = {
        "estimator": make_estimator(settings["estimator"]),
        "learning": make_learning(settings["learning"], settings["ema_decay"]),
    }
    size, m = int(settings["codebook_size"]), int(settings["num_codebooks"])
    if name in MULTI:
        return cls(dim, size, m, **kwargs)
    if m != 1:
        raise ValueError(f"--num-codebooks must be 1 for --quantizer {name}, got {m}")
    if settings.get("initial_size"):
        kwargs["initial_size"] = int(settings["initial_size"])
    return cls(dim, size, **kwargs)


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
