"""Pieces the sub-commands share: building the quantizer ``fit`` names, loading a checkpoint's
quantizer, work in chunks with a progress bar, tables.

Quantizer, estimator and learning names (``vq``, ``nsvq``, ``ema``, ...) are the aliases of
:mod:`vqkit.registry`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from typing import Any

from ...functional.chunks import CHUNK
from ...training.threads import add_threads, set_threads


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


#: The names of :data:`vqkit.data.named.NAMED`, spelled out so that ``--help`` needs no torch
#: import (a test checks that they agree).
DATA_SETS = ("glove-6b-50d", "fashion-mnist-train", "fashion-mnist-test")


def vectors_help(what: str) -> str:
    """Help text of a vectors argument: a file, or an installed data set by name."""
    return f"{what}: .npy, .pt or .csv, or an installed data set ({', '.join(DATA_SETS)})"


#: The most bits per codebook index ``--bits`` accepts: K = 2**bits codewords are allocated.
MAX_BITS = 30


def bits_int(text: str) -> int:
    """argparse type: bits per codebook index, an integer in ``[1, MAX_BITS]``."""
    value = _int_at_least(text, 1)
    if value > MAX_BITS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_BITS} bits (2**bits codewords "
                                         f"are allocated), got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def add_chunk_arguments(p: argparse.ArgumentParser, *positionals: tuple[str, str]) -> None:
    """The ``(name, help)`` positionals, then ``--chunk``, ``--quiet`` and ``--threads``, of
    the commands that run a quantizer over a file of vectors (``encode``, ``decode``,
    ``eval``)."""
    for name, text in positionals:
        p.add_argument(name, help=text)
    p.add_argument("--chunk", type=positive_int, default=CHUNK, metavar="N",
                   help="vectors quantized at once, to bound the memory "
                   "(default: %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_threads(p)


def load_eval_quantizer(args: argparse.Namespace) -> Any:
    """Set ``--threads`` and return the quantizer of ``args.checkpoint`` in eval mode."""
    from ...training.checkpoint import load_quantizer

    set_threads(args.threads)
    quantizer, _ = load_quantizer(args.checkpoint)
    return quantizer.eval()


def in_chunks(fn: Callable[[Any], Any], x: Any, args: argparse.Namespace, desc: str, *,
              tail: int = 1) -> Any:
    """``fn`` over ``x`` (``(..., *item)``, ``tail`` axes per item) in chunks of
    ``args.chunk`` rows without gradients, with a progress bar unless ``args.quiet``
    (:func:`vqkit.functional.map_chunks`)."""
    import torch

    from ...functional.chunks import map_chunks
    from ...progress import bar_callback

    bar = bar_callback(desc, enabled=not args.quiet, unit="vector")
    with torch.no_grad():
        return map_chunks(fn, x, tail=tail, chunk=args.chunk, progress=bar)


def make_learning(name: str, ema_decay: float) -> Any:
    """The codebook learning called ``name``; ``ema_decay`` is EMA's decay."""
    from ...codebooks import EMA
    from ...registry import LEARNINGS

    cls = LEARNINGS.lookup(name)
    return cls(decay=ema_decay) if cls is EMA else cls()


def make_quantizer(settings: Mapping[str, Any], dim: int) -> Any:
    """Build the quantizer that ``fit``'s ``settings`` describe for vectors of size ``dim``."""
    from ...quantizers.build import build_parameterisation, build_quantizer, takes_argument

    kind = settings["quantizer"]
    options: dict[str, Any] = {}
    size: int | None = int(settings["codebook_size"])
    if not takes_argument(kind, "codebook_size"):
        size = None
    if settings.get("initial_size"):
        options["initial_size"] = int(settings["initial_size"])
    if takes_argument(kind, "levels"):  # FSQ family: the codebook is the grid of the levels
        if not settings.get("levels"):
            raise ValueError(f"--quantizer {kind} needs --levels, e.g. --levels 8 5 5 5")
        options["levels"], size = tuple(int(v) for v in settings["levels"]), None
    elif settings.get("levels"):
        raise ValueError(f"--levels applies to fsq/rfsq only, not --quantizer {kind}")
    # A quantizer without an estimator or a learnt codebook takes the defaults silently and
    # refuses anything else (build_quantizer says so).
    learning = None
    if takes_argument(kind, "learning") or settings["learning"] != "gradient":
        learning = make_learning(settings["learning"], settings["ema_decay"])
    codebook, codebook_dim = settings.get("codebook", "direct"), settings.get("codebook_dim")
    if codebook != "direct" or codebook_dim is not None:
        if not takes_argument(kind, "parameterisation"):
            raise ValueError(f"--codebook/--codebook-dim apply to vq, pvq, rvq and avq, not "
                             f"--quantizer {kind}")
        options["parameterisation"] = build_parameterisation(codebook, codebook_dim)
    if settings.get("beam") is not None:
        from ...quantizers.encoders import BeamSearch

        if not takes_argument(kind, "encoder"):
            raise ValueError(f"--beam applies to rvq and avq (their encoder's beam width), not "
                             f"--quantizer {kind}")
        options["encoder"] = BeamSearch(int(settings["beam"]))
    estimator = None
    if takes_argument(kind, "estimator") or settings["estimator"] != "nsvq":
        estimator = settings["estimator"]
    return build_quantizer(
        kind, dim, size, int(settings["num_codebooks"]), estimator=estimator,
        learning=learning, **options,
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
