"""Disclosure metrics of an index histogram ([vali2024porcupine] §6).

``g(k)`` counts the test vectors (speakers) that received index k, ``M = sum g`` and K bins.
A rarely used index singles out few speakers: its disclosure is ``log2(M / g(k))`` bits.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor


def _counts(g: Tensor) -> Tensor:
    if not isinstance(g, Tensor) or g.dim() != 1 or g.numel() == 0:
        got = getattr(g, "shape", type(g).__name__)
        raise ValueError(f"g must be a non-empty 1-D tensor of counts, got {got}")
    if g.is_floating_point() and not bool((g == g.round()).all()):
        raise ValueError("g must hold integer counts")
    g = g.to(torch.float64)
    if bool((g < 0).any()) or float(g.sum()) <= 0:
        raise ValueError("g must hold non-negative counts with a positive sum")
    return g


def kl_divergence_to_binomial(g: Tensor) -> float:
    """KL divergence (bits) of the histogram of ``g`` from Binomial(M, 1/K).

    ``f_hat(n)`` is the fraction of the K bins that hold exactly n vectors (the "histogram of
    histograms", ``bincount(g) / K``); ``f(n)`` is the Binomial(M, 1/K) pmf, the occupancy of a
    bin if every index were equally likely. ``KL = sum_n f_hat(n) log2(f_hat(n) / f(n))`` over
    the n with ``f_hat(n) > 0``. ``log f`` is computed in log space, so far-off counts give a
    large finite value instead of an underflow to infinity.

    Raises:
        ValueError: ``g`` is not a non-empty 1-D tensor of non-negative integer counts with a
            positive sum.

    Example:
        >>> round(kl_divergence_to_binomial(torch.tensor([2, 2])), 4)   # -log2 f(2), f(2) = 6/16
        1.415
    """
    g = _counts(g)
    m, k = float(g.sum()), g.numel()
    values, counts = torch.unique(g, return_counts=True)
    f_hat = counts.to(torch.float64) / k
    p = 1.0 / k
    log_f = (
        math.lgamma(m + 1) - torch.lgamma(values + 1) - torch.lgamma(m - values + 1)
        + values * math.log(p) + (m - values) * (math.log1p(-p) if k > 1 else 0.0)
    )
    return float((f_hat * (torch.log(f_hat) - log_f)).sum() / math.log(2))


def worst_case_disclosure(g: Tensor) -> float:
    """``-log2(min_k g(k) / M)`` bits ([vali2024porcupine] §6); infinite when some index is unused.

    Raises:
        ValueError: ``g`` is not a non-empty 1-D tensor of non-negative integer counts with a
            positive sum.

    Example:
        >>> worst_case_disclosure(torch.tensor([8, 4, 2, 2]))
        3.0
    """
    g = _counts(g)
    low = float(g.min())
    return math.inf if low == 0 else -math.log2(low / float(g.sum()))


def worst_case_disclosure_plus_one(g: Tensor) -> float:
    """The published evaluation code's variant: ``-log2((min_k g(k) + 1) / M)``, finite.

    Raises:
        ValueError: ``g`` is not a non-empty 1-D tensor of non-negative integer counts with a
            positive sum.

    Example:
        >>> worst_case_disclosure_plus_one(torch.tensor([15, 0, 1]))
        4.0
    """
    g = _counts(g)
    return -math.log2((float(g.min()) + 1.0) / float(g.sum()))


def average_disclosure(g: Tensor) -> float:
    """``-sum_k (g(k)/M) log2(g(k)/M)``: the entropy of the index in bits (at most log2 K).

    Raises:
        ValueError: ``g`` is not a non-empty 1-D tensor of non-negative integer counts with a
            positive sum.

    Example:
        >>> average_disclosure(torch.tensor([5, 5, 5, 5]))
        2.0
    """
    g = _counts(g)
    p = g[g > 0] / g.sum()
    return float(-(p * torch.log2(p)).sum())


def sparseness(g: Tensor) -> float:
    """``||g||_2 / ||g||_1`` [hurley2009sparsity]: ``1/sqrt(K)`` if uniform, 1 for a single bin.

    Raises:
        ValueError: ``g`` is not a non-empty 1-D tensor of non-negative integer counts with a
            positive sum.

    Example:
        >>> sparseness(torch.tensor([3, 3, 3, 3]))
        0.5
    """
    g = _counts(g)
    return float(g.norm() / g.abs().sum())


def std_of_counts(g: Tensor) -> float:
    """Population standard deviation of the counts (``numpy.std``).

    Raises:
        ValueError: ``g`` is not a non-empty 1-D tensor of non-negative integer counts with a
            positive sum.

    Example:
        >>> std_of_counts(torch.tensor([1, 3]))
        1.0
    """
    g = _counts(g)
    return float(g.std(correction=0))


@dataclass(frozen=True)
class PrivacyMetrics:
    """The five metrics of [vali2024porcupine] §6 (plus the published code's worst-case variant)."""

    kl_divergence: float
    worst_case_disclosure: float
    worst_case_disclosure_plus_one: float
    average_disclosure: float
    sparseness: float
    std: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def privacy_metrics(g: Tensor) -> PrivacyMetrics:
    """All metrics of the index histogram ``g``.

    Raises:
        ValueError: ``g`` is not a non-empty 1-D tensor of non-negative integer counts with a
            positive sum.

    Example:
        >>> m = privacy_metrics(torch.tensor([4, 4, 4, 4]))
        >>> m.worst_case_disclosure, m.average_disclosure, m.std
        (2.0, 2.0, 0.0)
    """
    return PrivacyMetrics(
        kl_divergence=kl_divergence_to_binomial(g),
        worst_case_disclosure=worst_case_disclosure(g),
        worst_case_disclosure_plus_one=worst_case_disclosure_plus_one(g),
        average_disclosure=average_disclosure(g),
        sparseness=sparseness(g),
        std=std_of_counts(g),
    )
