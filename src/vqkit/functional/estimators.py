"""Gradient estimators as pure functions: how the gradient of a hard VQ reaches its inputs.

Each takes the input ``x`` and its selected codeword ``q`` (both ``(N, D)``) and returns the
training output. Where the forward value should be exactly ``q``, the output is written as
``sg[q] + (f(x) - sg[f(x)])``: the second term is exactly zero in the forward pass and carries
the estimator's gradient in the backward pass.

**Numerics.** Every function computes in at least fp32 (bf16/fp16 inputs are promoted, so the
norms neither overflow nor lose the direction) and returns that dtype; callers cast back. Each
stays finite for degenerate inputs (``x = 0``, ``x = q``, ``x = -q``, ``||x - q||`` below
1e-30, ``||x||`` above 1e15) and its input gradient is bounded by a constant times the gradient
``g`` reaching the output: ``||dL/dx|| <= ||g||`` (straight-through), ``<= 2 ||g||`` (NSVQ,
DiVeQ, DiVeQ-Detach) and ``<= max_gain ||g||`` (rotation trick); the gradient reaching ``q``
is at most ``||g||``. Below fp32's range (a difference norm that underflows to 0) the
distance's gradient is taken as 0, its subgradient at the kink.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Guards divisions by vector norms.
NORM_EPS = 1e-12
#: Default bound of the rotation trick's gain ``||q|| / ||x||`` (see :func:`rotate_to`).
ROTATION_MAX_GAIN = 100.0


def _promote(x: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
    """``x`` and ``q`` in their common dtype, at least fp32 (differentiable casts)."""
    dtype = torch.promote_types(torch.promote_types(x.dtype, q.dtype), torch.float32)
    return x.to(dtype), q.to(dtype)


def _unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(NORM_EPS)


def _carry(value: Tensor, grad_path: Tensor) -> Tensor:
    """``value`` in the forward pass, ``grad_path``'s gradient in the backward pass."""
    return value + (grad_path - grad_path.detach())


def straight_through(x: Tensor, q: Tensor) -> Tensor:
    """Straight-through estimator ([vali2025thesis] §3.2.2): forward ``q``, identity backward.

    No gradient reaches ``q``; a codebook loss or EMA must train the codebook.
    """
    x, q = _promote(x, q)
    return _carry(q.detach(), x)


def noise_substitution(x: Tensor, q: Tensor, noise: Tensor) -> Tensor:
    """NSVQ ([vali2022nsvq]): ``x + ||x - q|| * v / ||v||`` with ``v`` the given noise.

    The gradient reaches both ``x`` and ``q`` through the error norm (derived from that forward):
    ``dL/dq = -((g.u)/r)(x - q)`` and ``dL/dx = g + ((g.u)/r)(x - q)``.

    Args:
        x: ``(N, D)`` inputs.
        q: ``(N, D)`` selected codewords (differentiable gather of the codebook).
        noise: ``(N, D)`` draws of ``N(0, I)``; only their directions are used.
    """
    x, q = _promote(x, q)
    r = (x - q).norm(dim=-1, keepdim=True)
    return x + r * _unit(noise.detach().to(x.dtype))


def rotate_to(x: Tensor, q: Tensor, max_gain: float = ROTATION_MAX_GAIN) -> Tensor:
    """Rotation trick ([fifty2024rotation] eq. (4)): forward ``q``.

    The gradient reaching ``x`` is ``lambda R^T g``, with ``R = I - 2 r r^T + 2 q^ e^T`` the
    rotation taking ``e = x/||x||`` to ``q^ = q/||q||``, ``r = (e + q^)/||e + q^||`` and
    ``lambda = ||q|| / ||x||``, all treated as constants. No gradient reaches ``q``.

    ``R`` is applied as the product of two Householder reflections, ``(I - 2 r r^T)(I - 2 e
    e^T)``, which equals the paper's ``R`` and stays exactly orthogonal when ``e + q^``
    vanishes (``x = -q``: ``r = 0`` and ``R`` is the reflection ``I - 2 e e^T``) or ``x = 0``.
    The gain ``lambda`` grows without bound as ``||x|| -> 0`` (an all-zero ReLU output or
    padding row would get a gradient of 1e10); it is clipped at ``max_gain``, so
    ``||dL/dx|| <= max_gain ||g||``.

    Args:
        x: ``(N, D)`` inputs.
        q: ``(N, D)`` selected codewords.
        max_gain: upper bound of ``lambda`` (default :data:`ROTATION_MAX_GAIN`).
    """
    x, q = _promote(x, q)
    x_norm = x.norm(dim=-1, keepdim=True).clamp_min(NORM_EPS)
    q_norm = q.norm(dim=-1, keepdim=True)
    e = (x / x_norm).detach()
    q_hat = _unit(q).detach()
    r = _unit(e + q_hat).detach()
    scale = (q_norm / x_norm).clamp(max=max_gain).detach()
    reflected = x - 2.0 * e * (e * x).sum(-1, keepdim=True)
    rotated = reflected - 2.0 * r * (r * reflected).sum(-1, keepdim=True)
    return _carry(q.detach(), scale * rotated)


def diveq(x: Tensor, q: Tensor, noise: Tensor) -> Tensor:
    """DiVeQ ([vali2026diveq]): ``x + ||q - x|| * sg[unit((q - x) + noise)]``.

    The forward value tends to ``q`` as the noise goes to zero; the gradient reaches ``x`` and
    ``q`` through the distance.

    Args:
        noise: ``(N, D)`` draws of ``N(0, sigma^2 I)`` (already scaled by the std ``sigma``).
    """
    x, q = _promote(x, q)
    delta = q - x
    direction = _unit(delta.detach() + noise.detach().to(x.dtype))
    return x + delta.norm(dim=-1, keepdim=True) * direction


def diveq_detach(x: Tensor, q: Tensor) -> Tensor:
    """DiVeQ-Detach ([vali2026diveq]): ``x + ||q - x|| * sg[(q - x)/||q - x||]``, forward ``q``."""
    x, q = _promote(x, q)
    delta = q - x
    return x + delta.norm(dim=-1, keepdim=True) * _unit(delta.detach())


def gaussian_noise(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """``N(0, I)`` draws shaped like ``like`` (fp32), from ``generator`` when given."""
    device = generator.device if generator is not None else like.device
    return torch.randn(like.shape, generator=generator, device=device).to(like.device)
