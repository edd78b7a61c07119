"""Batched beam search over several codebooks (residual and additive VQ encoding).

Both searches keep, for every vector, the ``width`` partial tuples with the lowest error
``||x - sum of the tuple's codewords||^2`` and extend each by the codewords nearest to its
residual. Everything is batched over vectors (the Python loops run over steps only); the
vectors are processed in chunks so at most about ``chunk_elements`` distances exist at once.
Distances are fp32, and ties go to the lowest beam rank, then the lowest codeword index
(stable sorts), so the result is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ..types import Progress
from .beam_free import free_order_search
from .beam_free_scores import DirectScores, TableScores
from .beam_select import smallest as _smallest
from .beam_tables import ResidualTables
from .chunks import chunk_slices
from .search import DEFAULT_CHUNK_ELEMENTS, first_argmin

#: Largest pool (M K rows) squared for which additive beam search uses the codeword Gram
#: matrix (the look-up-table search of FAISS's ``use_beam_LUT``) instead of a D-dimensional
#: product per candidate: 2^24 entries = 64 MiB.
LUT_ELEMENTS = 1 << 24
#: Candidates (vectors x beams x codewords) per chunk of the residual table search: 4 MiB of
#: fp32; measured on one CPU thread, smaller chunks lose to the per-step overhead.
CACHE_ELEMENTS = 1 << 20
#: Candidate errors per chunk of the additive (free-order) search: 8 MiB of fp32; measured on
#: one CPU thread at 8 x 256 codewords, 2-4x larger or smaller chunks are no faster.
FREE_CACHE_ELEMENTS = 1 << 21

def _check(x: Tensor, codebooks: Sequence[Tensor], width: int) -> None:
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D (N, D), got shape {tuple(x.shape)}")
    if len(codebooks) == 0:
        raise ValueError("codebooks must hold at least one (K, D) tensor")
    for m, c in enumerate(codebooks):
        if c.dim() != 2 or c.shape[1] != x.shape[1]:
            raise ValueError(
                f"codebooks[{m}] must have shape (K, {x.shape[1]}), got {tuple(c.shape)}"
            )
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be an int >= 1, got {width!r}")


def _distances(r: Tensor, c: Tensor, c_sq: Tensor) -> tuple[Tensor, Tensor]:
    """``||c_k||^2 - 2 r_b.c_k`` for ``r (n, B, D)``, ``c (P, D)`` -> ``(n, B, P)``, and
    ``||r_b||^2`` ``(n, B, 1)``: their sum is the squared distance. The ``||r||^2`` term does
    not change a beam's ranking, so callers add it to the survivors only."""
    n, b, d = r.shape
    flat = r.reshape(n * b, d)
    dist = torch.addmm(c_sq, flat, c.t(), beta=1.0, alpha=-2.0)
    return dist.reshape(n, b, -1), flat.pow(2).sum(dim=1).reshape(n, b, 1)


