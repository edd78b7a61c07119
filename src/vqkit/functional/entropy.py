"""Entropies of soft code assignments, for the codebook-entropy (diversity) penalty.

A vector ``x`` is softly assigned to the codes ``c_k`` by ``p(k | x) = softmax_k(-||x - c_k||^2
/ T)``. The entropy penalty of [yu2024magvit] is ``E_x[H(p(. | x))] - H(E_x[p(. | x)])``: low
per-sample entropy (confident assignments) and high entropy of the batch-averaged distribution
(all codes used).

- :func:`code_entropies`: an explicit codebook (the ``(N, K)`` assignment matrix);
- :func:`binary_code_entropies`: the implicit ``2^d`` codebook of sign quantization. The
  assignment factorises over the bits, so the per-sample entropy is the sum of the bits'
  binary entropies exactly; the entropy of the averaged distribution is replaced by the sum of
  the averaged bits' entropies (the factorised entropy of [zhao2024bsq]), an upper bound that
  needs no ``2^d`` tensor. Memory is ``O(N d)`` for any ``d``.

Batch means are sums and counts passed through ``sum_over_ranks`` (e.g.
:func:`vqkit.distributed.sum_over_ranks`), so under DDP both terms are those of the global
batch, whatever the ranks' batch sizes (an empty batch included).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

#: Probabilities are clamped here before a logarithm of a batch average.
EPS = 1e-12

Reducer = Callable[[Tensor], Tensor]


def _identity(t: Tensor) -> Tensor:
    return t


def _batch_mean(values: Tensor, weights: Tensor | None, sum_over_ranks: Reducer) -> Tensor:
    """Mean over the rows (axis 0) of all ranks, rows with weight 0 left out (0 if none)."""
    if weights is None:
        total, count = values.sum(dim=0), values.new_full((), values.shape[0])
    else:
        w = weights.to(values.dtype).reshape(-1, *([1] * (values.dim() - 1)))
        total, count = (values * w).sum(dim=0), w.sum()
    return sum_over_ranks(total) / sum_over_ranks(count.detach()).clamp_min(1)


def _binary_entropy_of_logits(a: Tensor) -> Tensor:
    """``H(sigmoid(a))`` in nats, stable for large ``|a|``."""
    p = torch.sigmoid(a)
    return -(p * F.logsigmoid(a) + (1 - p) * F.logsigmoid(-a))


def _binary_entropy(p: Tensor, q: Tensor) -> Tensor:
    """``H`` in nats of a bit that is 1 with probability ``p`` and 0 with probability ``q``,
    both given (``1 - p`` loses ``q``'s digits when ``p`` is near 1). The logarithms' arguments
    are floored at :data:`EPS`, so a bit that is on (or off) in every sample gives ``0 * log``
    of a finite number, not ``0 * log 0`` = NaN, and a finite gradient."""
    return -(p * p.clamp_min(EPS).log() + q * q.clamp_min(EPS).log())


def binary_code_entropies(
    logits: Tensor, *, weights: Tensor | None = None, sum_over_ranks: Reducer = _identity
) -> tuple[Tensor, Tensor]:
    """Per-sample and codebook entropy (nats) of factorised binary assignments.

    Args:
        logits: ``(N, d)`` log-odds ``log p(b_i = 1 | x) / p(b_i = 0 | x)`` of each bit.
        weights: optional ``(N,)`` 0/1 row weights (rows with 0 count nowhere).
        sum_over_ranks: sums a tensor over data-parallel ranks (identity by default).

    Returns:
        ``(E_x sum_i H(p_i(x)), sum_i H(E_x p_i(x)))``, two scalars. The first equals the
        entropy of the ``2^d``-way softmax exactly; the second is [zhao2024bsq]'s factorised
        codebook entropy (equal to the joint one when the averaged bits are independent).
    """
    logits = logits.float()
    per_sample = _batch_mean(_binary_entropy_of_logits(logits).sum(dim=1), weights, sum_over_ranks)
    # P(bit = 1) and P(bit = 0) averaged together (one reduction over ranks), each from its
    # own sigmoid so that neither is 1 minus the other
    both = _batch_mean(torch.sigmoid(torch.cat([logits, -logits], dim=1)), weights,
                       sum_over_ranks)
    return per_sample, _binary_entropy(*both.split(logits.shape[1])).sum()


def code_entropies(
    logits: Tensor, *, weights: Tensor | None = None, sum_over_ranks: Reducer = _identity
) -> tuple[Tensor, Tensor]:
    """Per-sample and codebook entropy (nats) of a softmax over an explicit codebook.

    Args:
        logits: ``(N, K)`` unnormalised log-probabilities (``-||x - c_k||^2 / T``).
        weights: optional ``(N,)`` 0/1 row weights.
        sum_over_ranks: sums a tensor over data-parallel ranks.

    Returns:
        ``(E_x H(p(. | x)), H(E_x p(. | x)))``, two scalars.
    """
    logp = torch.log_softmax(logits.float(), dim=1)
    p = logp.exp()
    per_sample = _batch_mean(-(p * logp).sum(dim=1), weights, sum_over_ranks)
    mean_p = _batch_mean(p, weights, sum_over_ranks).clamp_min(EPS)
    return per_sample, -(mean_p * mean_p.log()).sum()
