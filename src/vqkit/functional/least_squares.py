"""Least-squares codebooks of a sum of codebooks given fixed codes (FAISS's codebook refinement).

With the codes of N vectors fixed, the reconstruction ``x_hat_i = sum_m C_m[idx_im]`` is linear
in the codewords: ``X_hat = B C`` with ``B`` the ``(N, P)`` one-hot code matrix (one 1 per
codebook in each row, ``P = sum K_m``) and ``C`` all codewords stacked ``(P, D)``. The
codewords minimising ``||X - B C||^2`` solve the normal equations ``(B^T B) C = B^T X``
([babenko2014aq]; FAISS's ``ResidualQuantizer::retrain_AQ_codebook``, [douze2024faiss]).
``B^T B`` holds how often two codewords are used together and ``B^T X`` the sum of the vectors
using each codeword: both are sums over vectors, so under DDP they are all-reduced and every
rank solves the same system.

The system is always singular: adding ``v`` to every codeword of one codebook and subtracting
it from every codeword of another changes no reconstruction. The solution here is the
minimum-norm one (the pseudo-inverse, as FAISS's ``sgelsd``) moved into the gauge that
stage-ordered (residual) search needs: every codebook after the first has zero mean over its
uses, and the first carries the data's mean. Codewords no code uses keep their values.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .kmeans import AllReduce


def least_squares_codebooks(
    x: Tensor,
    indices: Tensor,
    books: Sequence[Tensor],
    *,
    all_reduce: AllReduce | None = None,
) -> list[Tensor]:
    """The codebooks minimising ``sum_i ||x_i - sum_m books[m][indices[i, m]]||^2`` with the
    indices fixed, over all ranks' rows.

    Args:
        x: ``(N, D)`` local vectors.
        indices: ``(N, M)`` int64 codes, ``indices[:, m]`` in ``[0, K_m)``.
        books: the M current codebooks ``(K_m, D)``; codewords no row uses keep their value.
        all_reduce: in-place ``(tensor, op)`` sum over ranks (see
            :mod:`vqkit.functional.kmeans`), or None for one process.

    Returns:
        M new fp32 codebooks ``(K_m, D)``: the minimum-norm least-squares solution over the
        used codewords (pseudo-inverse of ``B^T B`` in float64), then for every ``m >= 1``
        the mean of codebook ``m`` over its uses moved into codebook 0 (no reconstruction
        changes).

    Raises:
        ValueError: ``x`` is not 2-D, ``indices`` is not ``(N, M)`` for the ``N`` of ``x``
            and ``M = len(books)``, a codebook is not ``(K_m, D)``, or an index is out of
            range.

    Example:
        >>> books = [torch.zeros(2, 1), torch.zeros(2, 1)]
        >>> x = torch.tensor([[1.0], [3.0], [4.0], [6.0]])
        >>> codes = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
        >>> new = least_squares_codebooks(x, codes, books)
        >>> [b.flatten().round(decimals=4).tolist() for b in new]
        [[2.0, 5.0], [-1.0, 1.0]]
    """
    sizes = _check(x, indices, books)
    offsets = torch.tensor([sum(sizes[:m]) for m in range(len(sizes))], device=x.device)
    pool = sum(sizes)
    flat = indices.long() + offsets  # (N, M) rows of the stacked codebooks
    pairs = (flat[:, :, None] * pool + flat[:, None, :]).reshape(-1)
    gram = torch.bincount(pairs, minlength=pool * pool).double().reshape(pool, pool)
    sums = torch.zeros(pool, x.shape[1], dtype=torch.float64, device=x.device)
    xd = x.double()
    for m in range(len(sizes)):
        sums.index_add_(0, flat[:, m], xd)
    if all_reduce is not None:
        all_reduce(gram, "sum")
        all_reduce(sums, "sum")
    counts = gram.diagonal().clone()
    used = counts > 0
    solved = torch.cat([b.detach().double() for b in books]).to(x.device)
    if bool(used.any()):
        g = gram[used][:, used]
        solved[used] = torch.linalg.pinv(g, hermitian=True) @ sums[used]
    out = list(solved.split(sizes))
    for m in range(1, len(out)):
        uses = counts[offsets[m] : offsets[m] + sizes[m]]
        if float(uses.sum()) > 0:
            mean = (out[m] * uses[:, None]).sum(dim=0) / uses.sum()
            out[m] = out[m] - mean
            out[0] = out[0] + mean
    return [b.float() for b in out]


def _check(x: Tensor, indices: Tensor, books: Sequence[Tensor]) -> list[int]:
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D (N, D), got shape {tuple(x.shape)}")
    if indices.dim() != 2 or indices.shape != (x.shape[0], len(books)):
        raise ValueError(f"indices must be ({x.shape[0]}, {len(books)}), got "
                         f"{tuple(indices.shape)}")
    sizes = []
    for m, b in enumerate(books):
        if b.dim() != 2 or b.shape[1] != x.shape[1]:
            raise ValueError(f"books[{m}] must be (K, {x.shape[1]}), got {tuple(b.shape)}")
        column = indices[:, m]
        if column.numel() and (int(column.min()) < 0 or int(column.max()) >= b.shape[0]):
            raise ValueError(f"indices[:, {m}] must lie in [0, {b.shape[0]}), got "
                             f"[{int(column.min())}, {int(column.max())}]")
        sizes.append(b.shape[0])
    return sizes


__all__ = ["least_squares_codebooks"]
