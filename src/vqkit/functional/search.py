"""Exact nearest-neighbour search between vectors and a codebook.

This is the one argmin of the library. Distances are computed in fp32 (fp64 for fp64 inputs)
with autocast disabled, ties go to the lowest index, and the work is split into row chunks so
that no more than ``chunk_elements`` distances exist at once: memory stays bounded for any
N x K and no N x K one-hot is ever built.

**Exactness.** The fast expansion ``||c||^2 - 2 x.c`` cancels catastrophically when the data
share an offset that is large against their spread (coordinates of a map, un-normalised
features): at an offset of 1e6 it reports a distance of 0 for a codeword 1,000 away. The search
therefore (1) centres both sides on the codebook mean, which makes the expansion's terms as
small as the spread allows, and (2) bounds the expansion's rounding error ([higham2002]
eq. (3.5): ``|fl(x.c) - x.c| <= gamma_D sum |x_i c_i|``), first per row with the largest
codeword norm, then per codeword for the rows that first bound flags, and re-ranks by the
direct ``sum (x_i - c_i)^2`` every row with more than ``k`` candidates within it. The
indices are then those of a brute-force search over the direct distances (up to genuine ties
within fp32 resolution of ``(x - c)^2``), for any common offset, and the returned distances
are the direct ones, never the cancelled expansion.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Distances held at once by one chunk (16 Mi elements = 64 MiB in fp32): the default on an
#: accelerator and under ``torch.compile``, where fewer, larger operations pay.
DEFAULT_CHUNK_ELEMENTS = 1 << 24
#: The default of :func:`nearest_neighbor` on a CPU (1 Mi elements = 4 MiB in fp32): a block
#: that stays near the caches between the product and the argmin. Timed directly on one
#: thread of the development machine, it was 1.2-2.3x faster than ``DEFAULT_CHUNK_ELEMENTS``
#: at N x D x K from 50,000 x 50 x 256 to 16,384 x 256 x 4,096, with the same indices;
#: ``benchmarks/search_exactness.py`` records the effect at the layer's shape.
CPU_CHUNK_ELEMENTS = 1 << 20
#: Candidates re-ranked per row when the search is traced by ``torch.compile`` / export, where
#: the eager path's data-dependent selection of ambiguous rows cannot be captured.
COMPILED_CANDIDATES = 8

#: Unit roundoff of an fp32 matrix product at each of torch's float32 matmul precisions:
#: "high" lets it run in TF32 (10-bit mantissa), "medium" in bf16 (7-bit mantissa).
_UNIT_ROUNDOFF = {"highest": 2.0**-24, "high": 2.0**-11, "medium": 2.0**-8}


def matmul_roundoff() -> float:
    """Unit roundoff of fp32 products under the process's current matmul precision
    (``torch.set_float32_matmul_precision`` / ``torch.backends.cuda.matmul.allow_tf32``): the
    re-rank bound widens instead of silently trusting a TF32 product."""
    return _UNIT_ROUNDOFF.get(torch.get_float32_matmul_precision(), 2.0**-8)


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


def _compute_dtype(x: Tensor, codewords: Tensor) -> torch.dtype:
    """fp64 when either side is fp64, else fp32 (bf16 / fp16 inputs are searched in fp32)."""
    return torch.float64 if torch.float64 in (x.dtype, codewords.dtype) else torch.float32


def _roundoff(dtype: torch.dtype) -> float:
    return 2.0**-53 if dtype == torch.float64 else matmul_roundoff()


def _check_finite(codewords: Tensor, compiling: bool) -> None:
    """A NaN or Inf codeword would poison the centre and every row's answer: refuse it."""
    message = "codewords contain NaN or Inf values"
    if compiling:
        torch._assert_async(torch.isfinite(codewords).all(), message)
    elif not bool(torch.isfinite(codewords).all()):
        bad = int((~torch.isfinite(codewords)).any(dim=1).nonzero()[0])
        raise ValueError(f"{message} (first bad codeword: row {bad})")


