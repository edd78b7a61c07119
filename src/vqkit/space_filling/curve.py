"""The space-filling curve codebook (SFVQ, [vali2023sfvq]).

A :class:`CurveCodebook` holds K ordered corner points ``c_0 .. c_{K-1}`` of a piecewise-linear
curve with segments ``[c_j, c_{j+1}]``. A point on the curve is named by its *curve position*
``p = j + lambda`` (``0 <= lambda <= 1``), decoded as ``(1 - lambda) c_j + lambda c_{j+1}``.

Projection onto the curve (inference) is a strategy object:

- :class:`TwoSegmentProjection`: the paper's rule ([vali2023sfvq] eq. (5)): find the nearest
  corner point and examine only the two segments next to it;
- :class:`ExactProjection`: the nearest point on the whole curve, chunked over the inputs so
  memory stays bounded. It is never farther than the two-segment rule.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..codebooks import initial_codewords
from ..functional.search import DEFAULT_CHUNK_ELEMENTS, nearest_indices
from ..registry import PROJECTIONS
from ..strategy import Strategy

#: Squared segment lengths below this are treated as zero-length (lambda = 0).
_DEGENERATE = 1e-24


def interpolate(corners: Tensor, positions: Tensor) -> Tensor:
    """Points at curve ``positions`` (float, in ``[0, K-1]``) of the curve with ``corners``.

    Differentiable with respect to ``corners``: the point of position ``j + lambda`` takes the
    weights ``1 - lambda`` on ``c_j`` and ``lambda`` on ``c_{j+1}``.

    Shape:
        corners: ``(K, D)``; positions: ``(N,)``; returns ``(N, D)``.

    Example:
        >>> c = torch.tensor([[0.0, 0.0], [2.0, 0.0], [2.0, 4.0]])
        >>> interpolate(c, torch.tensor([0.5, 1.25, 2.0])).tolist()
        [[1.0, 0.0], [2.0, 1.0], [2.0, 4.0]]
    """
    k = corners.shape[0]
    pos = positions.to(torch.float64)
    if k == 1:
        return corners[:1].expand(pos.shape[0], -1)
    seg = pos.floor().clamp(0, k - 2)
    lam = (pos - seg).to(corners.dtype).unsqueeze(-1)
    seg = seg.long()
    return (1.0 - lam) * corners[seg] + lam * corners[seg + 1]


def _segment_lambda(x: Tensor, start: Tensor, end: Tensor) -> Tensor:
    """Clipped ``lambda`` of the projection of ``x`` onto segments ``[start, end]`` (rowwise)."""
    e = end - start
    sq = e.pow(2).sum(-1)
    lam = ((x - start) * e).sum(-1) / sq.clamp_min(_DEGENERATE)
    return torch.where(sq > _DEGENERATE, lam, torch.zeros_like(lam)).clamp(0.0, 1.0)


def project_two_segment(x: Tensor, corners: Tensor) -> tuple[Tensor, Tensor]:
    """The paper's projection ([vali2023sfvq] eq. (5)): the nearest corner point ``k*`` (clamped to
    ``[1, K-2]``), then the better of the segments ``(k*-1, k*)`` and ``(k*, k*+1)``.

    Ties between the two segments go to the lower one.

    Shape:
        x: ``(N, D)``; corners: ``(K, D)``, K >= 2; returns ``(segment (N,) int64,
        lambda (N,) fp32)``.

    Example:
        >>> c = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
        >>> seg, lam = project_two_segment(torch.tensor([[1.5, 0.25]]), c)
        >>> seg.tolist(), lam.tolist()
        ([1], [0.25])
    """
    k = corners.shape[0]
    with torch.no_grad(), torch.autocast(device_type=x.device.type, enabled=False):
        xf, cf = x.detach().float(), corners.detach().float()
        if k == 2:
            seg = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            return seg, _segment_lambda(xf, cf[seg], cf[seg + 1])
        near = nearest_indices(xf, cf)[:, 0].clamp(1, k - 2)
        segs = torch.stack([near - 1, near], dim=1)  # (N, 2)
        lam = _segment_lambda(xf.unsqueeze(1), cf[segs], cf[segs + 1])  # (N, 2)
        points = (1.0 - lam).unsqueeze(-1) * cf[segs] + lam.unsqueeze(-1) * cf[segs + 1]
        dist = (xf.unsqueeze(1) - points).pow(2).sum(-1)
        pick = (dist[:, 1] < dist[:, 0]).long()
        rows = torch.arange(x.shape[0], device=x.device)
        return segs[rows, pick], lam[rows, pick]


def project_exact(
    x: Tensor, corners: Tensor, *, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS
) -> tuple[Tensor, Tensor]:
    """The nearest point on the whole curve: every segment is examined.

    The squared distance to segment j is ``||x - c_j||^2 - 2 lambda a_j + lambda^2 ||e_j||^2``
    with ``e_j = c_{j+1} - c_j``, ``a_j = (x - c_j).e_j`` and the clipped ``lambda``; it is
    evaluated for all segments with two matrix products per chunk of rows, holding at most
    ``chunk_elements`` floats of intermediate (rows x segments) results at once. Ties go to
    the lowest segment. Both sides are centred on the corners' mean first, so a common offset
    of the data does not cancel the distances.

    Shape:
        x: ``(N, D)``; corners: ``(K, D)``, K >= 2; returns ``(segment (N,) int64,
        lambda (N,) fp32)``.

    Example:
        >>> c = torch.tensor([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0], [0.0, 1.0]])
        >>> seg, lam = project_exact(torch.tensor([[0.5, 2.0]]), c)   # on the last segment
        >>> seg.tolist(), round(lam.item(), 4)
        ([3], 0.6667)
    """
    n, k = x.shape[0], corners.shape[0]
    out_seg = torch.empty(n, dtype=torch.long, device=x.device)
    # Four (rows, K-1) intermediates live at once: to_start, along, lam, dist.
    rows = max(1, chunk_elements // (4 * max(k, 1)))
    with torch.no_grad(), torch.autocast(device_type=x.device.type, enabled=False):
        xf, cf = x.detach().float(), corners.detach().float()
        # Centred on the corners' mean: the expansions below then cancel no more than the
        # curve's spread requires (data far from the origin project as centred data do).
        centre = cf.mean(dim=0)
        xf, cf = xf - centre, cf - centre
        start, e = cf[:-1], cf[1:] - cf[:-1]
        e_sq = e.pow(2).sum(-1)
        c_sq = start.pow(2).sum(-1)
        c_dot_e = (start * e).sum(-1)
        for lo in range(0, n, rows):
            xs = xf[lo : lo + rows]
            x_sq = xs.pow(2).sum(-1, keepdim=True)
            to_start = x_sq - 2.0 * xs @ start.t() + c_sq  # ||x - c_j||^2
            along = xs @ e.t() - c_dot_e  # (x - c_j).e_j
            lam = torch.where(
                e_sq > _DEGENERATE, along / e_sq.clamp_min(_DEGENERATE), torch.zeros_like(along)
            ).clamp_(0.0, 1.0)
            dist = to_start - 2.0 * lam * along + lam.pow(2) * e_sq
            out_seg[lo : lo + rows] = dist.argmin(dim=1)
        # Recompute lambda of the chosen segment directly (no cancellation in the expansion).
        lam = _segment_lambda(xf, cf[out_seg], cf[out_seg + 1])
    return out_seg, lam


class Projection(Strategy):
    """Strategy: how inputs are projected onto the curve at inference."""

    registry = PROJECTIONS

    def __call__(self, x: Tensor, corners: Tensor) -> tuple[Tensor, Tensor]:
        """The curve position of each row of ``x`` on the curve with ``corners``.

        Shape:
            x: ``(N, D)``; corners: ``(K, D)``, K >= 2; returns ``(segment (N,) int64,
            lambda (N,) fp32)``.

        Raises:
            NotImplementedError: the base class; every projection overrides it.
        """
        raise NotImplementedError


@PROJECTIONS.register
class TwoSegmentProjection(Projection):
    """The paper's rule ([vali2023sfvq] eq. (5); [vali2024porcupine] eq. (3)): the two
    segments next to the nearest corner.

    Example:
        >>> c = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
        >>> seg, lam = TwoSegmentProjection()(torch.tensor([[0.5, -1.0], [2.0, 0.75]]), c)
        >>> seg.tolist(), lam.tolist()
        ([0, 1], [0.5, 0.75])
    """

    def __call__(self, x: Tensor, corners: Tensor) -> tuple[Tensor, Tensor]:
        return project_two_segment(x, corners)


@PROJECTIONS.register
class ExactProjection(Projection):
    """The nearest point on the whole curve (all segments, chunked).

    Args:
        chunk_elements: upper bound on the point-to-segment distances held at once.

    Raises:
        ValueError: ``chunk_elements`` is below 1.

    Example:
        >>> c = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
        >>> seg, lam = ExactProjection()(torch.tensor([[0.1, 0.9]]), c)
        >>> seg.tolist(), round(lam.item(), 4)
        ([2], 0.9)
    """

    def __init__(self, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> None:
        if int(chunk_elements) < 1:
            raise ValueError(f"chunk_elements must be >= 1, got {chunk_elements}")
        self.chunk_elements = int(chunk_elements)

    def config(self) -> dict[str, Any]:
        return {"chunk_elements": self.chunk_elements}

    def __call__(self, x: Tensor, corners: Tensor) -> tuple[Tensor, Tensor]:
        return project_exact(x, corners, chunk_elements=self.chunk_elements)


class CurveCodebook(nn.Module):
    """K ordered corner points of a piecewise-linear curve, grown by doubling.

    The parameter ``corners`` is allocated at ``max_size`` rows up front (as in the paper's
    code); the buffer ``active`` says how many are in use, so the state (and a checkpoint)
    records the current size. :meth:`expand_` doubles it without moving the curve.

    Args:
        max_size: rows allocated, the final number of corner points.
        dim: D.
        size: corner points in use at the start (default ``max_size``), >= 2.
        init: ``"uniform"`` U(-1/K, 1/K) or ``"normal"`` N(0, 1) start values (torch's global
            generator, like ``nn.Linear``); :meth:`init_from_data_` replaces them.

    Raises:
        ValueError: ``dim`` is below 1, ``size`` is outside ``[2, max_size]``, or ``init``
            is unknown.

    Example:
        >>> cb = CurveCodebook(8, 2, size=4)
        >>> cb.init_from_data_(torch.randn(100, 2))
        >>> before = cb.codewords.clone()
        >>> old_positions = cb.expand_()
        >>> cb.codebook_size, old_positions.tolist()
        (8, [0.0, 0.01, 1.0, 1.01, 1.99, 2.0, 2.99, 3.0])
        >>> torch.equal(cb.codewords[[0, 2, 5, 7]], before)   # old corners stay corners
        True
    """

    corners: nn.Parameter
    active: Tensor

    def __init__(
        self, max_size: int, dim: int, *, size: int | None = None, init: str = "uniform"
    ) -> None:
        super().__init__()
        size = int(max_size) if size is None else int(size)
        if int(dim) < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if not 2 <= size <= int(max_size):
            raise ValueError(f"size must be in [2, max_size={max_size}], got {size}")
        self.max_size = int(max_size)
        self.dim = int(dim)
        self.init = init
        self.corners = nn.Parameter(initial_codewords(self.max_size, self.dim, init))
        self.register_buffer("active", torch.tensor(size, dtype=torch.long))
        # ``active`` as a Python int for compiled code, where int(buffer) is a host sync that
        # breaks the graph; kept equal by expand_ and state-dict loading (and refreshed by
        # every eager read). A compiled caller recompiles when it changes.
        self._size = size

    @property
    def codebook_size(self) -> int:
        """K, the number of corner points in use."""
        if torch.compiler.is_compiling():
            return self._size
        self._size = int(self.active)
        return self._size

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._size = int(self.active)

    @property
    def codewords(self) -> Tensor:
        """The ``(K, D)`` corner points in use (a differentiable view of ``corners``)."""
        return self.corners[: self.codebook_size]

    def interpolate(self, positions: Tensor) -> Tensor:
        """Points at curve ``positions`` (see :func:`interpolate`); differentiable."""
        return interpolate(self.codewords, positions)

    def project(self, x: Tensor, projection: Projection | None = None) -> tuple[Tensor, Tensor]:
        """``(segment, lambda)`` of each row of ``x`` (default: the exact projection)."""
        projection = ExactProjection() if projection is None else projection
        return projection(x, self.codewords)

    @torch.no_grad()
    def init_from_data_(self, samples: Tensor) -> None:
        """Set the K active corner points to the means of K equal consecutive chunks of
        ``samples`` sorted by L2 norm ([vali2023sfvqcode]): an ordered start near the data mean.

        Shape:
            samples: ``(N, D)`` with N >= K.

        Raises:
            ValueError: ``samples`` is not ``(N, D)`` or has fewer than K rows.
        """
        if samples.dim() != 2 or samples.shape[1] != self.dim:
            raise ValueError(f"samples must have shape (N, {self.dim}), got {tuple(samples.shape)}")
        k = self.codebook_size
        if samples.shape[0] < k:
            raise ValueError(f"samples must hold at least {k} vectors, got {samples.shape[0]}")
        order = samples.float().norm(dim=1).argsort(stable=True)
        chunks = torch.tensor_split(samples.float()[order], k)
        means = torch.stack([c.mean(dim=0) for c in chunks])
        self.corners[:k] = means.to(self.corners)

    @torch.no_grad()
    def expand_(self, eps: float = 0.01) -> Tensor:
        """Double the corner points without changing the curve ([vali2023sfvqcode]).

        Vertex i of the first half becomes the points at positions ``(i, i + eps)``, of the
        second half ``(i - eps, i)``; every old vertex stays a vertex and every new one lies
        on the old curve, so the set of points of the curve is unchanged.

        Returns:
            ``(2K,)`` float64 on the corners' device: the old-curve position of each new corner
            point.

        Raises:
            ValueError: ``eps`` is outside ``(0, 0.5)``, or ``2K`` exceeds ``max_size``.
        """
        if not 0.0 < eps < 0.5:
            raise ValueError(f"eps must be in (0, 0.5), got {eps}")
        k = self.codebook_size
        if 2 * k > self.max_size:
            raise ValueError(
                f"cannot expand {k} corner points to {2 * k}: max_size is {self.max_size}"
            )
        i = torch.arange(k, dtype=torch.float64, device=self.corners.device)
        first = i < k / 2
        lo = torch.where(first, i, i - eps)
        hi = torch.where(first, i + eps, i)
        positions = torch.stack([lo, hi], dim=1).reshape(-1)
        new = interpolate(self.codewords.detach(), positions)
        self.corners[: 2 * k] = new
        self.active.fill_(2 * k)
        self._size = 2 * k
        return positions

    def extra_repr(self) -> str:
        return f"size={self.codebook_size}, max_size={self.max_size}, dim={self.dim}"
