"""Metrics of quantization: functions of indices and reconstructions, not module state."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def index_histogram(indices: Tensor, codebook_size: int) -> Tensor:
    """How often each of the ``codebook_size`` indices occurs in ``indices``.

    Args:
        indices: integer indices of any shape, each in ``[0, K)``; ``-1`` marks a masked or
            dropped entry and is not counted.
        codebook_size: K, the number of bins.

    Returns:
        ``(K,)`` int64 counts, ``counts[k] = #{i : indices[i] == k}``.

    Raises:
        TypeError: if ``indices`` is not an integer tensor (round curve positions first).
        ValueError: if ``codebook_size < 1`` or an index is below -1 or at least K.

    Example:
        >>> index_histogram(torch.tensor([0, 2, 2, 3, -1]), 4).tolist()
        [1, 0, 2, 1]
    """
    if not isinstance(indices, Tensor) or indices.is_floating_point() or indices.is_complex():
        got = indices.dtype if isinstance(indices, Tensor) else type(indices).__name__
        raise TypeError(f"indices must be an integer tensor, got {got}")
    if int(codebook_size) < 1:
        raise ValueError(f"codebook_size must be >= 1, got {codebook_size}")
    flat = indices.reshape(-1).long()
    flat = flat[flat != -1]  # -1 marks masked or dropped entries
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= codebook_size):
        raise ValueError(f"indices must lie in [0, {codebook_size}) or be -1, got "
                         f"[{int(flat.min())}, {int(flat.max())}]")
    return torch.bincount(flat, minlength=codebook_size)


def counts_perplexity(counts: Tensor) -> float:
    """``exp(-sum p_k log p_k)`` with ``p = counts / counts.sum()`` ([vali2022nsvqcode]): the
    effective number of codewords in use; 0.0 for an empty histogram.

    Args:
        counts: ``(K,)`` non-negative counts (e.g. of :func:`index_histogram`).

    Example:
        >>> counts_perplexity(torch.tensor([5, 5, 0, 0]))
        2.0
    """
    c = counts.double()
    total = c.sum()
    if total == 0:
        return 0.0
    p = c[c > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))


def perplexity(indices: Tensor, codebook_size: int) -> float:
    """:func:`counts_perplexity` of the :func:`index_histogram` of ``indices``; ``-1`` is
    ignored.

    Raises:
        TypeError, ValueError: as :func:`index_histogram`.

    Example:
        >>> round(perplexity(torch.tensor([0, 1, 2, 3]), 8), 6)
        4.0
    """
    return counts_perplexity(index_histogram(indices, codebook_size))


def usage_fraction(indices: Tensor, codebook_size: int) -> float:
    """Fraction of the codebook that ``indices`` use at least once; ``-1`` is ignored.

    Raises:
        TypeError, ValueError: as :func:`index_histogram`.

    Example:
        >>> usage_fraction(torch.tensor([0, 0, 3, -1]), 4)
        0.5
    """
    return float((index_histogram(indices, codebook_size) > 0).double().mean())


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
