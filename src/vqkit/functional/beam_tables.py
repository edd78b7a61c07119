"""Stage-ordered beam search from precomputed codeword inner products (FAISS's beam LUT).

The error of extending a partial sum ``s_b`` (beam ``b``) by codeword ``c`` of the next stage is

    ||x - s_b - c||^2 = ||x - s_b||^2 + (||c||^2 - 2 <x, c>) + 2 sum_j <c_j, c>

where the ``c_j`` are the beam's earlier codewords. ``<x, c>`` for every codebook is one matrix
product per chunk, and the cross products ``<c_j, c>`` of each stage with all earlier stages
are a table computed once per call, so a step costs ``m K`` additions per beam instead of a
``D``-dimensional product per beam and codeword (the look-up-table variant of FAISS's
``ResidualQuantizer``, ``use_beam_LUT=1`` [douze2024faiss]; the cross terms of
[babenko2014aq]). The sums run in one
``embedding_bag`` per step (the beam's rows of the table plus the vector's own
``||c||^2 - 2 <x, c>`` row) and the survivors are chosen by
:func:`vqkit.functional.beam_select.smallest_blocked` over all ``B K`` candidates at once.
Ties go to the lowest beam rank, then the lowest codeword index, as in the direct search.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .beam_select import smallest_blocked


class ResidualTables:
    """The cross-product tables of ``books`` and the beam search that reads them.

    Args:
        books: M fp32 codebooks ``(K_m, D)``, searched in this order (already centred).
        rows: the most vectors one :meth:`search` call receives (sizes a buffer per stage).

    Raises:
        ValueError: ``books`` is empty or ``rows`` is below 1.
    """

    def __init__(self, books: Sequence[Tensor], rows: int) -> None:
        if len(books) == 0 or rows < 1:
            raise ValueError(f"need at least one codebook and rows >= 1, got {len(books)}, {rows}")
        self.books = list(books)
        self.pool = torch.cat(self.books)
        self.pool_sq = self.pool.pow(2).sum(dim=1)
        sizes = [c.shape[0] for c in self.books]
        self.offsets = [sum(sizes[:m]) for m in range(len(sizes))]
        # buffers[m] = [2 <c_j, c> for every earlier codeword c_j (rows) and codeword c of
        # stage m (columns); then one row per vector, written per chunk: ||c||^2 - 2 <x, c>].
        self.buffers = []
        for m, c in enumerate(self.books):
            off = self.offsets[m]
            buf = c.new_empty(off + rows, c.shape[0])
            torch.mm(self.pool[:off], c.t(), out=buf[:off])
            buf[:off].mul_(2.0)
            self.buffers.append(buf)

    def search(self, x: Tensor, width: int, last: int = 1) -> Tensor:
        """Indices ``(n, min(last, prod K_m), M)`` of the ``last`` best tuples of each row of
        ``x (n, D)`` (``n <= rows``), best first; ``width`` tuples are kept between stages."""
        n = x.shape[0]
        base = torch.addmm(self.pool_sq, x, self.pool.t(), beta=1.0, alpha=-2.0)  # (n, P)
        err = x.pow(2).sum(dim=1, keepdim=True)  # (n, B): ||x - s_b||^2
        path = torch.empty(n, 1, 0, dtype=torch.long, device=x.device)  # pool rows per beam
        final = len(self.books) - 1
        for m, c in enumerate(self.books):
            size, off = c.shape[0], self.offsets[m]
            own = base[:, off : off + size]
            beams = err.shape[1]
            if m == 0:
                d = own + err
            else:
                buf = self.buffers[m]
                buf[off : off + n] = own
                mine = torch.arange(off, off + n, device=x.device).repeat_interleave(beams)
                idx = torch.cat([path.reshape(n * beams, m), mine[:, None]], dim=1)
                d = F.embedding_bag(idx, buf[: off + n], mode="sum").view(n, beams, size)
                d = d.add_(err[..., None]).view(n, beams * size)
            keep = min(last if m == final else width, beams * size)
            err, flat = smallest_blocked(d, keep)
            beam = torch.div(flat, size, rounding_mode="floor")
            chosen = flat - beam * size + off
            path = torch.cat([path.gather(1, beam[..., None].expand(-1, -1, m)),
                              chosen[..., None]], dim=2)
        return path - torch.tensor(self.offsets, device=x.device)


__all__ = ["ResidualTables"]
