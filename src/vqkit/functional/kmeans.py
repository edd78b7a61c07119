"""k-means++ (or random) seeding and Lloyd iterations, with an injectable all-reduce for DDP.

``all_reduce(tensor, op)`` sums (``op="sum"``) or maximises (``op="max"``) a tensor in place
over ranks. With it, every rank holds its own shard of the data and all ranks end with the
same centroids: seeding draws each new centre from the union of the shards (weighted sampling
by the largest key ``log(u) / w``, [efraimidis2006wrs]), and Lloyd sums counts and
coordinate sums over ranks before dividing.

The random keys are drawn for the union's row positions (shards in rank order), so every row of
the union gets its own key and shards with the same generator give the same centres as one
process on their concatenation. (Drawing the keys per shard gave every rank the same keys:
ranks tied, and the first centre was the mean of one row from each shard.) A rank may hold
no rows.

Two seedings (:data:`SEEDINGS`): ``"kmeans++"`` draws each centre with probability proportional
to the squared distance to the nearest centre drawn so far ([arthur2007kmeanspp]);
``"random"`` draws it uniformly among the rows that are not yet a centre, as FAISS's
``Clustering`` does by default ([douze2024faiss]). Both draw the same random numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import Tensor

from ..types import Progress
from .pca import principal_axes
from .search import nearest_indices

AllReduce = Callable[[Tensor, str], object]


def _reduce(t: Tensor, op: str, all_reduce: AllReduce | None) -> Tensor:
    if all_reduce is not None:
        all_reduce(t, op)
    return t


def _shard_layout(x: Tensor, rank: int | None, all_reduce: AllReduce | None) -> tuple[int, int]:
    """``(offset, total)``: where this rank's rows start in the union, and the union's size."""
    n = x.shape[0]
    if all_reduce is None:
        if rank not in (None, 0):
            raise ValueError(f"rank must be 0 without all_reduce, got {rank}")
        return 0, n
    if rank is None:
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    world = int(_reduce(torch.ones(1, dtype=torch.long, device=x.device), "sum", all_reduce))
    if not 0 <= rank < world:
        raise ValueError(f"rank must be in [0, {world}), got {rank}")
    sizes = torch.zeros(world, dtype=torch.long, device=x.device)
    sizes[rank] = n
    _reduce(sizes, "sum", all_reduce)
    return int(sizes[:rank].sum()), int(sizes.sum())


def _draw_global(
    x: Tensor,
    weights: Tensor,
    generator: torch.Generator | None,
    all_reduce: AllReduce | None,
    layout: tuple[int, int],
) -> Tensor:
    """One row drawn with probability proportional to ``weights`` over all ranks' rows."""
    offset, total = layout
    # On the generator's device (a CUDA generator cannot fill a CPU tensor), else the CPU.
    where = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(total, generator=generator, dtype=torch.float64, device=where)
    u = u[offset : offset + x.shape[0]].to(x.device)
    keys = torch.where(weights > 0, u.clamp_min(1e-300).log() / weights, float("-inf"))
    empty = keys.new_tensor(float("-inf"))
    local_best = keys.max() if keys.numel() else empty
    best = _reduce(local_best.clone(), "max", all_reduce)
    if torch.isinf(best):  # every weight is zero: all points coincide with the centres
        keys = u.log()
        local_best = keys.max() if keys.numel() else empty
        best = _reduce(local_best.clone(), "max", all_reduce)
    owner = (local_best == best).double()
    if keys.numel():
        row = x[keys.argmax()].double() * owner
    else:
        row = x.new_zeros(x.shape[1], dtype=torch.float64)
    # Ranks that tie on the best key (identical shards and generators) contribute the same
    # row, so averaging over owners returns that row.
    row = _reduce(row, "sum", all_reduce)
    owners = _reduce(owner.clone(), "sum", all_reduce)
    return (row / owners).to(x.dtype)


