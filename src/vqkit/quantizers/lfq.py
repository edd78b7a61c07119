"""LFQ and BSQ: sign (binary) quantization with an implicit ``2^d`` codebook.

- :class:`LFQ`, the lookup-free quantizer of [yu2024magvit]: each of the ``d`` channels
  is quantized to its sign, ``q_i = sign(z_i)`` (0 counts as negative), so the codebook is
  ``{-1, 1}^d``;
- :class:`BSQ`, binary spherical quantization ([zhao2024bsq]): the input is first put on
  the unit sphere, ``u = z / ||z||``, and ``q = sign(u) / sqrt(d)`` lies on it too.

The index is the binary number of the signs, ``sum_i [z_i > 0] 2^i`` (first channel least
significant, as FSQ's mixed radix with all ``L_i = 2``). The entropy penalty
(:class:`~vqkit.regularisers.EntropyPenalty`) is computed bit by bit in ``O(N d)`` memory: no
``(N, 2^d)`` tensor is built for any ``d``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..estimators import Estimator, StraightThrough
from ..registry import ESTIMATORS, QUANTIZERS, REGULARISERS
from ..regularisers import EntropyPenalty, Regulariser
from ..strategy import from_config, to_config
from .base import check_index_tensor
from .implicit import ImplicitCodebookQuantizer, check_implicit_estimator

#: The default regulariser of LFQ and BSQ (weight 0.1, temperature 0.01, diversity 1).
DEFAULT_PENALTY = EntropyPenalty()
#: More bits than this would overflow int64 indices.
MAX_BITS = 62


def code_bits(codebook_size: Any) -> int:
    """``log2(codebook_size)`` for a power of two in ``[2, 2^MAX_BITS]``.

    Raises:
        ValueError: ``codebook_size`` is not an int power of two in that range.
    """
    if (isinstance(codebook_size, bool) or not isinstance(codebook_size, int)
            or codebook_size < 2 or codebook_size & (codebook_size - 1)
            or codebook_size > 2**MAX_BITS):
        raise ValueError(
            f"codebook_size must be a power of two in [2, 2**{MAX_BITS}] (2^d codes of d bits), "
            f"got {codebook_size!r}"
        )
    return codebook_size.bit_length() - 1


@QUANTIZERS.register(aliases=("lfq",))
class LFQ(ImplicitCodebookQuantizer):
    """Lookup-free quantization: ``q = sign(z)`` per channel, ``K = 2^d`` implicit codes.

    ``z = project_in(x)`` (identity when ``dim == d``); training passes the gradient through
    the sign with the estimator (STE by default) and adds the regulariser's entropy penalty.

    Args:
        dim: D, the size of the input's last axis.
        codebook_size: ``K = 2^d``, a power of two; ``d`` is the number of bits (channels).
        estimator: ``StraightThrough()`` (default, commitment weight 0.25) or
            ``NoiseSubstitution()``.
        regulariser: the entropy penalty (default :data:`DEFAULT_PENALTY`), or None.

    Shape:
        input ``(..., D)``; ``quantized`` ``(..., D)``; ``indices`` ``(...)`` int64.

    Raises:
        ValueError: ``codebook_size`` is not a power of two, or a refused estimator.
        TypeError: ``estimator`` / ``regulariser`` of the wrong type.

    Example:
        >>> lfq = LFQ(dim=4, codebook_size=16)
        >>> lfq.encode(torch.tensor([[0.3, -1.0, 2.0, 0.5]])).tolist()   # bits 1,0,1,1
        [13]
        >>> out = lfq(torch.randn(8, 4))
        >>> sorted(out.losses)
        ['commitment', 'entropy_codebook', 'entropy_per_sample']
    """

    def __init__(self, dim: int, codebook_size: int, *, estimator: Estimator | None = None,
                 regulariser: Regulariser | None = DEFAULT_PENALTY) -> None:
        super().__init__()
        bits = code_bits(codebook_size)
        self._setup(dim, bits)
        self.estimator = check_implicit_estimator(estimator, StraightThrough(),
                                                  type(self).__name__)
        if regulariser is not None and not isinstance(regulariser, Regulariser):
            raise TypeError(f"regulariser must be None or a Regulariser, got {regulariser!r}")
        self.regulariser = regulariser
        self.register_buffer("bit_values", 2 ** torch.arange(bits, dtype=torch.long),
                             persistent=False)

    @property
    def codebook_size(self) -> int:
        return 2**self.code_dim

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return (self.codebook_size,)

    @property
    def scale(self) -> float:
        """The magnitude of every code entry (1 for LFQ)."""
        return 1.0

    def _continuous(self, z: Tensor) -> Tensor:
        """What the signs are taken of (and the estimator's input): ``z`` itself for LFQ."""
        return z

    def _signs(self, z: Tensor) -> tuple[Tensor, Tensor]:
        cont = self._continuous(z)
        positive = cont.detach() > 0
        code = torch.where(positive, self.scale, -self.scale)
        return cont, code

    def _indices(self, code: Tensor) -> Tensor:
        return ((code > 0).long() * self.bit_values).sum(dim=-1)

    def _train_forward(
        self, x: Tensor, keep: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Mapping[str, Tensor]]:
        cont, code = self._signs(self._to_code_space(x, keep))
        quantized, loss, losses = self._estimate(cont, code, keep)
        if self.regulariser is not None:  # over the kept rows (weights) of all ranks
            extra, parts = self.regulariser.on_bits(cont, self.scale, keep)
            loss, losses = loss + extra, {**losses, **parts}
        indices = self._indices(code)
        if keep is not None:
            indices = indices.where(keep, -1)
        return self._from_code_space(quantized).to(x.dtype), indices, loss, dict(losses)

    def _encode(self, x: Tensor) -> Tensor:
        return self._indices(self._signs(self._to_code_space(x))[1])

    def _decode(self, indices: Tensor) -> Tensor:
        positive = (indices.clamp_min(0)[:, None] & self.bit_values) > 0
        code = torch.where(positive, self.scale, -self.scale)
        return self._decode_rows(code, indices >= 0)

    def _check_indices(self, indices: Tensor) -> None:
        check_index_tensor(indices, self.codebook_size)

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim, "codebook_size": self.codebook_size,
                "estimator": to_config(self.estimator),
                "regulariser": None if self.regulariser is None else to_config(self.regulariser)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LFQ:
        args = dict(config)
        args["estimator"] = from_config(args["estimator"], ESTIMATORS)
        if args["regulariser"] is not None:
            args["regulariser"] = from_config(args["regulariser"], REGULARISERS)
        return cls(**args)

    def extra_repr(self) -> str:
        return (f"{self._extra()}, codebook_size={self.codebook_size}, "
                f"estimator={self.estimator!r}, regulariser={self.regulariser!r}")


@QUANTIZERS.register(aliases=("bsq",))
class BSQ(LFQ):
    """Binary spherical quantization: ``u = z / ||z||``, ``q = sign(u) / sqrt(d)``.

    Input and code lie on the unit sphere, so the quantization error is bounded
    (``||u - q||^2 <= 2 - 2/sqrt(d)``) and the entropy penalty uses code entries of
    ``1/sqrt(d)`` ([zhao2024bsq]). Arguments as :class:`LFQ`.

    Raises:
        ValueError: ``codebook_size`` is not a power of two, or a refused estimator.
        TypeError: ``estimator`` / ``regulariser`` of the wrong type.

    Example:
        >>> bsq = BSQ(dim=4, codebook_size=16)
        >>> bsq.eval()(torch.tensor([[3.0, -1.0, 2.0, 0.5]])).quantized.tolist()
        [[0.5, -0.5, 0.5, 0.5]]
    """

    @property
    def scale(self) -> float:
        """``1 / sqrt(d)``: every code has unit norm."""
        return 1.0 / math.sqrt(self.code_dim)

    def _continuous(self, z: Tensor) -> Tensor:
        return F.normalize(z, dim=-1)
