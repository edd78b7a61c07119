"""Principal axes of a data set, over one process or over all DDP ranks' shards.

The rotation of the progressive-dimension k-means (:func:`vqkit.functional.kmeans.kmeans`
with ``dim_steps > 1``), as FAISS's ``ProgressiveDimClustering`` applies its
``PCAMatrix`` ([douze2024faiss]): centre the data and express it in the eigenvectors of its
covariance, ordered by decreasing variance, so that the first coordinates carry the most
variance. No whitening and no truncation: the rotation is orthogonal and
:meth:`PrincipalAxes.restore` inverts it exactly (up to rounding).

The large products (the covariance's ``X^T X``, the rotation) run in the data's dtype, as
FAISS forms its covariance in fp32: on fp32 data an fp64 product costs about twice as much
on a CPU (1.8x for the ``X^T X`` of 20,000 x 784 on one thread), and k-means needs the axes
only roughly. Half-precision data (fp16, bf16) form the
covariance in fp32: in fp16 ``X^T X`` overflows to Inf on ordinary data, in bf16 its three
significant digits turn the axes by tens of degrees. Sums, mean and eigendecomposition are
fp64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

AllReduce = Callable[[Tensor, str], object]


@dataclass(frozen=True)
class PrincipalAxes:
    """``mean (D,)`` and ``axes (D, D)`` (fp64; column ``j`` is the axis of the ``j``-th
    largest variance) of a data set."""

    mean: Tensor
    axes: Tensor

    def rotate(self, x: Tensor, width: int | None = None) -> Tensor:
        """``(x - mean) @ axes[:, :width]``: ``(N, width)`` (``(N, D)`` by default) computed
        in the data's dtype, coordinates by decreasing variance. A smaller ``width`` costs
        proportionally less.

        Raises:
            ValueError: ``x`` is not ``(N, D)``, or ``width`` is not in ``[1, D]``.
        """
        self._check(x, exact=True)
        dim = self.mean.shape[0]
        width = dim if width is None else width
        if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= dim:
            raise ValueError(f"width must be an int in [1, {dim}], got {width!r}")
        return (x - self.mean.to(x.dtype)) @ self.axes[:, :width].to(x.dtype)

    def restore(self, y: Tensor) -> Tensor:
        """The inverse of :meth:`rotate` for ``y (N, d)`` with ``d <= D`` leading coordinates
        (the rest taken as zero); returns ``(N, D)`` computed in ``y``'s dtype.

        Raises:
            ValueError: ``y`` is not ``(N, d)`` with ``d <= D``.
        """
        self._check(y, exact=False)
        return y @ self.axes[:, : y.shape[1]].t().to(y.dtype) + self.mean.to(y.dtype)

    def _check(self, t: Tensor, *, exact: bool) -> None:
        dim = self.mean.shape[0]
        if t.dim() != 2 or t.shape[1] > dim or (exact and t.shape[1] != dim):
            want = f"(N, {dim})" if exact else f"(N, d) with d <= {dim}"
            raise ValueError(f"expected a {want} tensor, got shape {tuple(t.shape)}")


def principal_axes(x: Tensor, all_reduce: AllReduce | None = None) -> PrincipalAxes:
    """The mean and principal axes of ``x`` ``(N, D)`` (of all ranks' ``x`` with ``all_reduce``,
    an in-place ``(tensor, "sum")`` reduction): the eigenvectors of the covariance, whose
    ``X^T X`` is formed in ``x``'s dtype (fp32 for fp16 and bf16 data) and decomposed in fp64;
    FAISS's ``PCAMatrix`` without whitening or truncation ([douze2024faiss]).

    Every rank gets the same axes: the sums are reduced before the eigendecomposition.

    Shape:
        ``x`` ``(N, D)`` with D >= 1 (a rank may hold N = 0 rows under DDP); the result's
        ``mean`` is ``(D,)`` and ``axes`` ``(D, D)``, both fp64.

    Raises:
        TypeError: ``x`` is not a floating tensor.
        ValueError: ``x`` is not ``(N, D)`` with D >= 1, holds NaN or Inf, or no row over
            all ranks.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [0.1, 4.0], [-0.1, -4.0]])
        >>> pa = principal_axes(x)
        >>> pa.rotate(x)[:, 1].abs().max() < 0.2  # the second axis carries little variance
        tensor(True)
        >>> torch.allclose(pa.restore(pa.rotate(x)), x, atol=1e-6)
        True
    """
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating tensor, got {x.dtype}")
    if x.dim() != 2 or x.shape[1] == 0:
        raise ValueError(f"x must be an (N, D) tensor with D >= 1, got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x holds NaN or infinite values")
    x = x.detach()
    stats = torch.cat([torch.tensor([float(x.shape[0])], dtype=torch.float64,
                                    device=x.device), x.double().sum(0)])
    if all_reduce is not None:
        all_reduce(stats, "sum")
    n = float(stats[0])
    if n == 0:
        raise ValueError("x must hold at least one row over all ranks, got 0")
    mean = stats[1:] / n
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()  # fp16, bf16: fp32
    centred = work - mean.to(work.dtype)
    cov = (centred.t() @ centred).double()
    if all_reduce is not None:
        all_reduce(cov, "sum")
    _, vectors = torch.linalg.eigh(cov / n)  # ascending eigenvalues
    return PrincipalAxes(mean, vectors.flip(1).contiguous())