#: The seedings: the weight of a row given its squared distance to the nearest centre drawn
#: so far (float64; inf before the first centre).
SEEDINGS: dict[str, Callable[[Tensor], Tensor]] = {
    "kmeans++": lambda d: d,
    "random": lambda d: (d > 0).double(),
}


def kmeans_plus_plus(
    x: Tensor,
    k: int,
    *,
    generator: torch.Generator | None = None,
    all_reduce: AllReduce | None = None,
    rank: int | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """k-means++ seeding ([arthur2007kmeanspp]) over ``x``, or over all ranks' ``x``:
    :func:`seed_centres` with ``seeding="kmeans++"``.

    Args:
        x: ``(N, D)`` local data.
        k: number of centres.
        generator: random source; under DDP seed it identically on every rank.
        all_reduce: in-place ``(tensor, op)`` reduction over ranks, or ``None`` for one process.
        rank: this process's rank: its shard's position in the union (shards in rank order);
            default the default process group's rank (0 without ``all_reduce``).
        progress: called as ``progress(centres_drawn, k, {})`` after each centre.

    Returns:
        ``(k, D)`` centres, identical on every rank.

    Raises:
        ValueError: ``x`` is not ``(N, D)``, holds no row (over all ranks), fewer rows than
            ``k`` (over all ranks), or NaN or Inf; or ``rank`` is out of range.
    """
    return seed_centres(x, k, generator=generator, all_reduce=all_reduce, rank=rank,
                        progress=progress)


#: Elements of ``x`` per block of :func:`_squared_distances` (1 MiB of fp32): the difference
#: block stays in cache between the subtraction, the square and the sum. One thread,
#: 55,000 x 784 Fashion-MNIST pixels: 17x faster than one (N, D) temporary, same values.
SEED_CHUNK_ELEMENTS = 1 << 18


def _squared_distances(x: Tensor, centre: Tensor) -> Tensor:
    """``||x_i - centre||^2`` for every row of ``x`` ``(N, D)``, in row blocks on a CPU; each
    row's value is computed exactly as ``(x - centre).pow(2).sum(dim=1)`` computes it."""
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    rows = max(1, SEED_CHUNK_ELEMENTS // max(x.shape[1], 1)) if x.device.type == "cpu" \
        else max(x.shape[0], 1)  # an accelerator: one block, fewer launches
    for start in range(0, x.shape[0], rows):
        block = x[start : start + rows] - centre
        torch.sum(block.pow_(2), dim=1, out=out[start : start + rows])
    return out


def seed_centres(
    x: Tensor,
    k: int,
    *,
    seeding: str = "kmeans++",
    generator: torch.Generator | None = None,
    all_reduce: AllReduce | None = None,
    rank: int | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """``k`` rows of ``x`` (over all ranks' ``x``) drawn one by one as ``seeding`` weights them.

    Args:
        x: ``(N, D)`` local data.
        k: number of centres.
        seeding: a key of :data:`SEEDINGS`: ``"kmeans++"`` ([arthur2007kmeanspp]) or
            ``"random"`` (uniform among the rows not yet drawn, up to equal rows; FAISS's
            default, [douze2024faiss]).
        generator, all_reduce, rank, progress: as :func:`kmeans_plus_plus`.

    Returns:
        ``(k, D)`` centres, identical on every rank.

    Raises:
        ValueError: as :func:`kmeans_plus_plus`; ``seeding`` is not a key of :data:`SEEDINGS`.

    Example:
        >>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
        >>> seed_centres(x, 4, seeding="random", generator=torch.Generator().manual_seed(0)
        ...              ).flatten().sort().values.tolist()
        [0.0, 1.0, 2.0, 3.0]
    """
    if seeding not in SEEDINGS:
        raise ValueError(f"seeding must be one of {sorted(SEEDINGS)}, got {seeding!r}")
    if x.dim() != 2 or (x.shape[0] == 0 and all_reduce is None):
        raise ValueError(f"x must be a non-empty (N, D) tensor, got shape {tuple(x.shape)}")
    layout = _shard_layout(x, rank, all_reduce)
    if layout[1] == 0:
        raise ValueError("x must hold at least one row over all ranks, got 0")
    if not 1 <= k <= layout[1]:  # more centres than rows would repeat rows as centres
        raise ValueError(f"k must be in [1, {layout[1]}] (the rows over all ranks), got {k}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x holds NaN or infinite values")
    weigh = SEEDINGS[seeding]
    xf = x.detach().float()
    centres = torch.empty(k, xf.shape[1], dtype=xf.dtype, device=xf.device)
    weights = torch.ones(xf.shape[0], dtype=torch.float64, device=xf.device)
    min_d = torch.full((xf.shape[0],), float("inf"), dtype=torch.float64, device=xf.device)
    for j in range(k):
        centres[j] = _draw_global(xf, weights, generator, all_reduce, layout)
        d = _squared_distances(xf, centres[j]).double()
        min_d = torch.minimum(min_d, d)
        weights = weigh(min_d)
        if progress is not None:
            progress(j + 1, k, {})
    return centres


def stage_progress(
    progress: Progress | None, offset: int, total: int, info: dict[str, object]
) -> Progress | None:
    """The callback of one stage of a multi-stage job (one codebook's :func:`kmeans`):
    its ``(done, n, stage_info)`` is reported as ``progress(offset + done, total, {**info,
    **stage_info})``; None when ``progress`` is None.

    Example:
        >>> seen = []
        >>> stage_progress(lambda *a: seen.append(a), 10, 30, {"codebook": 1})(4, 10, {})
        >>> seen
        [(14, 30, {'codebook': 1})]
    """
    if progress is None:
        return None
    report = progress
    return lambda done, _n, stage_info: report(offset + done, total, {**info, **stage_info})


def subsample(x: Tensor, max_rows: int | None, generator: torch.Generator | None) -> Tensor:
    """At most ``max_rows`` rows of ``x``, drawn without replacement (all of ``x`` if it has
    no more, or ``max_rows`` is None); the drawn rows keep their order.

    FAISS's k-means trains on at most ``max_points_per_centroid * k`` rows (256 k by
    default, [douze2024faiss]): more rows hardly move the centres and cost time linearly.

    Shape:
        ``x`` ``(N, D)``; returns ``(min(N, max_rows), D)``.

    Raises:
        ValueError: ``max_rows`` is not None and below 1.

    Example:
        >>> subsample(torch.arange(10.0)[:, None], 3, torch.Generator().manual_seed(0)).shape
        torch.Size([3, 1])
    """
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be >= 1 or None, got {max_rows}")
    if max_rows is None or x.shape[0] <= max_rows:
        return x
    where = generator.device if generator is not None else torch.device("cpu")
    rows = torch.randperm(x.shape[0], generator=generator, device=where)[:max_rows]
    return x[rows.sort().values.to(x.device)]


def dimension_schedule(dim: int, steps: int) -> list[int]:
    """The dimensions of the progressive k-means: ``int(dim ** ((1 + i) / steps))`` for
    ``i < steps``, FAISS's geometric growth ([douze2024faiss]); the last one is ``dim``.

    Raises:
        ValueError: ``dim`` or ``steps`` is not an int >= 1 (a bool is not an int here).

    Example:
        >>> dimension_schedule(784, 10)
        [1, 3, 7, 14, 28, 54, 106, 206, 402, 784]
    """
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in (dim, steps)):
        raise ValueError(f"dim and steps must be ints >= 1, got dim={dim!r}, steps={steps!r}")
    return [int(dim ** ((1 + i) / steps)) for i in range(steps - 1)] + [dim]


#: Rows per block of :func:`cluster_sums`: 1,024 rows of 784 fp64 values (6 MiB) stay in cache
#: between the conversion and the sum.
SUM_BLOCK_ROWS = 1024


def cluster_sums(x: Tensor, idx: Tensor, k: int) -> Tensor:
    """``(k, D)`` fp64 sums of the rows of ``x (N, D)`` assigned to each cluster by ``idx (N,)``.

    The rows are converted to fp64 a block of :data:`SUM_BLOCK_ROWS` at a time into one
    reused buffer and summed in row order: bit for bit the sums of converting all of ``x``
    at once, without its ``(N, D)`` fp64 copy (one thread, 60,000 x 784: about 10x faster).

    Raises:
        ValueError: ``idx`` is not ``(N,)``.

    Example:
        >>> cluster_sums(torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([0, 1, 0]), 2)
        tensor([[5.],
                [2.]], dtype=torch.float64)
    """
    if idx.shape != x.shape[:1]:
        raise ValueError(f"idx must be ({x.shape[0]},), got shape {tuple(idx.shape)}")
    sums = torch.zeros(k, x.shape[1], dtype=torch.float64, device=x.device)
    buffer = torch.empty(min(SUM_BLOCK_ROWS, x.shape[0]), x.shape[1], dtype=torch.float64,
                         device=x.device)
    for start in range(0, x.shape[0], SUM_BLOCK_ROWS):
        rows = x[start : start + SUM_BLOCK_ROWS]
        block = buffer[: rows.shape[0]].copy_(rows)
        sums.index_add_(0, idx[start : start + SUM_BLOCK_ROWS], block)
    return sums


def lloyd(
    x: Tensor,
    centres: Tensor,
    iters: int,
    *,
    all_reduce: AllReduce | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """Lloyd iterations from ``centres`` until no centre moves or ``iters`` ends; an empty
    cluster keeps its centre. Sums and counts are reduced over ranks before dividing.

    Args:
        x: ``(N, D)`` local data.
        centres: ``(K, D)`` starting centres (identical on every rank).
        iters: maximum number of iterations.
        all_reduce: as :func:`kmeans`.
        progress: ``progress(done, iters, {"moved": m})`` after each iteration; the last call
            has ``done == iters``, also when the centres stop moving early.

    Shape:
        returns ``(K, D)`` fp32.

    Raises:
        ValueError: ``x`` or ``centres`` is not 2-D, or their widths differ.
    """
    if x.dim() != 2 or centres.dim() != 2 or x.shape[1] != centres.shape[1]:
        raise ValueError(f"x (N, D) and centres (K, D) must have the same width D, got "
                         f"shapes {tuple(x.shape)} and {tuple(centres.shape)}")
    xf = x.detach().float().contiguous()
    centres = centres.float()
    k = centres.shape[0]
    for it in range(iters):
        idx = nearest_indices(xf, centres)[:, 0]
        sums = cluster_sums(xf, idx, k)
        counts = torch.bincount(idx, minlength=k).double()
        _reduce(sums, "sum", all_reduce)
        _reduce(counts, "sum", all_reduce)
        filled = counts > 0
        new = centres.clone()
        new[filled] = (sums[filled] / counts[filled, None]).float()
        moved = int((new != centres).any(dim=1).sum())
        if progress is not None:
            progress(iters if moved == 0 else it + 1, iters, {"moved": moved})
        if moved == 0:
            break
        centres = new
    return centres


def kmeans(
    x: Tensor,
    k: int,
    *,
    iters: int = 50,
    generator: torch.Generator | None = None,
    all_reduce: AllReduce | None = None,
    rank: int | None = None,
    progress: Progress | None = None,
    max_points_per_centroid: int | None = None,
    seeding: str = "kmeans++",
    dim_steps: int = 1,
) -> Tensor:
    """Seeding (k-means++ by default) followed by Lloyd iterations until no centre moves or
    ``iters`` ends; with ``dim_steps > 1``, in dimensions that grow step by step.

    The progressive-dimension k-means is FAISS's ``ProgressiveDimClustering`` (the default
    training of its ``ResidualQuantizer``, [douze2024faiss]): the data are rotated to their
    principal axes (:func:`~vqkit.functional.pca.principal_axes`), step ``i`` clusters the
    first ``dimension_schedule(D, dim_steps)[i]`` coordinates for ``iters`` Lloyd iterations,
    starting from the previous step's centres padded with zeros (the seeding runs in the
    first, lowest dimension). The last step, in all ``D`` coordinates, runs on the data
    themselves from the rotated-back centres (a rotation changes no distance), so only the
    ``dimension_schedule(D, dim_steps)[-2]`` leading coordinates are ever rotated. In high
    dimensions it escapes the poor local minima of Lloyd from seeds: on 784-d Fashion-MNIST
    pixels FAISS's own RQ trains to a lower error and a higher Recall@10 with it than with
    plain k-means. An empty cluster keeps its previous centre.

    Args:
        x: ``(N, D)`` local data.
        k: number of centres.
        iters: maximum number of Lloyd iterations (per dimension step).
        generator: random source for the seeding (and the subsample).
        all_reduce: in-place ``(tensor, op)`` reduction over ranks, or ``None``.
        rank: this process's rank: its shard's position in the union (shards in rank order);
            default the default process group's rank (0 without ``all_reduce``).
        progress: called as ``progress(done, k + dim_steps * iters, info)`` after each seeded
            centre and each Lloyd iteration (``info["moved"]``: centres that moved); the last
            call has ``done == k + dim_steps * iters``, also when Lloyd stops early.
        max_points_per_centroid: seed and iterate on at most this many rows per centre
            (drawn by :func:`subsample`, per rank under DDP), as FAISS does (its default
            is 256); None (default) uses every row.
        seeding: ``"kmeans++"`` or ``"random"`` (see :func:`seed_centres`).
        dim_steps: number of dimension steps (1, the default: plain k-means in ``D``
            dimensions; FAISS's progressive default is 10).

    Raises:
        ValueError: as :func:`seed_centres`; ``max_points_per_centroid`` or ``dim_steps``
            below 1.

    Shape:
        x: ``(N, D)``; returns ``(k, D)`` in fp32.

    Example:
        >>> x = torch.tensor([[0.0], [0.1], [10.0], [10.2]])
        >>> sorted(kmeans(x, 2, generator=torch.Generator().manual_seed(0)).flatten().tolist())
        [0.05000000074505806, 10.100000381469727]
    """
    if max_points_per_centroid is not None:
        if max_points_per_centroid < 1:
            raise ValueError(
                f"max_points_per_centroid must be >= 1 or None, got {max_points_per_centroid}")
        x = subsample(x, max_points_per_centroid * k, generator)
    dims = dimension_schedule(x.shape[1] if x.dim() == 2 else 1, dim_steps)
    total = k + iters * len(dims)
    seeded = None if progress is None else lambda j, _k, info: progress(j, total, info)
    lead = x
    axes = None
    if len(dims) > 1:  # in fp32, as the plain k-means (any dtype: seed_centres converts)
        x = x.detach().float()
        axes = principal_axes(x, all_reduce)
        lead = axes.rotate(x, width=dims[-2])  # the coordinates the steps before the last use
    centres = seed_centres(lead[:, : dims[0]], k, seeding=seeding, generator=generator,
                           all_reduce=all_reduce, rank=rank, progress=seeded)
    for step, dim in enumerate(dims):
        done = k + step * iters
        report = (None if progress is None else
                  lambda j, _n, info, done=done: progress(done + j, total, info))
        if axes is not None and step == len(dims) - 1:
            # The last step clusters all D coordinates, where the rotation changes no
            # distance: it runs on x itself from the rotated-back centres.
            data, centres = x, axes.restore(centres)
        else:
            data = lead[:, :dim]
            centres = torch.nn.functional.pad(centres, (0, dim - centres.shape[1]))
        centres = lloyd(data, centres, iters, all_reduce=all_reduce, progress=report)
    return centres
