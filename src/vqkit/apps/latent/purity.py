"""How contiguous labels are along a codebook's index axis (is the order meaningful?).

Indices here are integer codebook indices in ``[0, K)`` (round SFVQ curve positions with
:func:`vqkit.interpret.nearest_corner` first). For an ordered codebook (SFVQ) neighbouring
indices are neighbouring codewords, so a label that occupies one region of the data should
fill one contiguous index range; for plain VQ the index order is arbitrary.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ...functional.metrics import index_histogram


def _counts(indices: Tensor, codebook_size: int) -> Tensor:
    """float64 :func:`~vqkit.functional.metrics.index_histogram` (-1 ignored)."""
    return index_histogram(indices, codebook_size).double()


def best_range(indices: Tensor, codebook_size: int, width: int) -> tuple[float, int]:
    """The contiguous index range ``[start, start + width)`` holding the largest share of
    ``indices``: returns ``(share, start)`` (the first such range on ties).

    Raises:
        TypeError: ``indices`` is not an integer tensor.
        ValueError: ``width`` is not in ``[1, codebook_size]``, ``indices`` is empty, or an
            index lies outside ``[-1, codebook_size)`` (-1, a masked vector, is not counted).

    Example:
        >>> best_range(torch.tensor([0, 5, 6, 6, 7, 9]), 10, 3)
        (0.6666666666666666, 5)
    """
    if not 1 <= width <= codebook_size:
        raise ValueError(f"width must be in [1, {codebook_size}], got {width}")
    counts = _counts(indices, codebook_size)
    total = float(counts.sum())
    if total == 0:
        raise ValueError("indices is empty")
    window = counts.unfold(0, width, 1).sum(1)
    start = int(window.argmax())
    return float(window[start]) / total, start


def label_ranges(
    indices: Tensor, labels: Sequence[str], codebook_size: int, width: int
) -> dict[str, dict[str, float]]:
    """Per label: the share of its mass inside its best contiguous range of ``width``
    indices, that range, its peak (mode) index and its median index.

    Raises:
        ValueError: ``labels`` has not one entry per index, or as :func:`best_range`.

    Example:
        >>> r = label_ranges(torch.tensor([0, 1, 1, 8, 9]), ["a", "a", "a", "b", "b"], 10, 2)
        >>> r["a"]["share"], r["a"]["start"], r["b"]["median"]
        (1.0, 0, 8.0)
    """
    idx = indices.reshape(-1).long()
    if len(labels) != idx.numel():
        raise ValueError(f"labels must have one entry per index ({idx.numel()}), got {len(labels)}")
    out: dict[str, dict[str, float]] = {}
    for name in sorted(set(labels)):
        pick = idx[torch.tensor([lab == name for lab in labels])]
        share, start = best_range(pick, codebook_size, width)
        counts = _counts(pick, codebook_size)
        out[name] = {
            "share": share, "start": start, "end": start + width - 1,
            "peak": int(counts.argmax()), "median": float(pick.double().median()),
            "count": int(pick.numel()),
        }
    return out


def range_purity(
    indices: Tensor, labels: Sequence[int] | Tensor, codebook_size: int, width: int
) -> float:
    """Mass-weighted mean class purity of the consecutive index ranges ``[0, w), [w, 2w), ...``:
    the share of vectors whose label is the majority label of their range.

    ``width=1`` is the purity of the individual codewords (cells).

    Raises:
        TypeError: ``indices`` is not an integer tensor.
        ValueError: ``width`` is not in ``[1, codebook_size]``, ``labels`` has not one entry
            per index, or an index lies outside ``[-1, codebook_size)`` (-1 is not counted).

    Example:
        >>> range_purity(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 0, 1, 1]), 4, 2)
        1.0
        >>> range_purity(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 0, 1]), 4, 2)
        0.5
    """
    if not 1 <= width <= codebook_size:
        raise ValueError(f"width must be in [1, {codebook_size}], got {width}")
    idx = indices.reshape(-1).long()
    lab = torch.as_tensor(labels).reshape(-1).long()
    if lab.numel() != idx.numel():
        raise ValueError(f"labels must have one entry per index ({idx.numel()}), got {lab.numel()}")
    _counts(idx, codebook_size)
    ranges = idx // width
    n_ranges = -(-codebook_size // width)
    n_labels = int(lab.max()) + 1
    table = torch.bincount(ranges * n_labels + lab, minlength=n_ranges * n_labels)
    table = table.reshape(n_ranges, n_labels)
    return float(table.max(1).values.sum()) / max(idx.numel(), 1)


def best_threshold_split(indices: Tensor, is_first: Tensor) -> tuple[float, int]:
    """Best balanced accuracy of one threshold on the index axis that separates two sets
    (``is_first`` True/False), either way round: ``(accuracy, threshold)`` where the rule is
    "index < threshold" for one set. 0.5 means no split; 1.0 a perfect one.

    Raises:
        ValueError: ``is_first`` marks all indices or none.

    Example:
        >>> first = torch.tensor([False, False, True, True])
        >>> best_threshold_split(torch.tensor([0, 1, 5, 6]), first)
        (1.0, 2)
    """
    idx = indices.reshape(-1).long()
    first = is_first.reshape(-1).bool()
    if first.all() or not first.any():
        raise ValueError("is_first must mark some but not all indices")
    k = int(idx.max()) + 2
    a = torch.bincount(idx[first], minlength=k).double().cumsum(0)
    b = torch.bincount(idx[~first], minlength=k).double().cumsum(0)
    # "index < t" for t = 0..k-1: shares of each set below t.
    below_a = torch.cat([torch.zeros(1, dtype=torch.float64), a[:-1]]) / a[-1]
    below_b = torch.cat([torch.zeros(1, dtype=torch.float64), b[:-1]]) / b[-1]
    acc = 0.5 * (below_a + 1 - below_b)
    acc = torch.maximum(acc, 1 - acc)
    t = int(acc.argmax())
    return float(acc[t]), t


def permuted(indices: Tensor, codebook_size: int, generator: torch.Generator) -> Tensor:
    """``indices`` relabelled by a random permutation of ``[0, K)``: the same partition of the
    data with an arbitrary index order (the null model of an unordered codebook).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> p = permuted(torch.tensor([0, 0, 1]), 3, g)
        >>> bool(p[0] == p[1]), bool(p[0] != p[2])
        (True, True)
    """
    perm = torch.randperm(codebook_size, generator=generator)
    return perm[indices.long()]
