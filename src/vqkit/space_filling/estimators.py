"""Estimators made for the space-filling curve ([vali2023sfvq] §2, [vali2026diveq]).

:class:`~vqkit.SpaceFillingVQ` accepts any :class:`~vqkit.estimators.Estimator`: it passes the
dithered point ``q = (1 - lambda) c_j + lambda c_{j+1}``, which is differentiable with respect
to both segment ends, so NSVQ on top of it is the paper's joint training ([vali2023sfvq]
eq. (4)). Two more strategies live here:

- :class:`MSEFit`: the paper's stand-alone fit ([vali2023sfvq] eq. (3)): output ``q`` itself
  and the loss ``||x - q||^2``, whose gradient reaches ``c_j`` and ``c_{j+1}`` with weights
  ``1 - lambda`` and ``lambda``;
- :class:`SFDiVeQ`: SF-DiVeQ ([vali2026diveq]), which needs the two segment ends and lambda,
  not only the point: a :class:`SegmentEstimator`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..estimators import Estimator
from ..functional import estimators as fe
from ..registry import ESTIMATORS
from ..types import EstimatorOutput


class SegmentEstimator(Estimator):
    """An estimator that sees the chosen segment ``[start, end]`` and ``lambda``.

    Used on a single codeword (a plain :class:`~vqkit.VectorQuantizer`) it sees the segment
    ``[q, q]`` with ``lambda = 0``.
    """

    def segment(self, x: Tensor, start: Tensor, end: Tensor, lam: Tensor) -> EstimatorOutput:
        """Training output for inputs ``x`` (N, D) on segments ``start``/``end`` (N, D) at
        ``lam`` (N,); ``start``/``end`` are differentiable gathers of the corner points.

        Returns:
            An :class:`~vqkit.types.EstimatorOutput` with the ``(N, D)`` output.

        Raises:
            NotImplementedError: the base class; every segment estimator overrides it.
        """
        raise NotImplementedError

    def __call__(self, x: Tensor, q: Tensor, codebook_trained_by_gradient: bool) -> EstimatorOutput:
        return self.segment(x, q, q, q.new_zeros(q.shape[0]))


@ESTIMATORS.register
class SFDiVeQ(SegmentEstimator):
    """SF-DiVeQ ([vali2026diveq], as in [vali2026diveqcode]), no auxiliary loss.

    ``z_q = z + (1 - lambda) ||c_j - z|| sg[n_1] + lambda ||c_{j+1} - z|| sg[n_2]`` with
    ``n_1, n_2`` the unit directions from ``z`` toward ``c_j`` and ``c_{j+1}``, each perturbed
    by ``N(0, sigma^2 I)``. For small ``sigma`` the output is the dithered point; gradients
    reach the input and both segment ends through the two distances.

    Args:
        sigma: standard deviation of the direction noise (1e-3, the ``diveq`` package's value).
        generator: source of the noise.

    Raises:
        ValueError: ``sigma < 0``.

    Example:
        >>> est = SFDiVeQ(sigma=0.0)
        >>> x, a, b = torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
        >>> est.segment(x, a, b, torch.tensor([0.25])).quantized.tolist()
        [[0.75, 0.25]]
    """

    def __init__(self, sigma: float = 1e-3, *, generator: torch.Generator | None = None) -> None:
        if not sigma >= 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)
        self.generator = generator

    def config(self) -> dict[str, Any]:
        return {"sigma": self.sigma}

    def segment(self, x: Tensor, start: Tensor, end: Tensor, lam: Tensor) -> EstimatorOutput:
        lam = lam.to(x.dtype).unsqueeze(-1)
        out = x
        for weight, corner in ((1.0 - lam, start), (lam, end)):
            noise = fe.gaussian_noise(x, self.generator) * self.sigma
            out = out + weight * (fe.diveq(x, corner, noise) - x)
        return EstimatorOutput(out, x.new_zeros((), dtype=torch.float32), {})


@ESTIMATORS.register
class MSEFit(Estimator):
    """Stand-alone fitting ([vali2023sfvq] eq. (3); ``backpropagation=False`` in its code).

    The output is the selected point ``q`` itself and ``loss = mean((x - q)^2)``; calling
    ``loss.backward()`` gives the corner points the exact MSE gradient (weights ``1 - lambda``
    and ``lambda`` on the segment ends). No gradient trick is involved, so this is for fitting
    a quantizer to data, not for passing gradients through it inside a network.

    Example:
        >>> est = MSEFit()
        >>> out = est(torch.zeros(1, 2), torch.ones(1, 2), True)
        >>> out.loss.item(), sorted(out.losses)
        (1.0, ['mse'])
    """

    def __call__(self, x: Tensor, q: Tensor, codebook_trained_by_gradient: bool) -> EstimatorOutput:
        mse = F.mse_loss(q.float(), x.float())
        return EstimatorOutput(q, mse, {"mse": mse})



__all__ = [
    "MSEFit",
    "SFDiVeQ",
    "SegmentEstimator",
]
