"""Metrics of quantization: functions of indices and reconstructions, not module state."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def _histogram(indices: Tensor, codebook_size: int) -> Tensor:
    flat = indices.reshape(-1)
    flat = flat[flat >= 0]  # -1 marks masked or dropped entries
    return torch.bincount(flat.long(), minlength=codebook_size)[:codebook_size].double()


def perplexity(indices: Tensor, codebook_size: int) -> float:
    """``exp(-sum p_k log p_k)`` of the index histogram ([vali2022nsvqcode]); ``-1`` is ignored.

    Example:
        >>> round(perplexity(torch.tensor([0, 1, 2, 3]), 8), 6)
        4.0
    """
    counts = _histogram(indices, codebook_size)
    total = counts.sum()
    if total == 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))


def usage_fraction(indices: Tensor, codebook_size: int) -> float:
    """Fraction of the codebook that ``indices`` use at least once.

    Example:
        >>> usage_fraction(torch.tensor([0, 0, 3, -1]), 4)
        0.5
    """
    return float((_histogram(indices, codebook_size) > 0).double().mean())


def dead_codes(usage: Tensor, batches: int, threshold: float = 0.01) -> int:
    """Number of codewords picked in fewer than ``threshold`` of ``batches`` batches.

    Args:
        usage: ``(K,)`` count of the batches in which each codeword was picked.
        batches: number of batches the counts cover.
        threshold: the fraction of batches below which a codeword is dead (NSVQ uses 0.01).
    """
    if batches <= 0:
        return 0
    return int((usage.double() / batches < threshold).sum())


def bits_per_vector(codebook_sizes: int | Sequence[int]) -> float:
    """Bits needed to send one vector's indices: ``sum log2 K_m``.

    Args:
        codebook_sizes: K of one codebook, or ``(K_1, ..., K_M)``.

    Returns:
        The bits per vector, a float (fractional unless every K_m is a power of two).

    Raises:
        ValueError: ``codebook_sizes`` is empty or holds a size below 1.

    Example:
        >>> round(bits_per_vector([256, 256, 1000]), 6)
        25.965784
    """
    sizes = [codebook_sizes] if isinstance(codebook_sizes, int) else list(codebook_sizes)
    if not sizes or any(int(s) < 1 for s in sizes):
        raise ValueError(f"codebook_sizes must be positive integers, got {codebook_sizes!r}")
    return float(sum(math.log2(int(s)) for s in sizes))


def mse(x: Tensor, y: Tensor) -> float:
    """Mean squared error per vector, ``(1/N) sum ||x_i - y_i||^2`` ([vali2025thesis] eq. (2.4)).

    Args:
        x: ``(..., D)`` vectors; the N vectors are the rows of ``x.reshape(-1, D)``.
        y: their reconstructions, the same shape.

    Returns:
        The mean over vectors of the squared error summed over the D components (computed
        in float64), in squared units of ``x``.

    Raises:
        ValueError: ``x`` and ``y`` have different shapes.
    """
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    d = (x.double() - y.double()).pow(2)
    return float(d.reshape(-1, x.shape[-1]).sum(dim=1).mean())


def psnr(x: Tensor, y: Tensor, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over all elements, ``10 log10(peak^2 / MSE)``.

    Args:
        x: a signal of any shape.
        y: its reconstruction, the same shape.
        peak: the largest possible value of the signal (1.0 for images in ``[0, 1]``).

    Returns:
        The PSNR in dB, where MSE is the mean squared error per element (float64);
        ``inf`` when ``x`` equals ``y``.

    Raises:
        ValueError: ``x`` and ``y`` have different shapes.
    """
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    err = float((x.double() - y.double()).pow(2).mean())
    return math.inf if err == 0 else 10.0 * math.log10(peak**2 / err)
