"""Principal axes of a data set, over one process or over all DDP ranks' shards.

The rotation of the progressive-dimension k-means (:func:`vqkit.functional.kmeans.kmeans`
with ``dim_steps > 1``), as FAISS's ``ProgressiveDimClustering`` applies its
``PCAMatrix`` ([douze2024faiss]): centre the data and express it in the eigenvectors of its
covariance, ordered by decreasing variance, so that the first coordinates carry the most
variance. No whitening and no truncation: the rotation is orthogonal and
:meth:`PrincipalAxes.restore` inverts it exactly (up to rounding).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

AllReduce = Callable[[Tensor, str], object]


@dataclass(frozen=True)
class PrincipalAxes:
    """``mean (D,)`` and ``axes (D, D)`` (float64; column ``j`` is the axis of the ``j``-th
    largest variance) of a data set."""

    mean: Tensor
    axes: Tensor

    def rotate(self, x: Tensor) -> Tensor:
        """``(x - mean) @ axes``: ``(N, D)`` in the data's dtype, coordinates by decreasing
        variance."""
        return ((x.double() - self.mean) @ self.axes).to(x.dtype)

    def restore(self, y: Tensor) -> Tensor:
        """The inverse of :meth:`rotate` for ``y (N, d)`` with ``d <= D`` leading coordinates
        (the rest taken as zero); returns ``(N, D)`` in ``y``'s dtype."""
        return (y.double() @ self.axes[:, : y.shape[1]].t() + self.mean).to(y.dtype)


def principal_axes(x: Tensor, all_reduce: AllReduce | None = None) -> PrincipalAxes:
    """The mean and principal axes of ``x`` ``(N, D)`` (of all ranks' ``x`` with ``all_reduce``,
    an in-place ``(tensor, "sum")`` reduction), from the float64 covariance.

    Every rank gets the same axes: the sums are reduced before the eigendecomposition.

    Raises:
        ValueError: no row over all ranks.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [0.1, 4.0], [-0.1, -4.0]])
        >>> pa = principal_axes(x)
        >>> pa.rotate(x)[:, 1].abs().max() < 0.2  # the second axis carries little variance
        tensor(True)
        >>> torch.allclose(pa.restore(pa.rotate(x)), x, atol=1e-6)
        True
    """
    xd = x.detach().double()
    stats = torch.cat([torch.tensor([float(xd.shape[0])], dtype=torch.float64,
                                    device=xd.device), xd.sum(0)])
    if all_reduce is not None:
        all_reduce(stats, "sum")
    n = float(stats[0])
    if n == 0:
        raise ValueError("x must hold at least one row over all ranks, got 0")
    mean = stats[1:] / n
    centred = xd - mean
    cov = centred.t() @ centred
    if all_reduce is not None:
        all_reduce(cov, "sum")
    _, vectors = torch.linalg.eigh(cov / n)  # ascending eigenvalues
    return PrincipalAxes(mean, vectors.flip(1).contiguous())