def _smallest(d: Tensor, k: int) -> tuple[Tensor, Tensor]:
    if k == 1:
        # torch.min returns the first minimal index, which is the lowest-index tie rule.
        vals, idx = d.min(dim=1, keepdim=True)
        return vals, idx
    # A stable sort keeps tied candidates in index order; topk gives no such guarantee.
    vals, idx = torch.sort(d, dim=1, stable=True)
    return vals[:, :k], idx[:, :k]


def expansion_slack(
    x_norm: Tensor, c_max: Tensor, dim: int, roundoff: float = _UNIT_ROUNDOFF["highest"]
) -> Tensor:
    """Twice the worst-case fp32 rounding error of ``||c||^2 - 2 x.c`` ([higham2002] eq. (3.5)).

    With ``gamma_n = n u / (1 - n u)``, ``u = 2^-24`` in fp32 (``roundoff``; larger when
    the product may run in TF32 or bf16, see :func:`matmul_roundoff`), each expansion is within
    ``gamma_{D+1} (||c||^2 + 2 ||x|| ||c||)`` of its exact value (the two dot products, the
    exact scaling by -2 and the final addition), so two of them can swap order only when they
    differ by less than twice that. A further factor 2 covers the centring's rounding.

    Args:
        x_norm: ``(n, 1)`` norms of the (centred) queries.
        c_max: scalar, the largest (centred) codeword norm.
        dim: D.
        roundoff: the unit roundoff ``u`` of the product.

    Returns:
        ``(n, 1)`` fp32 slack: rows whose two best expansions differ by more are certain.
    """
    return _slack(x_norm, c_max, _gamma(dim, roundoff))


def _slack(x_norm: Tensor, c_max: Tensor, gamma: float) -> Tensor:
    return 4.0 * gamma * (c_max * c_max + 2.0 * x_norm * c_max)


def _gamma(dim: int, roundoff: float) -> float:
    """``gamma_{D+1} = (D + 1) u / (1 - (D + 1) u)`` (Higham's constant; inf when vacuous)."""
    nu = (dim + 1) * roundoff
    return nu / (1.0 - nu) if nu < 0.5 else float("inf")


def _direct(xs: Tensor, c: Tensor, idx: Tensor) -> Tensor:
    """``sum_i (x_i - c_i)^2`` of each row of ``xs (n, D)`` to its codewords ``idx (n, k)``."""
    n, k = idx.shape
    picked = c.index_select(0, idx.reshape(-1)).view(n, k, -1)
    return (xs.unsqueeze(1) - picked).square_().sum(dim=-1)


#: Strided blocks of :func:`argmin_and_runner_up`: entry ``i`` of a row is in block
#: ``i mod 32``.
ARGMIN_BLOCKS = 32


