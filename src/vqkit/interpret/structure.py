"""Codeword distance matrix and index transition matrix ([vali2023sfvq] Fig. 3c-d)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .directions import nearest_corner


def codeword_distances(codewords: Tensor) -> Tensor:
    """Euclidean distances between all codewords, ``(K, K)``; a well-ordered curve shows
    blocks along the diagonal.

    Raises:
        ValueError: ``codewords`` is not ``(K, D)``.

    Example:
        >>> codeword_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0]])).tolist()
        [[0.0, 5.0], [5.0, 0.0]]
    """
    if codewords.dim() != 2:
        raise ValueError(f"codewords must be (K, D), got {tuple(codewords.shape)}")
    c = codewords.detach().double()
    return torch.cdist(c, c, compute_mode="donot_use_mm_for_euclid_dist").float()


def transition_matrix(sequences: Sequence[Tensor] | Tensor, codebook_size: int) -> Tensor:
    """Counts ``T[i, j]``: how often index j immediately follows index i in a sequence.

    Float curve positions are binned at the nearest corner; pairs touching -1 are skipped.

    Args:
        sequences: one ``(T,)`` index sequence or a list of them (e.g. one per utterance).
        codebook_size: K.

    Raises:
        ValueError: an index is ``>= codebook_size``.

    Example:
        >>> transition_matrix(torch.tensor([0, 1, 1, 2, -1, 0]), 3).tolist()
        [[0, 1, 0], [0, 1, 1], [0, 0, 0]]
    """
    if isinstance(sequences, Tensor):
        sequences = [sequences]
    out = torch.zeros(codebook_size * codebook_size, dtype=torch.long)
    for seq in sequences:
        idx = nearest_corner(seq.reshape(-1))
        if idx.numel() and int(idx.max()) >= codebook_size:
            raise ValueError(
                f"indices must be < codebook_size={codebook_size}, got {int(idx.max())}"
            )
        a, b = idx[:-1], idx[1:]
        ok = (a >= 0) & (b >= 0)
        out += torch.bincount(a[ok] * codebook_size + b[ok], minlength=codebook_size**2)
    return out.reshape(codebook_size, codebook_size)
