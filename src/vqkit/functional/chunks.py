"""Work on many rows in chunks of a fixed size: bounded memory and progress after each chunk.

The one chunked loop of vqkit: the CLI's ``encode``, ``decode`` and ``eval``, the image codec
and :func:`vqkit.training.evaluate.evaluate` go through :func:`chunk_slices` (directly or via
:func:`map_chunks`). Quantizer ``encode`` / ``decode`` in eval mode treat each vector on its own,
so the results do not depend on the chunk size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from ..types import Progress

#: Rows per chunk when the caller does not say (65,536 vectors of 100 floats: 26 MB).
CHUNK = 65536


def chunk_slices(n: int, chunk: int = CHUNK, progress: Progress | None = None) -> Iterator[slice]:
    """``slice(start, start + chunk)`` covering ``range(n)`` in order.

    Args:
        n: rows in all.
        chunk: rows per slice (the last one may be shorter).
        progress: called as ``progress(rows_done, n, {})`` when the caller asks for the next
            slice (that is, after it has finished the previous one) and at the end, so the last
            call has ``rows_done == n``; ``progress(0, 0, {})`` once when ``n == 0``.

    Raises:
        ValueError: ``n`` is negative or ``chunk`` is below 1.

    Example:
        >>> [(s.start, s.stop) for s in chunk_slices(5, 2)]
        [(0, 2), (2, 4), (4, 5)]
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    for start in range(0, n, chunk):
        yield slice(start, min(start + chunk, n))
        if progress is not None:
            progress(min(start + chunk, n), n, {})
    if n == 0 and progress is not None:
        progress(0, 0, {})


def map_chunks(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    *,
    tail: int = 1,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> Tensor:
    """``fn`` applied to the rows of ``x`` chunk by chunk, the results put back together.

    ``x`` is ``(..., *item)`` with ``tail`` axes per item (1 for vectors ``(..., D)``, 0 for
    one index per vector, 3 for image tiles ``(N, C, T, T)``); its leading axes are flattened
    to rows, ``fn`` maps ``(n, *item)`` to ``(n, *out)``, and the result is
    ``(..., *out)``. Only one chunk's intermediates are alive at a time; the output is
    allocated once. Equal to ``fn`` on all rows at once when ``fn`` treats rows independently.

    Args:
        fn: the per-row function (e.g. ``quantizer.encode``).
        x: the input.
        tail: trailing axes of one item.
        chunk: rows per call of ``fn``.
        progress: ``progress(rows_done, rows, {})`` after each chunk (see :func:`chunk_slices`).

    Raises:
        ValueError: ``tail`` is negative or exceeds ``x.dim()``, ``chunk`` is below 1, or
            ``fn`` returns a number of rows other than it was given.

    Example:
        >>> x = torch.arange(12.0).reshape(2, 3, 2)
        >>> torch.equal(map_chunks(lambda v: v.sum(-1), x, chunk=2), x.sum(-1))
        True
    """
    if not 0 <= tail <= x.dim():
        raise ValueError(f"tail must be in [0, {x.dim()}] for a {x.dim()}-d input, got {tail}")
    lead = x.shape[: x.dim() - tail]
    rows = x.reshape(-1, *x.shape[x.dim() - tail :])
    out: Tensor | None = None
    for part in chunk_slices(rows.shape[0], chunk, progress):
        result = fn(rows[part])
        if result.shape[0] != part.stop - part.start:
            raise ValueError(f"fn returned {result.shape[0]} rows for {part.stop - part.start}")
        if out is None:
            out = torch.empty((rows.shape[0], *result.shape[1:]), dtype=result.dtype,
                              device=result.device)
        out[part] = result
    if out is None:  # no rows: let fn say what an empty result looks like
        out = fn(rows)
    return out.reshape(*lead, *out.shape[1:])


__all__ = ["CHUNK", "chunk_slices", "map_chunks"]
