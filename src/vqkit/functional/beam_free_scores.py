"""Candidate errors of the free-order (additive VQ) beam search: two strategies, one answer.

At each step every kept tuple (beam ``b`` of vector ``i``, partial sum ``s_b`` of its chosen
codewords) is scored against every codeword ``c`` of the codebooks it has not used:

    ||x - s_b - c||^2 = ||x - s_b||^2 + (||c||^2 - 2 <x, c>) + sum_j 2 <c_j, c>

- :class:`TableScores` reads that sum from precomputed tables (the look-up-table search of
  FAISS's ``use_beam_LUT`` [douze2024faiss], the cross terms of [babenko2014aq]): the
  vector's ``||c||^2 - 2 <x, c>`` row, the beam's error ``||x - s_b||^2`` and one row of
  ``2 <c_j, c>`` per chosen codeword ``c_j``, added in one ``embedding_bag`` per step, so a
  candidate costs ``s + 2`` additions at step ``s`` instead of a ``D``-dimensional product;
- :class:`DirectScores` forms the residual ``x - s_b`` and takes its distance to the codewords
  (a ``D``-dimensional product per beam and codeword, the reference the tables reproduce up
  to fp32 rounding).

Both return the errors of the unused codebooks only, in a compact ``(n, B, J, K)`` layout: slot
``j`` is the beam's ``j``-th unused codebook in ascending order (``unused[i, b, j]``), so the
flattened order of a beam's candidates is the order of their pool rows. Codebooks shorter than
the longest are padded to ``K`` rows whose error is ``+inf``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def padded_pool(books: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """The codebooks as one ``(M, K, D)`` fp32 tensor (``K`` the longest) and its
    ``(M, K)`` squared norms, ``+inf`` at the padding rows (which are zero)."""
    size = max(c.shape[0] for c in books)
    pool = books[0].new_zeros(len(books), size, books[0].shape[1])
    sq = books[0].new_full((len(books), size), float("inf"))
    for m, c in enumerate(books):
        pool[m, : c.shape[0]] = c
        sq[m, : c.shape[0]] = c.pow(2).sum(dim=1)
    return pool, sq


class TableScores:
    """Candidate errors from ``<x, c>`` and the codewords' cross inner products.

    Args:
        books: M fp32 codebooks ``(K_m, D)``.
        rows: the most vectors one chunk holds.
        width: the beam width W (sizes the rows of beam errors).

    Raises:
        ValueError: ``books`` is empty or ``rows`` or ``width`` is below 1.
    """

    def __init__(self, books: Sequence[Tensor], rows: int, width: int) -> None:
        if len(books) == 0 or rows < 1 or width < 1:
            raise ValueError(f"need codebooks, rows >= 1 and width >= 1, got {len(books)}, "
                             f"{rows}, {width}")
        pool, self.pool_sq = padded_pool(books)
        self.num, self.size, _ = pool.shape
        self.pool = pool.reshape(self.num * self.size, -1)
        cross = self.pool.shape[0] * self.num  # rows of the cross table
        # Rows of width K: [2 <c_p, C_u> at p M + u | per chunk: ||C_u||^2 - 2 <x_i, C_u> at
        # cross + i M + u | per step: ||x_i - s_b||^2 repeated, at cross + rows M + i B + b].
        self.buffer = pool.new_empty(cross + rows * (self.num + width), self.size)
        torch.mm(self.pool, self.pool.t(), out=self.buffer[:cross].view(self.pool.shape[0], -1))
        self.buffer[:cross].mul_(2.0)
        self.base_row, self.err_row = cross, cross + rows * self.num
        self.x_sq: Tensor | None = None

    def start(self, x: Tensor) -> Tensor:
        """Load a chunk ``x (n, D)``; returns ``||x||^2`` ``(n, 1)``, the empty beam's error."""
        n = x.shape[0]
        base = self.buffer[self.base_row : self.base_row + n * self.num]
        torch.addmm(self.pool_sq.reshape(-1), x, self.pool.t(), beta=1.0, alpha=-2.0,
                    out=base.view(n, -1))
        return x.pow(2).sum(dim=1, keepdim=True)

    def scores(self, chosen: Tensor, unused: Tensor, err: Tensor) -> Tensor:
        """Errors ``(n, B, J, K)`` of extending each beam by each codeword of its unused
        codebooks, from ``chosen (n, B, s)`` padded pool rows ``m K + k``, ``unused (n, B, J)``
        codebook ids (ascending) and the beams' errors ``err (n, B)``."""
        n, beams, steps = chosen.shape
        slots = unused.shape[2]
        if steps == 0:  # the empty beam, with every codebook unused: the vector's own rows
            base = self.buffer[self.base_row : self.base_row + n * self.num]
            return base.view(n, 1, slots, self.size) + err[..., None, None]
        err_rows = self.buffer[self.err_row : self.err_row + n * beams]
        err_rows.copy_(err.reshape(-1, 1).expand(-1, self.size))
        vec = torch.arange(n, device=err.device)[:, None, None] * self.num
        beam = torch.arange(n * beams, device=err.device).view(n, beams, 1, 1)
        idx = torch.cat([
            (vec + unused + self.base_row)[..., None],
            (beam + self.err_row).expand(n, beams, slots, 1),
            chosen[:, :, None, :] * self.num + unused[..., None],
        ], dim=3)
        out = F.embedding_bag(idx.view(-1, steps + 2), self.buffer, mode="sum")
        return out.view(n, beams, slots, self.size)


class DirectScores:
    """Candidate errors from explicit residuals (a ``D``-dimensional product per candidate).

    Args:
        books: M fp32 codebooks ``(K_m, D)``.

    Raises:
        ValueError: ``books`` is empty.
    """

    def __init__(self, books: Sequence[Tensor]) -> None:
        if len(books) == 0:
            raise ValueError("need at least one codebook")
        pool, self.pool_sq = padded_pool(books)
        self.num, self.size, _ = pool.shape
        self.pool = pool.reshape(self.num * self.size, -1)
        self.x: Tensor | None = None

    def start(self, x: Tensor) -> Tensor:
        """Load a chunk ``x (n, D)``; returns ``||x||^2`` ``(n, 1)``, the empty beam's error."""
        self.x = x
        return x.pow(2).sum(dim=1, keepdim=True)

    def scores(self, chosen: Tensor, unused: Tensor, err: Tensor) -> Tensor:
        """As :meth:`TableScores.scores`; ``err`` is recomputed from the residuals.

        Raises:
            RuntimeError: no chunk was loaded by :meth:`start`.
        """
        if self.x is None:
            raise RuntimeError("call start() before scores()")
        n, beams, steps = chosen.shape
        residual = self.x[:, None, :] - self.pool[chosen].sum(dim=2)  # (n, B, D)
        flat = residual.reshape(n * beams, -1)
        d = torch.addmm(self.pool_sq.reshape(-1), flat, self.pool.t(), beta=1.0, alpha=-2.0)
        d = d.add_(flat.pow(2).sum(dim=1, keepdim=True)).view(n, beams, self.num, self.size)
        return d.gather(2, unused[..., None].expand(-1, -1, -1, self.size))


__all__ = ["DirectScores", "TableScores", "padded_pool"]
