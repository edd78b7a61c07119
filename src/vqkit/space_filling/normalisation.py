"""Occurrence normalisation ([vali2024porcupine] §4): equal-occupancy codewords from a curve.

Train embeddings are projected onto the learned curve, ordered along it by their curve
position ``(segment, lambda)`` starting at ``c_0``, and cut into K consecutive chunks of equal
count; each chunk's mean projected point becomes a codeword. New embeddings are then encoded
by ordinary nearest-neighbour search over these codewords (Voronoi cells), so each index is
used by about M/K of the training embeddings.

Differences from the published code ([vali2024porcupinecode]), by choice: points are sorted
by ``lambda`` inside a segment (the code keeps arrival order), and chunks do not overlap
(the code shares one fractionally weighted point between neighbouring chunks); chunk sizes
differ by at most one when K does not divide M.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..quantizers.vector import VectorQuantizer
from .quantizer import SpaceFillingVQ


def resample_curve(ordered_points: Tensor, codebook_size: int) -> Tensor:
    """Means of ``codebook_size`` consecutive, equal-count chunks of ``ordered_points``.

    Shape:
        ordered_points: ``(M, D)``, M >= K; returns ``(K, D)``.

    Raises:
        ValueError: ``ordered_points`` is not 2-D, or ``codebook_size`` is outside ``[1, M]``.

    Example:
        >>> resample_curve(torch.arange(6.0).unsqueeze(1), 3).flatten().tolist()
        [0.5, 2.5, 4.5]
    """
    if ordered_points.dim() != 2:
        raise ValueError(f"ordered_points must be (M, D), got {tuple(ordered_points.shape)}")
    if not 1 <= codebook_size <= ordered_points.shape[0]:
        raise ValueError(
            f"codebook_size must be in [1, M={ordered_points.shape[0]}], got {codebook_size}"
        )
    chunks = torch.tensor_split(ordered_points, codebook_size)
    return torch.stack([c.mean(dim=0) for c in chunks])


@torch.no_grad()
def occurrence_normalise(
    quantizer: SpaceFillingVQ, embeddings: Tensor, *, codebook_size: int | None = None
) -> VectorQuantizer:
    """A nearest-neighbour :class:`~vqkit.VectorQuantizer` whose codewords split the training
    ``embeddings`` into equal-count groups along ``quantizer``'s curve (PORCUPINE).

    The projection is ``quantizer``'s own strategy (the paper's two-segment rule by default).

    Args:
        quantizer: a trained :class:`~vqkit.SpaceFillingVQ`.
        embeddings: ``(M, D)`` training vectors, M >= K.
        codebook_size: K of the result (default: the curve's number of corner points).

    Returns:
        An eval-mode ``VectorQuantizer``; ``encode`` gives its nearest-codeword indices.

    Raises:
        TypeError: ``quantizer`` is not a :class:`~vqkit.SpaceFillingVQ`, or ``embeddings``
            is not of a floating dtype.
        ValueError: ``embeddings`` is not an ``(M, D)`` tensor with the quantizer's D or
            contains NaN/Inf, or ``codebook_size`` is outside ``[1, M]``.

    Example:
        >>> from vqkit import fit_space_filling
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(2000, 3, generator=g)
        >>> sf = fit_space_filling(x, 3, epochs_per_stage=1, generator=g)
        >>> vq = occurrence_normalise(sf, x)
        >>> torch.bincount(vq.encode(x), minlength=8).shape
        torch.Size([8])
    """
    if not isinstance(quantizer, SpaceFillingVQ):
        raise TypeError(f"quantizer must be a SpaceFillingVQ, got {type(quantizer).__name__}")
    if not isinstance(embeddings, Tensor) or embeddings.dim() != 2:
        got = getattr(embeddings, "shape", type(embeddings).__name__)
        raise ValueError(f"embeddings must be an (M, D) tensor, got {got}")
    k = quantizer.codebook_size if codebook_size is None else int(codebook_size)
    seg, lam, points = quantizer.project(embeddings)
    order = (seg.to(torch.float64) + lam.to(torch.float64)).argsort(stable=True)
    codewords = resample_curve(points.float()[order], k)
    vq = VectorQuantizer(quantizer.dim, k).to(codewords.device)
    vq.codebook.overwrite_(torch.arange(k, device=codewords.device), codewords)
    return vq.eval()
