"""Curve positions of inputs and the unit directions between consecutive codewords."""

from __future__ import annotations

import torch
from torch import Tensor

from ..functional.estimators import NORM_EPS
from ..space_filling.quantizer import SpaceFillingVQ


@torch.no_grad()
def curve_positions(quantizer: SpaceFillingVQ, x: Tensor) -> Tensor:
    """Float curve positions ``i + lambda`` of ``x`` (``(..., D)`` -> ``(...)``, float64),
    from ``quantizer``'s projection: the order of inputs along the learned curve.

    Raises:
        TypeError: ``quantizer`` is not a :class:`~vqkit.SpaceFillingVQ`, or ``x`` is not a
            floating-point tensor.
        ValueError: ``x`` is not ``(..., D)`` or holds NaN/Inf (``quantizer.encode``'s checks).

    Example:
        >>> from vqkit import SpaceFillingVQ
        >>> sf = SpaceFillingVQ(2, 3)
        >>> curve_positions(sf, sf.codewords.detach()).tolist()
        [0.0, 1.0, 2.0]
    """
    if not isinstance(quantizer, SpaceFillingVQ):
        raise TypeError(f"quantizer must be a SpaceFillingVQ, got {type(quantizer).__name__}")
    return quantizer.encode(x)


def nearest_corner(positions: Tensor) -> Tensor:
    """Integer corner index nearest to each curve position (``round``); -1 stays -1.

    Example:
        >>> nearest_corner(torch.tensor([0.2, 0.5, 2.7, -1.0])).tolist()
        [0, 0, 3, -1]
    """
    if not positions.is_floating_point():
        return positions.long()
    return torch.where(positions < 0, -1, positions.round()).long()


def unit_directions(codewords: Tensor) -> Tensor:
    """``(c_{j+1} - c_j) / ||c_{j+1} - c_j||`` for j = 0..K-2: the interpretable directions of
    [vali2025ganlatent]; a zero-length segment gives a zero vector.

    Shape:
        codewords: ``(K, D)``; returns ``(K - 1, D)``.

    Raises:
        ValueError: ``codewords`` is not ``(K, D)`` with ``K >= 2``.

    Example:
        >>> unit_directions(torch.tensor([[0.0, 0.0], [3.0, 4.0], [3.0, 6.0]]))
        tensor([[0.6000, 0.8000],
                [0.0000, 1.0000]])
    """
    if codewords.dim() != 2 or codewords.shape[0] < 2:
        raise ValueError(f"codewords must be (K, D) with K >= 2, got {tuple(codewords.shape)}")
    diff = (codewords[1:] - codewords[:-1]).detach()
    return diff / diff.norm(dim=1, keepdim=True).clamp_min(NORM_EPS)