def argmin_and_runner_up(d: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Minimum ``(n, 1)``, an index of it ``(n, 1)`` and the second-smallest value ``(n, 1)``
    of each row of a 2-D ``d``.

    ``min`` and ``argmin`` with indices are several times slower on a CPU than the index-free
    ``amin``. The row is split into :data:`ARGMIN_BLOCKS` strided blocks (entry ``i`` in
    block ``i mod 32``, so that ``amin`` reduces over contiguous runs of the row); the block
    minima come from ``amin``, and the index is searched only in the first block holding the
    minimum. One thread, 4,096 x 256 distances: 1.6x faster than the contiguous blocks of 64
    this replaced, which were no faster than ``min``.

    The index is the lowest one holding the minimum whenever the runner-up is larger; when
    they are equal (a tie across blocks) it may not be, and callers that need the
    lowest-index rule redo such rows (``runner_up == minimum``): :func:`first_argmin` does.

    Raises:
        ValueError: ``d`` is not 2-D.

    Example:
        >>> d = torch.tensor([[3.0, 1.0, 2.0]])
        >>> [t.tolist() for t in argmin_and_runner_up(d)]
        [[[1.0]], [[1]], [[2.0]]]
    """
    if d.dim() != 2:
        raise ValueError(f"d must be 2-D (n, K), got shape {tuple(d.shape)}")
    n, size = d.shape
    blocks = ARGMIN_BLOCKS
    if size % blocks or size < 4 * blocks:
        vals, idx = d.min(dim=1, keepdim=True)
        runner_up = d.scatter(1, idx, float("inf")).amin(dim=1, keepdim=True)
        return vals, idx, runner_up
    grid = d.view(n, size // blocks, blocks)  # grid[r, s, b] = d[r, s * blocks + b]
    block_min = grid.amin(dim=1)
    vals, block = block_min.min(dim=1, keepdim=True)
    column = grid.gather(2, block[:, None, :].expand(n, size // blocks, 1)).squeeze(2)
    pos = column.argmin(dim=1, keepdim=True)
    others = block_min.scatter(1, block, float("inf")).amin(dim=1, keepdim=True)
    second = column.scatter(1, pos, float("inf")).amin(dim=1, keepdim=True)
    return vals, pos * blocks + block, torch.minimum(others, second)


def first_argmin(d: Tensor) -> Tensor:
    """``d.argmin(dim=1)`` of a 2-D ``d``: the lowest index of each row's minimum, through
    :func:`argmin_and_runner_up` (rows whose minimum is tied, or NaN, are redone by
    ``argmin``).

    Shape:
        ``d`` ``(n, K)``; returns ``(n,)`` int64.

    Raises:
        ValueError: ``d`` is not 2-D.

    Example:
        >>> first_argmin(torch.tensor([[2.0, 0.0, 0.0], [1.0, 5.0, 0.5]])).tolist()
        [1, 2]
    """
    vals, idx, runner_up = argmin_and_runner_up(d)
    idx = idx[:, 0]
    unsure = ~(runner_up[:, 0] > vals[:, 0])  # a tie, or NaN
    if bool(unsure.any()):
        rows = unsure.nonzero().squeeze(1)
        idx[rows] = d[rows].argmin(dim=1)
    return idx


def _rerank(
    xs: Tensor, c: Tensor, d: Tensor, kth: tuple[Tensor, Tensor], bound: Tensor, k: int,
    idx: Tensor, chunk_elements: int,
) -> Tensor:
    """``idx (a, k)`` (a copy the caller owns) of rows ``xs (a, D)``, corrected in place by
    direct distance where needed.

    ``bound (a, K)`` bounds each expansion's error; a codeword is a candidate when
    ``d_j - bound_j <= d_kth + bound_kth`` (``kth`` = value and index of the k-th best). Rows
    with no more than ``k`` candidates are certain; the others get their top-``k`` from the
    direct distances of their candidates: pair by pair when few, densely (``cdist`` without
    the expansion) when many. Ties go to the lowest index.
    """
    value, index = kth
    cand = (d - bound) <= (value + bound.gather(1, index))
    hard = (cand.sum(dim=1) > k).nonzero().squeeze(1)
    if not hard.numel():
        return idx
    cand, xs = cand[hard], xs[hard]
    if int(cand.sum()) * 8 < cand.numel():
        exact = torch.full(cand.shape, float("inf"), device=d.device, dtype=xs.dtype)
        rows, cols = cand.nonzero(as_tuple=True)
        step = max(1, chunk_elements // max(xs.shape[1], 1))
        for s in range(0, rows.shape[0], step):
            r, j = rows[s : s + step], cols[s : s + step]
            exact[r, j] = (xs[r] - c[j]).square_().sum(dim=1)
    else:
        exact = torch.cdist(xs, c, compute_mode="donot_use_mm_for_euclid_dist")
        exact.masked_fill_(~cand, float("inf"))
    idx[hard] = _smallest(exact, k)[1]
    return idx


def _select_eager(
    xs: Tensor, c: Tensor, d: Tensor, norms: tuple[Tensor, Tensor], gamma: float, k: int,
    chunk_elements: int,
) -> Tensor:
    """Indices ``(n, k)``: the expansion's choice, re-ranked by direct distance to ``c`` where
    it is not certain. ``norms`` are the centred queries' ``(n, 1)`` and codewords' ``(K,)``
    norms."""
    x_norm, c_norm = norms
    c_max = c_norm.max()
    # A cheap first filter with the largest codeword norm (expansion_slack) ...
    slack = _slack(x_norm, c_max, gamma)
    if k == 1:
        vals, idx, runner_up = argmin_and_runner_up(d)
        ambiguous = (runner_up - vals) <= slack
        kth = (vals, idx)
    else:
        head = min(k + 1, d.shape[1])
        vals, order = torch.sort(d, dim=1, stable=True)
        idx = order[:, :k]
        ambiguous = ((vals[:, 1:head] - vals[:, : head - 1]) <= slack).any(dim=1, keepdim=True)
        kth = (vals[:, k - 1 : k], order[:, k - 1 : k])
    rows = ambiguous.squeeze(1).nonzero().squeeze(1)
    # ... then, for the rows it flags, each codeword's own bound (twice gamma_{D+1} (||c||^2 +
    # 2 ||x|| ||c||), the factor 2 for the centring), in blocks that keep memory bounded.
    block = max(1, chunk_elements // (2 * d.shape[1]))
    for s in range(0, rows.numel(), block):
        r = rows[s : s + block]
        bound = (2.0 * gamma) * (c_norm.square() + 2.0 * x_norm[r] * c_norm)
        idx[r] = _rerank(xs[r], c, d[r], (kth[0][r], kth[1][r]), bound, k, idx[r],
                         chunk_elements)
    return idx


def _select_compiled(xs: Tensor, c: Tensor, d: Tensor, k: int) -> Tensor:
    """Fixed-shape variant for tracing: re-rank the ``k + COMPILED_CANDIDATES - 1`` best
    expansions by direct distance (exact whenever no more candidates than that lie within the
    rounding bound, which centring makes the rule)."""
    m = min(d.shape[1], k + COMPILED_CANDIDATES - 1)
    cand = torch.topk(d, m, dim=1, largest=False, sorted=True)[1]
    cand = torch.sort(cand, dim=1)[0]  # index order first, so the stable sort breaks ties by it
    order = torch.sort(_direct(xs, c, cand), dim=1, stable=True)[1]
    return cand.gather(1, order[:, :k])


def nearest_neighbor(
    x: Tensor,
    codewords: Tensor,
    k: int = 1,
    *,
    chunk_elements: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The ``k`` nearest codewords of each row of ``x`` in squared Euclidean distance.

    Exact for any common offset of the data (see the module docstring): both sides are
    centred on the codebook mean, the expansion ``||c||^2 - 2 x.c`` ([vandenoord2017vqvae])
    ranks the codewords, and rows whose ranking is within the expansion's rounding
    bound (:func:`expansion_slack`) are re-ranked by the direct ``sum (x_i - c_i)^2``. The
    returned distances are always the direct ones. Computed in fp32 even under autocast and for
    bf16 / fp16 inputs (in fp64 when either input is fp64); ties go to the lowest index; no
    gradient flows through the search. Under ``torch.compile`` /
    ``torch.export`` a fixed-shape re-rank of the best few candidates replaces the
    data-dependent one (:data:`COMPILED_CANDIDATES`).

    Args:
        x: ``(N, D)`` query vectors, any floating dtype.
        codewords: ``(K, D)`` codebook.
        k: number of neighbours per row, ``1 <= k <= K``.
        chunk_elements: upper bound on the distances held in memory at once; None:
            :data:`CPU_CHUNK_ELEMENTS` for CPU tensors in eager mode, else
            :data:`DEFAULT_CHUNK_ELEMENTS`. The indices and distances do not depend on it.

    Shape:
        x: ``(N, D)``; codewords: ``(K, D)``; both outputs ``(N, k)``.

    Returns:
        ``(sq_distances, indices)``: squared distances sorted ascending (fp32, or fp64 for fp64
        inputs), and int64 indices.

    Raises:
        ValueError: ``x`` or ``codewords`` not 2-D, their dimensions differ, ``k`` is not in
            ``[1, K]``, or a codeword holds NaN or Inf (it would capture every query). While
            compiling, the last check is an in-graph assertion (``RuntimeError``).

    Example:
        >>> c = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
        >>> d, i = nearest_neighbor(torch.tensor([[0.9, 0.0], [0.5, 0.0]]), c)
        >>> i.flatten().tolist()   # the tie at 0.5 goes to index 0; the duplicate row 2 never wins
        [1, 0]
        >>> far = torch.tensor([[4208848.0, 2334863.5], [4208858.0, 2334863.5]])
        >>> nearest_neighbor(torch.tensor([[4208857.0, 2334863.5]]), far)[1].item()
        1
    """
    dist, idx = _search(x, codewords, k, chunk_elements, distances=True)
    return dist, idx


def nearest_indices(
    x: Tensor,
    codewords: Tensor,
    k: int = 1,
    *,
    chunk_elements: int | None = None,
) -> Tensor:
    """The indices of :func:`nearest_neighbor` without its distances.

    The same exact, blocked search (same indices, same tie rule, same errors) minus the
    direct ``sum (x_i - c_i)^2`` of each row to its answers, a pass over ``N x k x D``
    values that callers needing only the assignment (a k-means step) do not use: on 60,000
    784-d Fashion-MNIST pixels and 256 k-means centres (one thread) it is about a tenth of
    the search's time, which is then that of the matrix product alone.

    Shape:
        x: ``(N, D)``; codewords: ``(K, D)``; returns ``(N, k)`` int64.

    Raises:
        ValueError: as :func:`nearest_neighbor`.

    Example:
        >>> c = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
        >>> nearest_indices(torch.tensor([[0.9, 0.0], [0.5, 0.0]]), c).flatten().tolist()
        [1, 0]
    """
    return _search(x, codewords, k, chunk_elements, distances=False)[1]


def _search(x: Tensor, codewords: Tensor, k: int, chunk_elements: int | None, *,
            distances: bool) -> tuple[Tensor | None, Tensor]:
    """:func:`nearest_neighbor`'s work; with ``distances=False`` the first output is None."""
    _check(x, codewords, k)
    compiling = torch.compiler.is_compiling()
    if chunk_elements is None:
        cpu = x.device.type == "cpu" and not compiling
        chunk_elements = CPU_CHUNK_ELEMENTS if cpu else DEFAULT_CHUNK_ELEMENTS
    n, size = x.shape[0], codewords.shape[0]
    dtype = _compute_dtype(x, codewords)
    out_d = torch.empty(n, k, device=x.device, dtype=dtype) if distances else None
    out_i = torch.empty(n, k, device=x.device, dtype=torch.long)
    # Bound the distance block (rows x K) and the direct-distance block (rows x k x D); with
    # k > 1 the block is also sorted (values and int64 order: 3 more distance-sized blocks).
    rows = max(1, chunk_elements // max(size * (4 if k > 1 else 1), k * x.shape[1]))
    with torch.no_grad(), torch.autocast(device_type=x.device.type, enabled=False):
        cf = codewords.detach().to(dtype)
        _check_finite(cf, compiling)
        centre = cf.mean(dim=0)
        cc = cf - centre
        c_sq = cc.square().sum(dim=1)
        c_norm = c_sq.sqrt()
        ct = cc.t()
        xf = x.detach().to(dtype)
        # (a Python query: dynamo cannot trace it, and the compiled path needs no bound)
        gamma = None if compiling else _gamma(x.shape[1], _roundoff(dtype))
        # One distance block for every chunk (eager): a fresh block per chunk is a fresh
        # multi-MiB allocation, whose first-touch page faults cost more than the product.
        block = None if compiling else torch.empty(min(rows, n), size, device=x.device,
                                                   dtype=dtype)
        for start in range(0, n, rows):
            xo = xf[start : start + rows]
            xs = xo - centre
            if block is None:
                d = torch.addmm(c_sq, xs, ct, beta=1.0, alpha=-2.0)
            else:
                d = torch.addmm(c_sq, xs, ct, beta=1.0, alpha=-2.0, out=block[: xs.shape[0]])
            # Direct distances use the uncentred values: a difference of two nearby floats is
            # exact (Sterbenz), so integer data give exact distances.
            if compiling:
                idx = _select_compiled(xo, cf, d, k)
            else:
                norms = (xs.norm(dim=1, keepdim=True), c_norm)
                idx = _select_eager(xo, cf, d, norms, gamma, k, chunk_elements)
            if k > 1:  # order by (direct distance, index): index order first, then stably
                idx = idx.sort(dim=1).values
            if out_d is not None or k > 1:
                dist = _direct(xo, cf, idx)
                if k > 1:
                    dist, perm = torch.sort(dist, dim=1, stable=True)
                    idx = idx.gather(1, perm)
                if out_d is not None:
                    out_d[start : start + rows] = dist
            out_i[start : start + rows] = idx
    return out_d, out_i
