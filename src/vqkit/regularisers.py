"""Regularisers: named auxiliary losses on how a quantizer assigns codes, added to
``out.losses`` in training mode.

:class:`EntropyPenalty` is the codebook-entropy (diversity) penalty of LFQ
([yu2024magvit]), in the factorised form of BSQ ([zhao2024bsq]) for sign
quantizers, and the same penalty over an explicit codebook for
:class:`~vqkit.VectorQuantizer`. See :mod:`vqkit.functional.entropy` for the equations.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from . import distributed
from .functional.entropy import binary_code_entropies, code_entropies
from .registry import REGULARISERS
from .strategy import Strategy


class Regulariser(Strategy):
    """Base class of the regularisers (registry :data:`vqkit.registry.REGULARISERS`)."""

    registry = REGULARISERS


@REGULARISERS.register(aliases=("entropy",))
class EntropyPenalty(Regulariser):
    """``weight * (E_x[H(p(.|x))] - diversity * H(E_x[p(.|x)]))`` with
    ``p(k|x) = softmax_k(-||x - c_k||^2 / temperature)``.

    Minimising it makes each assignment confident (low per-sample entropy) and the batch use
    all codes (high codebook entropy). The batch average is taken over all DDP ranks.
    ``out.losses`` gets the unweighted parts ``entropy_per_sample`` and ``entropy_codebook``
    (nats); ``out.loss`` gets the weighted difference.

    Args:
        weight: loss weight (0.1 as in [yu2024magvit] and vector-quantize-pytorch's LFQ).
        temperature: ``T`` of the soft assignment, in squared input units (0.01: the LFQ
            peer's inverse temperature of 100).
        diversity: weight of the codebook term inside the penalty (``gamma``, 1.0).

    Raises:
        ValueError: ``weight < 0``, ``temperature <= 0`` or ``diversity < 0``.

    Example:
        >>> import torch
        >>> pen = EntropyPenalty(weight=0.1)
        >>> loss, parts = pen.on_bits(torch.randn(6, 4), scale=1.0)
        >>> sorted(parts), loss.dim()
        (['entropy_codebook', 'entropy_per_sample'], 0)
    """

    def __init__(self, weight: float = 0.1, temperature: float = 0.01,
                 diversity: float = 1.0) -> None:
        if not weight >= 0:
            raise ValueError(f"weight must be >= 0, got {weight!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if not diversity >= 0:
            raise ValueError(f"diversity must be >= 0, got {diversity!r}")
        self.weight = float(weight)
        self.temperature = float(temperature)
        self.diversity = float(diversity)

    def config(self) -> dict[str, Any]:
        return {"weight": self.weight, "temperature": self.temperature,
                "diversity": self.diversity}

    def _combine(self, per_sample: Tensor, codebook: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        loss = self.weight * (per_sample - self.diversity * codebook)
        return loss, {"entropy_per_sample": per_sample, "entropy_codebook": codebook}

    def on_bits(self, z: Tensor, scale: float, keep: Tensor | None = None
                ) -> tuple[Tensor, dict[str, Tensor]]:
        """The penalty over the implicit codebook ``{-scale, +scale}^d`` of sign quantization.

        Bit ``i``'s log-odds are ``((z_i + s)^2 - (z_i - s)^2) / T = 4 s z_i / T``.

        Shape:
            z: ``(N, d)`` the values being quantized; keep: optional ``(N,)`` bool rows.
        """
        logits = z.float() * (4.0 * scale / self.temperature)
        return self._combine(*binary_code_entropies(
            logits, weights=keep, sum_over_ranks=distributed.sum_over_ranks))

    def on_codes(self, x: Tensor, codewords: Tensor, keep: Tensor | None = None
                 ) -> tuple[Tensor, dict[str, Tensor]]:
        """The penalty over an explicit codebook (builds the ``(N, K)`` assignment matrix).

        Shape:
            x: ``(N, D)``; codewords: ``(K, D)``; keep: optional ``(N,)`` bool rows.
        """
        x, c = x.float(), codewords.float()
        sq = x.pow(2).sum(1, keepdim=True) - 2 * x @ c.t() + c.pow(2).sum(1)
        return self._combine(*code_entropies(
            -sq / self.temperature, weights=keep, sum_over_ranks=distributed.sum_over_ranks))
