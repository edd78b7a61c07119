"""Per-label index histograms and the Jensen-Shannon distances between them ([vali2023sfvq] §4)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..functional.metrics import index_histogram
from .directions import nearest_corner


def smooth_histogram(counts: Tensor, window: int = 7) -> Tensor:
    """Convolve ``counts`` (``(K,)``) with a symmetric Blackman window of length ``window``
    (zero padding, same length) and scale to max 1, as in [vali2023sfvq] Fig. 3a and Fig. 4.

    Raises:
        ValueError: ``counts`` is not 1-D, or ``window`` is not a positive odd length.

    Example:
        >>> [round(v, 3) for v in smooth_histogram(torch.tensor([0, 0, 0, 5, 0, 0, 0])).tolist()]
        [0.0, 0.13, 0.63, 1.0, 0.63, 0.13, 0.0]
    """
    if counts.dim() != 1:
        raise ValueError(f"counts must be 1-D, got {tuple(counts.shape)}")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd length, got {window}")
    # The exact end values are about -1e-8; clamp them so counts stay non-negative.
    kernel = torch.blackman_window(window, periodic=False, dtype=torch.float32).clamp_min(0)
    c = counts.float().reshape(1, 1, -1)
    out = torch.nn.functional.conv1d(c, kernel.reshape(1, 1, -1), padding=window // 2).flatten()
    top = out.max()
    return out / top if top > 0 else out


def index_histograms(
    indices: Tensor, labels: Sequence[str], codebook_size: int, *, window: int = 7
) -> dict[str, Tensor]:
    """For each label, the histogram of the indices of its vectors, Blackman-smoothed and
    scaled to max 1 (``window=1`` leaves the raw counts scaled to max 1).

    Float curve positions (from :class:`~vqkit.SpaceFillingVQ`) are binned at the nearest
    corner point; entries of -1 are ignored.

    Args:
        indices: ``(N,)`` int64 indices or float curve positions.
        labels: N labels (e.g. phone groups, speakers).
        codebook_size: K, the number of bins.
        window: Blackman window length (7 in the paper).

    Raises:
        ValueError: ``labels`` has not one entry per index, an index is ``>= codebook_size``
            or below -1, ``codebook_size < 1``, or ``window`` is not a positive odd length.

    Example:
        >>> h = index_histograms(torch.tensor([0, 0, 3]), ["a", "a", "b"], 4, window=1)
        >>> {k: v.tolist() for k, v in h.items()}
        {'a': [1.0, 0.0, 0.0, 0.0], 'b': [0.0, 0.0, 0.0, 1.0]}
    """
    idx = nearest_corner(indices.reshape(-1))
    if len(labels) != idx.numel():
        raise ValueError(f"labels must have one entry per index ({idx.numel()}), got {len(labels)}")
    if idx.numel() and int(idx.max()) >= codebook_size:
        raise ValueError(f"indices must be < codebook_size={codebook_size}, got {int(idx.max())}")
    out: dict[str, Tensor] = {}
    for name in sorted(set(labels)):
        pick = torch.tensor([lab == name for lab in labels], dtype=torch.bool)
        out[name] = smooth_histogram(index_histogram(idx[pick], codebook_size), window)
    return out


def jensen_shannon_distance(p: Tensor, q: Tensor) -> float:
    """Jensen-Shannon distance in base 2 (in [0, 1]) between two histograms, each normalised
    to sum 1: ``sqrt(KL(p||m)/2 + KL(q||m)/2)`` with ``m = (p + q)/2``.

    Example:
        >>> jensen_shannon_distance(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 3.0]))
        1.0
    """
    p = p.double() / p.double().sum()
    q = q.double() / q.double().sum()
    m = 0.5 * (p + q)

    def kl(a: Tensor) -> Tensor:
        nz = a > 0
        return (a[nz] * torch.log2(a[nz] / m[nz])).sum()

    return float((0.5 * kl(p) + 0.5 * kl(q)).clamp_min(0).sqrt())


def jensen_shannon_matrix(histograms: dict[str, Tensor]) -> tuple[list[str], Tensor]:
    """Jensen-Shannon distances [lin1991jsd] between label histograms ([vali2023sfvq] Fig. 3b).

    Returns:
        ``(names, matrix)``: the labels in order and the symmetric ``(L, L)`` distances.
    """
    names = list(histograms)
    mat = torch.zeros(len(names), len(names), dtype=torch.float64)
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            mat[i, j] = mat[j, i] = jensen_shannon_distance(histograms[a], histograms[names[j]])
    return names, mat
