"""What the beam-trained residual k-means fits each codebook to (the ``fit_to`` of
:meth:`~vqkit.quantizers.composite.MultiCodebookQuantizer.init_codebook_` with ``beam > 1``).

After codebooks ``0 .. m-1`` are fitted, every training vector is encoded by a stage-ordered
beam of width W over them; codebook ``m`` is then fitted by k-means to residuals
``x - (sum of a tuple's codewords)``:

- :class:`WholeBeam`: the residuals of every tuple of the beam, ``N min(W, prod K)`` rows, as
  FAISS's ``ResidualQuantizer`` trains ([douze2024faiss]; ``ResidualQuantizer::train`` runs
  its clustering on the ``n x beam_size`` residuals). Codebook ``m`` then serves every
  partial tuple the encoder's beam may still hold when it reaches stage ``m``.
- :class:`BestTuple` (the default): the residual of each vector's best tuple only, ``N`` rows.

Why the default is :class:`BestTuple`: on GloVe-50 validation vectors (100,000 training
vectors, 8 x 256 codewords, beam 8, k-means++ seeding; docs/ann.md) :class:`WholeBeam` lowered
the held-out MSE only slightly and lowered the held-out Recall@10 of the ANN benchmark
clearly; with FAISS's seeding (``seeding="random"``) it brings the MSE close to FAISS RQ's,
but the Recall@10 still stays below :class:`BestTuple`'s.

Codebook 0 is the k-means of the data under both (there is no tuple before it).
:func:`fit_rows` forms the rows, drawing the k-means subsample of
:func:`vqkit.functional.kmeans.subsample` before the residuals exist, so the ``n x beam``
rows are never all held at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..functional.beam import residual_beam, residual_beam_search
from ..functional.kmeans import subsample
from ..registry import BEAM_FITS
from ..strategy import Strategy


class BeamFit(Strategy):
    """Base class: which tuples of each vector's beam the next codebook is fitted to."""

    registry = BEAM_FITS

    def tuples(self, x: Tensor, books: Sequence[Tensor], width: int) -> Tensor:
        """``(N, B, m)`` int64 indices into ``books``: the tuples whose residuals the next
        codebook is fitted to, B per vector (``x`` ``(N, D)``, ``books`` m ``(K_j, D)``).

        Raises:
            ValueError: as :func:`vqkit.functional.beam.residual_beam_search`.
            NotImplementedError: the base class has no rule.
        """
        raise NotImplementedError(f"{type(self).__name__} does not pick tuples")


@BEAM_FITS.register
class WholeBeam(BeamFit):
    """Every tuple of the beam (FAISS's ``ResidualQuantizer`` training, [douze2024faiss]).

    Example:
        >>> c0 = torch.tensor([[0.0], [3.0], [9.0]])
        >>> WholeBeam().tuples(torch.tensor([[2.0]]), [c0], width=2).tolist()
        [[[1], [0]]]
    """

    def tuples(self, x: Tensor, books: Sequence[Tensor], width: int) -> Tensor:
        return residual_beam(x, books, width)


@BEAM_FITS.register
class BestTuple(BeamFit):
    """The lowest-error tuple of the beam only.

    Example:
        >>> c0 = torch.tensor([[0.0], [3.0], [9.0]])
        >>> BestTuple().tuples(torch.tensor([[2.0]]), [c0], width=2).tolist()
        [[[1]]]
    """

    def tuples(self, x: Tensor, books: Sequence[Tensor], width: int) -> Tensor:
        return residual_beam_search(x, books, width)[:, None, :]


def check_beam_fit(fit_to: object) -> BeamFit:
    """``fit_to``, or :class:`BestTuple` (the default) when it is None.

    Raises:
        TypeError: ``fit_to`` is neither None nor a :class:`BeamFit`.
    """
    if fit_to is None:
        return BestTuple()
    if not isinstance(fit_to, BeamFit):
        raise TypeError(f"fit_to must be WholeBeam() or BestTuple(), got {fit_to!r}")
    return fit_to


def fit_rows(
    x: Tensor,
    books: Sequence[Tensor],
    tuples: Tensor,
    max_rows: int | None,
    generator: torch.Generator | None,
) -> Tensor:
    """The residuals ``x_i - sum_j books[j][tuples[i, b, j]]``, vector-major, or the subsample
    of them that :func:`~vqkit.functional.kmeans.subsample` draws.

    The rows are those of the ``(N B, D)`` matrix of all residuals (row ``i B + b``);
    with ``max_rows`` the subsample's positions are drawn first (the same draw, from the same
    generator state, as ``subsample`` of the full matrix), and only those residuals are formed.

    Args:
        x: ``(N, D)`` vectors.
        books: m codebooks ``(K_j, D)``.
        tuples: ``(N, B, m)`` int64 indices.
        max_rows: the most rows returned; None returns all ``N B``.
        generator: random source of the subsample.

    Returns:
        ``(min(N B, max_rows), D)`` residuals in the dtype of ``x``.

    Raises:
        ValueError: ``tuples`` is not ``(N, B, len(books))``, or ``max_rows`` < 1.

    Example:
        >>> books = [torch.tensor([[1.0], [2.0]])]
        >>> fit_rows(torch.tensor([[5.0]]), books, torch.tensor([[[0], [1]]]), None, None)
        tensor([[4.],
                [3.]])
    """
    n, m = x.shape[0], len(books)
    if tuples.dim() != 3 or tuples.shape[0] != n or tuples.shape[2] != m:
        raise ValueError(f"tuples must be ({n}, B, {m}), got {tuple(tuples.shape)}")
    per = tuples.shape[1]
    rows = torch.arange(n * per, device=x.device)
    rows = subsample(rows[:, None], max_rows, generator)[:, 0]
    picked = tuples.reshape(n * per, m)[rows]
    return x[rows // per] - sum(book.to(x.dtype)[picked[:, j]] for j, book in enumerate(books))


__all__ = ["BeamFit", "BestTuple", "WholeBeam", "check_beam_fit", "fit_rows"]