def residual_beam_search(
    x: Tensor,
    codebooks: Sequence[Tensor],
    width: int,
    *,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    use_lut: bool | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """Stage-ordered beam search of residual (multi-stage) VQ.

    Step ``m`` extends each of the kept partial tuples by every codeword of codebook ``m`` and
    keeps the ``width`` with the lowest error. ``width=1`` is greedy residual VQ
    ([vali2025thesis] §2.7.1); a width of ``prod K_m`` over all but the last stage is exhaustive.
    The vectors and the first codebook are centred on that codebook's mean first, so data that
    share a large offset are searched as accurately as centred data.

    Args:
        x: ``(N, D)`` vectors.
        codebooks: M codeword matrices ``(K_m, D)``, searched in this order.
        width: W, the partial tuples kept between stages.
        chunk_elements: bound on the distances held at once.
        use_lut: score the candidates from precomputed inner products
            (:class:`~vqkit.functional.beam_tables.ResidualTables`, FAISS's beam look-up
            table) instead of a ``D``-dimensional product per beam and codeword; ``None``
            (default) uses them when ``W > 1``, the ``(P, P)`` table of the ``P = sum K_m``
            codewords has at most :data:`LUT_ELEMENTS` entries and the search is long enough
            to repay it (``N W M >= P``); at ``W = 1`` without tables each stage is one
            matrix product and an argmin. All give the same search up to fp32 rounding.
        progress: called as ``progress(rows_done, N, {})`` after each chunk of vectors.

    Returns:
        ``(N, M)`` int64 indices, one per codebook.

    Raises:
        ValueError: ``x`` is not 2-D, ``codebooks`` is empty, a codebook is not
            ``(K_m, D)`` with the ``D`` of ``x``, or ``width`` is not an int >= 1.

    Example:
        >>> c0 = torch.tensor([[0.0, 0.0], [4.0, 0.0]]); c1 = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
        >>> residual_beam_search(torch.tensor([[5.0, 0.0]]), [c0, c1], width=2).tolist()
        [[1, 1]]
    """
    return _residual_search(x, codebooks, width, 1, chunk_elements, use_lut, progress)[:, 0]


def residual_beam(
    x: Tensor,
    codebooks: Sequence[Tensor],
    width: int,
    *,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    use_lut: bool | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """The whole final beam of :func:`residual_beam_search`: every kept tuple, best first.

    The same stage-ordered search, but the last stage keeps ``width`` tuples instead of one:
    what FAISS's ``ResidualQuantizer`` holds for every training vector between the stages of
    its training ([douze2024faiss]). Entry 0 is :func:`residual_beam_search`'s answer.

    Args:
        x: ``(N, D)`` vectors.
        codebooks: M codeword matrices ``(K_m, D)``, searched in this order.
        width: W, the partial tuples kept after every stage, the last included.
        chunk_elements, use_lut, progress: as :func:`residual_beam_search`.

    Returns:
        ``(N, B, M)`` int64 indices, ``B = min(W, prod K_m)`` tuples per vector in ascending
        order of error (ties: the lower beam rank, then the lower codeword index).

    Raises:
        ValueError: as :func:`residual_beam_search`.

    Example:
        >>> c0 = torch.tensor([[0.0, 0.0], [4.0, 0.0]]); c1 = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
        >>> residual_beam(torch.tensor([[5.0, 0.0]]), [c0, c1], width=3).tolist()
        [[[1, 1], [1, 0], [0, 1]]]
    """
    return _residual_search(x, codebooks, width, width, chunk_elements, use_lut, progress)


def _residual_search(
    x: Tensor,
    codebooks: Sequence[Tensor],
    width: int,
    last: int,
    chunk_elements: int,
    use_lut: bool | None,
    progress: Progress | None,
) -> Tensor:
    """The stage-ordered search keeping ``width`` tuples between stages and ``last`` after
    the last one: ``(N, min(last, prod K_m), M)`` indices."""
    _check(x, codebooks, width)
    n = x.shape[0]
    sizes = [c.shape[0] for c in codebooks]
    pool = sum(sizes)
    if use_lut is None:
        # The tables cost about P^2 D / 2 products once; the direct search W K D per vector
        # and stage more than the look-ups. Greedy (W = 1) is one matrix product and an
        # argmin per stage, faster than the table look-ups.
        use_lut = width > 1 and pool * pool <= LUT_ELEMENTS and n * width * len(sizes) >= pool
    widest = width * max(sizes)
    rows = max(1, chunk_elements // max(widest, 1))
    if use_lut or width == 1:  # bounded chunks keep the (rows, W, K) candidates near the core
        rows = min(rows, max(1, CACHE_ELEMENTS // widest))
    kept = min(last, math.prod(sizes))
    out = torch.empty(n, kept, len(codebooks), dtype=torch.long, device=x.device)
    with torch.no_grad(), torch.autocast(device_type=x.device.type, enabled=False):
        books = [c.detach().float() for c in codebooks]
        # Every tuple holds one codeword of the first stage: shifting x and that codebook by
        # its mean changes no residual, and keeps the expansion exact for data far from the
        # origin (see vqkit.functional.search).
        centre = books[0].mean(dim=0)
        books[0] = books[0] - centre
        xf = x.detach().float() - centre
        if use_lut:
            search = ResidualTables(books, min(rows, max(n, 1))).search
        elif width == 1:
            search = _ResidualGreedy(books).search
        else:
            search = _ResidualDirect(books).search
        for part in chunk_slices(n, rows, progress):
            out[part] = search(xf[part], width, last)
    return out


class _ResidualGreedy:
    """Width 1: at every stage the codeword nearest to the residual (the lowest index among
    equal distances, as the beam's stable sort), and the residual less that codeword — FAISS's
    ``ResidualQuantizer`` at ``max_beam_size = 1`` without look-up tables, the same codes."""

    def __init__(self, books: Sequence[Tensor]) -> None:
        self.books = list(books)
        self.norms = [c.pow(2).sum(dim=1) for c in self.books]

    def search(self, xs: Tensor, width: int, last: int) -> Tensor:
        """``(rows, 1, M)`` indices: width 1 keeps one tuple after every stage, the last too."""
        residual = xs.clone()
        codes = xs.new_empty(xs.shape[0], len(self.books), dtype=torch.long)
        for m, (c, c_sq) in enumerate(zip(self.books, self.norms, strict=True)):
            scores = torch.addmm(c_sq, residual, c.t(), beta=1.0, alpha=-2.0)
            codes[:, m] = first_argmin(scores)
            residual -= c[codes[:, m]]
        return codes[:, None, :]


class _ResidualDirect:
    """Stage-ordered beam search on explicit partial sums: a ``D``-dimensional product per
    beam and codeword at every stage (the reference the tables must reproduce)."""

    def __init__(self, books: Sequence[Tensor]) -> None:
        self.books = list(books)
        self.norms = [c.pow(2).sum(dim=1) for c in self.books]

    def search(self, xs: Tensor, width: int, last: int = 1) -> Tensor:
        """``(ns, min(last, prod K), M)`` tuples of ``xs (ns, D)``, best first."""
        ns, dim = xs.shape
        partial = xs.new_zeros(ns, 1, dim)
        paths = torch.empty(ns, 1, 0, dtype=torch.long, device=xs.device)
        for m, (c, c_sq) in enumerate(zip(self.books, self.norms, strict=True)):
            size = c.shape[0]
            d, r_sq = _distances(xs[:, None, :] - partial, c, c_sq)
            beams = d.shape[1]
            keep = min(last if m == len(self.books) - 1 else width, beams * size)
            # The best `keep` overall are among each beam's best `keep`.
            vals, code = _smallest(d, min(keep, size))  # (ns, B, k)
            vals = (vals + r_sq).reshape(ns, -1)
            _, pos = _smallest(vals, keep)
            beam = pos // code.shape[2]
            code = code.reshape(ns, -1).gather(1, pos)
            paths = torch.cat(
                [paths.gather(1, beam[..., None].expand(-1, -1, paths.shape[2])),
                 code[..., None]], dim=2,
            )
            partial = partial.gather(1, beam[..., None].expand(-1, -1, dim)) + c[code]
        return paths


def additive_beam_search(
    x: Tensor,
    codebooks: Sequence[Tensor],
    width: int,
    *,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    use_lut: bool | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """Beam search of additive VQ with a free codebook order ([vali2023rpavqcode]).

    The codebooks form one pool. Step 1 keeps the ``width`` pool rows nearest to ``x``; each
    later step proposes, for every kept tuple, the ``width`` rows nearest to the tuple's
    residual ``x - (sum of all its codewords)`` (the correct residual; the published code
    subtracts the last codeword repeatedly, §4.4) among codebooks the tuple has not used,
    scores each candidate by its error, keeps one proposal of each set of codewords reached in
    several orders (the one of lowest error; the first proposed among equal errors), and keeps
    the best ``width`` (the best one at the last step). The selection is
    :func:`vqkit.functional.beam_free_select.survivors`; the steps run in
    :func:`vqkit.functional.beam_free.free_order_search`.

    Args:
        x: ``(N, D)`` vectors.
        codebooks: M codeword matrices ``(K_m, D)``.
        width: W >= 1; 1 is greedy with free order.
        chunk_elements: bound on the distances held at once.
        use_lut: compute the candidates' errors from ``x . c`` and the codewords' Gram
            matrix (``||x - S - c||^2 = ||x - S||^2 + ||c||^2 - 2 x.c + 2 S.c``, with ``S.c``
            a sum of table entries;
            :class:`~vqkit.functional.beam_free_scores.TableScores`), ``s + 2`` additions
            per candidate at step ``s`` instead of a ``D``-dimensional product
            (:class:`~vqkit.functional.beam_free_scores.DirectScores`); ``None`` (default)
            uses the tables when the ``(P, P)`` table of the ``P = M K`` codewords (``K`` the
            largest codebook) has at most :data:`LUT_ELEMENTS` entries and the search is long
            enough to repay it (``N W M >= P``). Both give the same search up to fp32
            rounding.
        progress: called as ``progress(rows_done, N, {})`` after each chunk of vectors.

    Returns:
        ``(N, M)`` int64 indices, one per codebook.

    Raises:
        ValueError: ``x`` is not 2-D, ``codebooks`` is empty, a codebook is not
            ``(K_m, D)`` with the ``D`` of ``x``, or ``width`` is not an int >= 1.

    Example:
        >>> a = torch.tensor([[0.0, 1.0], [9.0, 0.0]]); b = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
        >>> additive_beam_search(torch.tensor([[10.0, 1.0]]), [a, b], width=4).tolist()
        [[0, 1]]
    """
    _check(x, codebooks, width)
    n = x.shape[0]
    sizes = [c.shape[0] for c in codebooks]
    padded = len(sizes) * max(sizes)  # the pool padded to M equal codebooks
    if use_lut is None:
        # The tables cost about P^2 D / 2 products once, the direct search W P D per vector
        # and step.
        use_lut = padded * padded <= LUT_ELEMENTS and n * width * len(sizes) >= padded
    # The candidates of one step, W (M - 1) K per vector at most, stay near the core.
    rows = max(1, min(chunk_elements, FREE_CACHE_ELEMENTS) // max(width * padded, 1))
    rows = min(rows, max(n, 1))
    out = torch.empty(n, len(sizes), dtype=torch.long, device=x.device)
    with torch.no_grad(), torch.autocast(device_type=x.device.type, enabled=False):
        books = [c.detach().float() for c in codebooks]
        scorer = TableScores(books, rows, width) if use_lut else DirectScores(books)
        xf = x.detach().float()
        for part in chunk_slices(n, rows, progress):
            out[part] = free_order_search(xf[part], scorer, sizes, width)
    return out
