"""SpaceFillingVQ: quantization onto a piecewise-linear curve ([vali2023sfvq], [vali2026diveq])."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ..codebooks import CodebookLearning, Gradient
from ..estimators import Estimator, NoiseSubstitution
from ..functional.search import nearest_indices
from ..quantizers.base import Quantizer, assert_in_graph, check_vectors, loss_over_kept
from ..registry import ESTIMATORS, LEARNINGS, PROJECTIONS, QUANTIZERS
from ..strategy import from_config, to_config
from ..types import Progress
from .curve import CurveCodebook, Projection, TwoSegmentProjection, interpolate
from .estimators import SegmentEstimator


@QUANTIZERS.register(aliases=("sfvq",))
class SpaceFillingVQ(Quantizer):
    """Space-filling VQ ([vali2023sfvq]): the codebook is a curve.

    **Indices are float64 curve positions** ``i + lambda`` (segment ``i``, ``0 <= lambda <=
    1``), not integers: :meth:`encode` returns them, :meth:`decode` interpolates
    ``(1 - lambda) c_i + lambda c_{i+1}``, and ``-1`` marks masked entries. Round or floor them
    yourself where an integer index is wanted.

    Training mode (dithering, [vali2023sfvq] eq. (2)): one ``lambda_j ~ U[0, 1)`` per segment
    and forward pass, shared by the batch; each input takes the nearest dithered point
    ``q = (1 - lambda_j) c_j + lambda_j c_{j+1}``, which is differentiable with respect to both
    ends. The estimator then decides the output: :class:`~vqkit.NoiseSubstitution` (default;
    the paper's joint training, eq. (4)), :class:`~vqkit.MSEFit` (stand-alone fitting,
    eq. (3)), :class:`~vqkit.SFDiVeQ`, or any other gradient estimator applied to ``q``.
    Eval mode projects onto the curve with the ``projection`` strategy.

    Args:
        dim: D.
        codebook_size: the final number of corner points (rows allocated up front).
        estimator: training-mode gradient estimator (default ``NoiseSubstitution()``).
        learning: must be :class:`~vqkit.Gradient`; an EMA codebook cannot learn a curve.
        projection: :class:`~vqkit.TwoSegmentProjection` (default, the paper's rule) or
            :class:`~vqkit.ExactProjection`.
        initial_size: corner points in use at the start (default ``codebook_size``); grow
            them with :meth:`expand_`.
        init: ``"uniform"`` or ``"normal"`` start values; see :meth:`init_codebook_`.
        generator: source of the dither.

    Raises:
        TypeError: ``estimator``, ``learning`` or ``projection`` is not a strategy of its
            kind.
        ValueError: ``learning`` is not trained by gradient (EMA); ``dim`` is below 1,
            ``initial_size`` is outside ``[2, codebook_size]``, or ``init`` is unknown.

    Shape:
        input ``(..., D)``; ``quantized`` ``(..., D)``; ``indices`` ``(...)`` float64.

    Example:
        >>> sf = SpaceFillingVQ(dim=4, codebook_size=16, initial_size=4)
        >>> sf.init_codebook_(torch.randn(200, 4))
        >>> _ = sf.expand_()
        >>> out = sf(torch.randn(10, 4))
        >>> sf.codebook_size, out.indices.dtype, out.quantized.shape
        (8, torch.float64, torch.Size([10, 4]))
        >>> x = torch.randn(5, 4)
        >>> torch.equal(sf.decode(sf.encode(x)), sf.eval()(x).quantized)
        True
    """

    index_dtype = torch.float64

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        *,
        estimator: Estimator | None = None,
        learning: CodebookLearning | None = None,
        projection: Projection | None = None,
        initial_size: int | None = None,
        init: str = "uniform",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        estimator = NoiseSubstitution() if estimator is None else estimator
        if not isinstance(estimator, Estimator):
            raise TypeError(f"estimator must be an Estimator, got {estimator!r}")
        learning = Gradient() if learning is None else learning
        if not isinstance(learning, CodebookLearning):
            raise TypeError(f"learning must be a CodebookLearning, got {learning!r}")
        if not learning.trained_by_gradient:
            raise ValueError(
                f"SpaceFillingVQ cannot use learning={learning!r}: each dithered point mixes two "
                "corner points and every corner point is shared by two segments, so a per-"
                "codeword moving average has no target to move to; use learning=Gradient()"
            )
        projection = TwoSegmentProjection() if projection is None else projection
        if not isinstance(projection, Projection):
            raise TypeError(f"projection must be a Projection, got {projection!r}")
        self.dim = int(dim)
        self.estimator = estimator
        self.learning = learning
        self.projection = projection
        self.generator = generator
        self.codebook = CurveCodebook(codebook_size, dim, size=initial_size, init=init)
        self._initial_size = initial_size

    @property
    def codebook_size(self) -> int:
        """K, the number of corner points in use now."""
        return self.codebook.codebook_size

    @property
    def codewords(self) -> Tensor:
        """The ``(K, D)`` corner points in use, in curve order."""
        return self.codebook.codewords

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        """``(K,)``, the corner points in use now: curve positions lie in ``[0, K - 1]`` and
        round to one of them (the counts of :mod:`vqkit.training.evaluate`)."""
        return (self.codebook_size,)

    def _dither(self, k: int, device: torch.device) -> Tensor:
        gen = self.generator
        draw = torch.rand(k - 1, generator=gen, device=gen.device if gen is not None else device)
        return draw.to(device)

    masks_in_place = True
    initialises_from_data = True

    def _train_forward(
        self, x: Tensor, keep: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Mapping[str, Tensor]]:
        c = self.codebook.codewords
        lam_all = self._dither(c.shape[0], c.device)
        dithered = (1.0 - lam_all).unsqueeze(-1) * c[:-1] + lam_all.unsqueeze(-1) * c[1:]
        seg = nearest_indices(x, dithered.detach())[:, 0]
        lam = lam_all[seg]
        start, end = c[seg], c[seg + 1]
        if keep is not None:  # masked rows: input and segment ends 0 (no error, no gradient)
            rows = keep[:, None]
            x, start, end = x.where(rows, 0.0), start.where(rows, 0.0), end.where(rows, 0.0)
        if isinstance(self.estimator, SegmentEstimator):
            out = self.estimator.segment(x.float(), start, end, lam)
        else:
            q = (1.0 - lam).unsqueeze(-1) * start + lam.unsqueeze(-1) * end
            out = self.estimator(x.float(), q, True)
        positions = seg.to(torch.float64) + lam.to(torch.float64)
        if keep is not None:
            loss, losses = loss_over_kept(keep, out.loss, out.losses)
            return out.quantized.to(x.dtype), positions.where(keep, -1.0), loss, losses
        return out.quantized.to(x.dtype), positions, out.loss, out.losses

    def _encode(self, x: Tensor) -> Tensor:
        seg, lam = self.projection(x, self.codebook.codewords)
        return seg.to(torch.float64) + lam.to(torch.float64)

    def _decode(self, indices: Tensor) -> Tensor:
        valid = indices >= 0
        points = interpolate(self.codebook.codewords, indices.clamp_min(0))
        return points * valid.unsqueeze(-1).to(points.dtype)

    def _check_indices(self, indices: Tensor) -> None:
        if not isinstance(indices, Tensor):
            raise TypeError(f"indices must be a torch.Tensor, got {type(indices).__name__}")
        if indices.is_complex() or indices.dtype == torch.bool:
            raise TypeError(f"indices must be float curve positions, got {indices.dtype}")
        if torch.compiler.is_compiling():
            pos, top = indices.to(torch.float64), self.codebook_size - 1
            ok = (pos == -1) | ((pos >= 0) & (pos <= top))  # also False for NaN
            assert_in_graph(ok.all(), f"indices must be curve positions in [0, {top}] or -1")
            return
        if not indices.numel():
            return
        pos = indices.to(torch.float64)
        if not bool(torch.isfinite(pos).all()):
            raise ValueError("indices contain NaN or Inf values")
        top = self.codebook_size - 1
        bad = (pos != -1) & ((pos < 0) | (pos > top))
        if bool(bad.any()):
            raise ValueError(
                f"indices must be curve positions in [0, {top}] or -1 (masked), got "
                f"{pos[bad][0].item()}"
            )

    def decode(self, indices: Tensor) -> Tensor:
        """Points at curve positions ``indices`` (float ``i + lambda``); -1 decodes to zero.

        Shape:
            indices: ``(...)``; returns ``(..., D)``.

        Raises:
            TypeError: ``indices`` is not a tensor, or is complex or bool.
            ValueError: ``indices`` hold NaN/Inf or a value other than -1 outside
                ``[0, K - 1]`` (eager mode).
        """
        self._check_indices(indices)
        flat = indices.reshape(-1).to(torch.float64)
        return self._decode(flat).reshape(*indices.shape, self.dim)

    @torch.no_grad()
    def project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(segment int64, lambda, point)`` of each vector of ``x`` with the projection.

        Shape:
            x: ``(..., D)``; returns ``(...)``, ``(...)``, ``(..., D)``.

        Raises:
            TypeError: ``x`` is not a floating tensor.
            ValueError: ``x`` is not ``(..., D)`` or contains NaN/Inf.
        """
        check_vectors(x, self.dim)
        flat = x.reshape(-1, self.dim)
        seg, lam = self.projection(flat, self.codebook.codewords)
        c = self.codebook.codewords.detach().float()
        point = (1.0 - lam).unsqueeze(-1) * c[seg] + lam.unsqueeze(-1) * c[seg + 1]
        lead = x.shape[:-1]
        return seg.reshape(lead), lam.reshape(lead), point.reshape(x.shape).to(x.dtype)

    @torch.no_grad()
    def init_codebook_(
        self,
        samples: Tensor,
        *,
        generator: torch.Generator | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Corner points = means of equal chunks of ``samples`` sorted by norm
        ([vali2023sfvqcode]). Deterministic and one pass; ``generator`` and ``progress`` are
        accepted for the common interface and unused.

        Args:
            samples: ``(..., D)`` vectors, at least as many as the corner points in use.

        Raises:
            TypeError / ValueError: ``samples`` is not a finite floating ``(..., D)`` tensor,
                or holds fewer vectors than the corner points in use.
        """
        check_vectors(samples, self.dim, "samples")
        self.codebook.init_from_data_(samples.reshape(-1, self.dim))

    def expand_(self, eps: float = 0.01) -> Tensor:
        """Double the corner points without moving the curve; see :meth:`CurveCodebook.expand_`.

        Restart the optimizer afterwards (its state refers to the old rows).

        Returns:
            ``(2K,)`` float64: the old-curve position of each new corner point.

        Raises:
            ValueError: ``eps`` is outside ``(0, 0.5)``, or ``2K`` exceeds ``codebook_size``
                given at construction.
        """
        return self.codebook.expand_(eps)

    def config(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "codebook_size": self.codebook.max_size,
            "estimator": to_config(self.estimator),
            "learning": to_config(self.learning),
            "projection": to_config(self.projection),
            "initial_size": self._initial_size,
            "init": self.codebook.init,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SpaceFillingVQ:
        args = dict(config)
        args["estimator"] = from_config(args["estimator"], ESTIMATORS)
        args["learning"] = from_config(args["learning"], LEARNINGS)
        args["projection"] = from_config(args["projection"], PROJECTIONS)
        return cls(**args)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, codebook_size={self.codebook_size}, estimator={self.estimator!r}, "
            f"projection={self.projection!r}"
        )
