"""Exact nearest-neighbour search between vectors and a codebook.

This is the one argmin of the library. Distances are computed in fp32 with autocast disabled,
ties go to the lowest index, and the work is split into row chunks so that no more than
``chunk_elements`` distances exist at once: memory stays bounded for any N x K and no N x K
one-hot is ever built.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Distances held at once by one chunk (16 Mi elements = 64 MiB in fp32).
DEFAULT_CHUNK_ELEMENTS = 1 << 24


def _check(x: Tensor, codewords: Tensor, k: int) -> None:
    if x.dim() != 2 or codewords.dim() != 2:
        raise ValueError(
            f"x and codewords must be 2-D (N, D) and (K, D), got {tuple(x.shape)} and "
            f"{tuple(codewords.shape)}"
        )
    if x.shape[1] != codewords.shape[1]:
        raise ValueError(
            f"x has dimension {x.shape[1]} but codewords have dimension {codewords.shape[1]}"
        )
    if not 1 <= k <= codewords.shape[0]:
        raise ValueError(f"k must be in [1, {codewords.shape[0]}], got {k}")


def _smallest(d: Tensor, k: int) -> tuple[Tensor, Tensor]:
    if k == 1:
        # torch.min returns the first minimal index, which is the lowest-index tie rule.
        vals, idx = d.min(dim=1, keepdim=True)
        return vals, idx
    # A stable sort keeps tied candidates in index order; topk gives no such guarantee.
    vals, idx = torch.sort(d, dim=1, stable=True)
    return vals[:, :k], idx[:, :k]


def nearest_neighbor(
    x: Tensor,
    codewords: Tensor,
    k: int = 1,
    *,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> tuple[Tensor, Tensor]:
    """The ``k`` nearest codewords of each row of ``x`` in squared Euclidean distance.

    Distances are ``||x||^2 - 2 x.c + ||c||^2`` (METHODS.md §1) evaluated in fp32 even under
    autocast; ties go to the lowest index. No gradient flows through the search.

    Args:
        x: ``(N, D)`` query vectors, any floating dtype.
        codewords: ``(K, D)`` codebook.
        k: number of neighbours per row, ``1 <= k <= K``.
        chunk_elements: upper bound on the distances held in memory at once.

    Shape:
        x: ``(N, D)``; codewords: ``(K, D)``; both outputs ``(N, k)``.

    Returns:
        ``(sq_distances, indices)``: fp32 squared distances sorted ascending, and int64 indices.

    Example:
        >>> c = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
        >>> d, i = nearest_neighbor(torch.tensor([[0.9, 0.0], [0.5, 0.0]]), c)
        >>> i.flatten().tolist()   # the tie at 0.5 goes to index 0; the duplicate row 2 never wins
        [1, 0]
    """
    _check(x, codewords, k)
    n, size = x.shape[0], codewords.shape[0]
    out_d = torch.empty(n, k, device=x.device, dtype=torch.float32)
    out_i = torch.empty(n, k, device=x.device, dtype=torch.long)
    rows = max(1, chunk_elements // max(size, 1))
    with torch.no_grad(), torch.autocast(device_type=x.device.type, enabled=False):
        xf = x.detach().float()
        cf = codewords.detach().float()
        c_sq = cf.pow(2).sum(dim=1)
        ct = cf.t()
        for start in range(0, n, rows):
            xs = xf[start : start + rows]
            # ||c||^2 - 2 x.c: the ||x||^2 term does not change the argmin, so it is added
            # only to the k survivors.
            d = torch.addmm(c_sq, xs, ct, beta=1.0, alpha=-2.0)
            vals, idx = _smallest(d, k)
            x_sq = xs.pow(2).sum(dim=1, keepdim=True)
            out_d[start : start + rows] = (vals + x_sq).clamp_min_(0.0)
            out_i[start : start + rows] = idx
    return out_d, out_i
