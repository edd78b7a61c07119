"""Estimator strategies: what a quantizer outputs in training and which losses it adds.

An estimator decides how the gradient of the hard nearest-codeword choice reaches the input
(and, for some, the codebook). It is one axis of a quantizer; how the codebook learns
(gradient or EMA, see :mod:`vqkit.codebooks`) is the other. In eval mode no estimator runs:
quantizers return the hard codeword.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .functional import estimators as fe
from .registry import ESTIMATORS
from .strategy import Strategy
from .types import EstimatorOutput


def _zero(x: Tensor) -> Tensor:
    return x.new_zeros((), dtype=torch.float32)


class Estimator(Strategy):
    """Base class: ``__call__(x, q, codebook_trained_by_gradient) -> EstimatorOutput``."""

    registry = ESTIMATORS

    def __call__(self, x: Tensor, q: Tensor, codebook_trained_by_gradient: bool) -> EstimatorOutput:
        """The training-mode output for inputs ``x`` and their nearest codewords ``q``.

        Args:
            x: ``(N, D)`` inputs.
            q: ``(N, D)`` their hard (nearest) codewords, differentiable w.r.t. the codebook.
            codebook_trained_by_gradient: whether the optimizer trains the codewords (a
                codebook loss is added only then).

        Returns:
            An :class:`~vqkit.types.EstimatorOutput`: the ``(N, D)`` output and the losses.

        Raises:
            NotImplementedError: the base class; every estimator overrides it.
        """
        raise NotImplementedError


@ESTIMATORS.register(aliases=("nsvq",))
class NoiseSubstitution(Estimator):
    """NSVQ ([vali2022nsvq]): ``x + ||x - q|| v/||v||``, no extra loss.

    The simulated error has the magnitude of the real one and a direction uniform on the
    sphere, so ``E[output] = x``. Gradients reach the input and the selected codewords.

    Args:
        generator: source of the noise ``v ~ N(0, I)``, one draw per vector and forward.

    Example:
        >>> from vqkit import VectorQuantizer
        >>> vq = VectorQuantizer(dim=4, codebook_size=8, estimator=NoiseSubstitution())
        >>> out = vq(torch.randn(3, 4))
        >>> out.loss.item(), out.quantized.shape
        (0.0, torch.Size([3, 4]))
    """

    def __init__(self, *, generator: torch.Generator | None = None) -> None:
        self.generator = generator

    def __call__(self, x: Tensor, q: Tensor, codebook_trained_by_gradient: bool) -> EstimatorOutput:
        noise = fe.gaussian_noise(x, self.generator)
        return EstimatorOutput(fe.noise_substitution(x, q, noise), _zero(x), {})


class _CommitmentLosses(Estimator):
    """Shared STE-style losses ([vali2025thesis] eq. (3.5)): codebook + beta * commitment.

    The codebook term ``||sg[x] - q||^2`` is added only when the codebook learns by gradient;
    with an EMA codebook only the commitment term ``||x - sg[q]||^2`` remains.
    """

    def __init__(self, beta: float = 0.25) -> None:
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.beta = float(beta)

    def config(self) -> dict[str, Any]:
        return {"beta": self.beta}

    def _losses(self, x: Tensor, q: Tensor, by_gradient: bool) -> tuple[Tensor, dict[str, Tensor]]:
        commitment = F.mse_loss(x, q.detach())
        losses = {"commitment": commitment}
        loss = self.beta * commitment
        if by_gradient:
            losses["codebook"] = F.mse_loss(q, x.detach())
            loss = loss + losses["codebook"]
        return loss, losses


@ESTIMATORS.register(aliases=("ste",))
class StraightThrough(_CommitmentLosses):
    """Straight-through estimator with codebook and commitment losses ([vandenoord2017vqvae]).

    Args:
        beta: weight of the commitment loss ``||x - sg[q]||^2`` (0.25 as in VQ-VAE).

    Raises:
        ValueError: ``beta < 0``.
    """

    def __call__(self, x: Tensor, q: Tensor, codebook_trained_by_gradient: bool) -> EstimatorOutput:
        loss, losses = self._losses(x, q, codebook_trained_by_gradient)
        return EstimatorOutput(fe.straight_through(x, q), loss, losses)


@ESTIMATORS.register(aliases=("rotation",))
class RotationTrick(_CommitmentLosses):
    """Rotation trick ([fifty2024rotation]): forward ``q``, gradient rotated.

    The codebook learns from the same codebook loss as STE (or by EMA). The gradient reaching
    the input is ``lambda R^T g`` with ``lambda = ||q|| / ||x||`` clipped at ``max_gain``
    (see :func:`vqkit.functional.estimators.rotate_to`), so an all-zero input row cannot get
    an unbounded gradient.

    Args:
        beta: weight of the commitment loss.
        max_gain: upper bound of the gain ``||q|| / ||x||`` (default 100).

    Raises:
        ValueError: ``beta < 0`` or ``max_gain <= 0``.
    """

    def __init__(self, beta: float = 0.25, max_gain: float = fe.ROTATION_MAX_GAIN) -> None:
        super().__init__(beta)
        if not max_gain > 0:
            raise ValueError(f"max_gain must be > 0, got {max_gain}")
        self.max_gain = float(max_gain)

    def config(self) -> dict[str, Any]:
        return {"beta": self.beta, "max_gain": self.max_gain}

    def __call__(self, x: Tensor, q: Tensor, codebook_trained_by_gradient: bool) -> EstimatorOutput:
        loss, losses = self._losses(x, q, codebook_trained_by_gradient)
        return EstimatorOutput(fe.rotate_to(x, q, self.max_gain), loss, losses)


@ESTIMATORS.register(aliases=("diveq",))
class DiVeQ(Estimator):
    """DiVeQ ([vali2026diveq]), no auxiliary loss.

    Args:
        sigma: the **standard deviation** of the direction noise ``N(0, sigma^2 I)``. The
            default 1e-3 matches the author's ``diveq`` package, whose ``noise_var`` argument is
            in fact used as a standard deviation ([vali2026diveqcode]).
        generator: source of the noise.

    Raises:
        ValueError: ``sigma < 0``.
    """

    def __init__(self, sigma: float = 1e-3, *, generator: torch.Generator | None = None) -> None:
        if not sigma >= 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)
        self.generator = generator

    def config(self) -> dict[str, Any]:
        return {"sigma": self.sigma}

    def __call__(self, x: Tensor, q: Tensor, codebook_trained_by_gradient: bool) -> EstimatorOutput:
        noise = fe.gaussian_noise(x, self.generator) * self.sigma
        return EstimatorOutput(fe.diveq(x, q, noise), _zero(x), {})


@ESTIMATORS.register(aliases=("diveq-detach",))
class DiVeQDetach(Estimator):
    """DiVeQ-Detach ([vali2026diveq]): ``x + ||q - x|| sg[unit(q - x)]``; forward q, no noise."""

    def __call__(self, x: Tensor, q: Tensor, codebook_trained_by_gradient: bool) -> EstimatorOutput:
        return EstimatorOutput(fe.diveq_detach(x, q), _zero(x), {})

