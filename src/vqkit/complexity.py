"""Encoding complexity of residual, product and additive VQ in WMOPS ([vali2023rpavq]).

The operation-count model of [vali2023rpavq] (``complexity.py`` of [vali2023rpavqcode], with
the ITU-T G.191 STL 2009 weights [itut2009stl]): additions, multiplications and moves weigh 1
and branches 4 in single precision (2, 2, 2 and 4 in double precision); the result is the
weighted count divided by 1e6, per encoded vector. Counting rules:

- distances to ``n`` codewords of dimension ``d``: ``n (2d - 1)`` additions, ``n d``
  multiplications;
- argmin over ``n``: ``n - 1`` additions and ``n - 1`` moves; a partial sort selecting ``W``
  of ``n`` is ``W`` successive argmins over ``n, n - 1, ..., n - W + 1``;
- residual and product VQ count ``M - 1`` stage searches (as published);
- additive VQ counts the whole beam search of §4.4.

The published figures (Fig. 4c: D = 64, M = 4, W = 16 at every bitrate; Fig. 6b: D = 128,
M = 4, W = min(K, 64)) are reproduced exactly by these formulas, including Fig. 4c at 12 bits
where W = 16 exceeds K = 8 and the partial-sort terms are applied as written (some go
negative); ``strict=True`` rejects such a configuration instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from math import comb


@dataclass(frozen=True)
class OpWeights:
    """ITU-T STL weights of the four operation classes."""

    add: int
    mul: int
    move: int
    branch: int


SINGLE = OpWeights(add=1, mul=1, move=1, branch=4)
DOUBLE = OpWeights(add=2, mul=2, move=2, branch=4)


class _Counter:
    def __init__(self) -> None:
        self.add = self.mul = self.move = self.branch = 0.0

    def distances(self, n: float, dim: float, times: int = 1) -> None:
        self.add += times * n * (2 * dim - 1)
        self.mul += times * n * dim

    def argmin(self, n: float) -> None:
        self.add += n - 1
        self.move += n - 1

    def partial_sort(self, n: float, select: int, times: int = 1) -> None:
        for _ in range(times):
            for j in range(select):
                self.argmin(n - j)

    def wmops(self, w: OpWeights) -> float:
        return (self.add * w.add + self.mul * w.mul + self.move * w.move
                + self.branch * w.branch) / 1e6


def _check(dim: int, codebook_size: int, num_codebooks: int) -> None:
    for name, value in (("dim", dim), ("codebook_size", codebook_size),
                        ("num_codebooks", num_codebooks)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def rvq_wmops(dim: int, codebook_size: int, num_codebooks: int, *,
              weights: OpWeights = SINGLE) -> float:
    """WMOPS of greedy residual-VQ encoding of one vector ([vali2023rpavq]; ``M - 1`` stage
    searches counted, as published).

    Raises:
        ValueError: ``dim``, ``codebook_size`` or ``num_codebooks`` is not an int ``>= 1``.

    Example:
        >>> round(math.log10(rvq_wmops(64, 8, 4)), 3)   # Fig. 4c, RVQ at 12 bits
        -2.289
    """
    _check(dim, codebook_size, num_codebooks)
    c = _Counter()
    for stage in range(1, num_codebooks):
        c.distances(codebook_size, dim)
        c.argmin(codebook_size)
        c.move += dim  # store the selected codeword
        if stage != num_codebooks - 1:
            c.add += dim  # the next residual
    c.add += (num_codebooks - 1) * dim  # sum of the selected codewords
    return c.wmops(weights)


def pvq_wmops(dim: int, codebook_size: int, num_codebooks: int, *,
              weights: OpWeights = SINGLE) -> float:
    """WMOPS of product-VQ encoding of one vector (sub-vectors of ``dim / num_codebooks``;
    [vali2023rpavq], ``M - 1`` sub-space searches counted, as published).

    Raises:
        ValueError: ``dim``, ``codebook_size`` or ``num_codebooks`` is not an int ``>= 1``.

    Example:
        >>> round(math.log10(pvq_wmops(64, 8, 4)), 3)   # Fig. 4c, PVQ at 12 bits
        -2.871
    """
    _check(dim, codebook_size, num_codebooks)
    sub = dim / num_codebooks
    c = _Counter()
    c.move += dim  # split
    for _ in range(1, num_codebooks):
        c.distances(codebook_size, sub)
        c.argmin(codebook_size)
        c.move += sub
    c.move += dim  # concatenate
    return c.wmops(weights)


def avq_wmops(dim: int, codebook_size: int, num_codebooks: int, beam_width: int, *,
              weights: OpWeights = SINGLE, strict: bool = False) -> float:
    """WMOPS of additive-VQ beam-search encoding of one vector ([vali2023rpavqcode]).

    Args:
        dim: D.
        codebook_size: K.
        num_codebooks: M.
        beam_width: W.
        weights: :data:`SINGLE` (default) or :data:`DOUBLE` precision weights.
        strict: raise ValueError when ``beam_width > codebook_size`` (the published Fig. 4c
            uses W = 16 with K = 8, so the default applies the formula as written).

    Raises:
        ValueError: ``dim``, ``codebook_size``, ``num_codebooks`` or ``beam_width`` is not an
            int ``>= 1``, or (``strict``) ``beam_width > codebook_size``.

    Example:
        >>> round(math.log10(avq_wmops(64, 8, 4, 16)), 3)   # Fig. 4c, AVQ at 12 bits
        -0.31
    """
    _check(dim, codebook_size, num_codebooks)
    if isinstance(beam_width, bool) or not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"beam_width must be an int >= 1, got {beam_width!r}")
    if strict and beam_width > codebook_size:
        raise ValueError(
            f"beam_width must be <= codebook_size={codebook_size}, got {beam_width}"
        )
    w, k, m = beam_width, codebook_size, num_codebooks
    c = _Counter()
    c.distances(m * k, dim)  # step 1: the whole pool
    c.partial_sort(m * k, w)
    c.move += w
    for step in range(1, m):
        c.move += step * w * dim  # gather the tuples' codewords
        c.add += step * w * dim  # their residuals
        c.branch += comb(m, step) - 1  # skip the used codebooks
        c.distances((m - step) * k, dim, times=w)
        c.partial_sort((m - step) * k, w, times=w)
        c.move += w * w  # store W^2 candidate tuples
        c.move += w * w * dim  # their reconstructions
        c.add += w * w * step * dim
        c.add += w * w * (2 * dim - 1)  # W^2 tuple MSEs
        c.mul += w * w * (dim + 1)
        if step == m - 1:
            c.argmin(w * w)
        else:
            c.partial_sort(w * w, w)
            c.move += w
    return c.wmops(weights)


def log10_wmops(kind: str, dim: int, bits: int, num_codebooks: int, beam_width: int = 1) -> float:
    """``log10`` WMOPS of ``kind`` ("AVQ", "RVQ", "PVQ") at ``bits`` per vector, split evenly
    over the codebooks (the unit of the published figures).

    Raises:
        ValueError: ``bits`` is not a multiple of ``num_codebooks``, ``kind`` is not "AVQ",
            "RVQ" or "PVQ", or a size is invalid (as :func:`avq_wmops`).

    Example:
        >>> round(log10_wmops("AVQ", 128, 40, 4, beam_width=64), 3)   # Fig. 6b, 40 bits
        2.328
    """
    if bits % num_codebooks:
        raise ValueError(f"bits must be a multiple of num_codebooks={num_codebooks}, got {bits}")
    size = 2 ** (bits // num_codebooks)
    if kind == "AVQ":
        return math.log10(avq_wmops(dim, size, num_codebooks, beam_width))
    if kind == "RVQ":
        return math.log10(rvq_wmops(dim, size, num_codebooks))
    if kind == "PVQ":
        return math.log10(pvq_wmops(dim, size, num_codebooks))
    raise ValueError(f"kind must be 'AVQ', 'RVQ' or 'PVQ', got {kind!r}")
