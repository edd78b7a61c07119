"""FSQ: finite scalar quantization ([mentzer2024fsq]).

Each of the ``d = len(levels)`` channels is bounded and rounded to one of ``L_i`` values, so
the implicit codebook is the grid of ``prod(L)`` points; no codebook is stored or learned,
and there is no codebook collapse by construction. Equations: :mod:`vqkit.functional.scalar`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..estimators import Estimator, StraightThrough
from ..functional.scalar import (
    fsq_bound,
    fsq_codes_to_indices,
    fsq_indices_to_integers,
    half_widths,
)
from ..registry import ESTIMATORS, QUANTIZERS
from ..strategy import from_config, to_config
from .base import check_index_tensor
from .implicit import ImplicitCodebookQuantizer, check_implicit_estimator

#: The levels [mentzer2024fsq] Table 1 recommends for a codebook of 2^bits entries.
RECOMMENDED_LEVELS: dict[int, tuple[int, ...]] = {
    8: (8, 6, 5), 10: (8, 5, 5, 5), 12: (7, 5, 5, 5, 5), 14: (8, 8, 8, 6, 5),
    16: (8, 8, 8, 5, 5, 5),
}


def check_levels(levels: Any, minimum: int = 2) -> tuple[int, ...]:
    """``levels`` as a non-empty tuple of ints >= ``minimum`` whose product fits int64.

    Raises:
        ValueError: anything else (the message names the value).
    """
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence) or not levels:
        raise ValueError(f"levels must be a non-empty sequence of ints, got {levels!r}")
    out = tuple(levels)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in out):
        raise ValueError(f"levels must be ints >= {minimum}, got {list(out)}")
    if math.prod(out) >= 2**62:
        raise ValueError(f"prod(levels) must be below 2**62 (int64 indices), got {list(out)}")
    return out


def levels_buffer(levels: tuple[int, ...]) -> Tensor:
    """The levels as an int64 tensor (a buffer: ``.to(bf16)`` leaves integers alone)."""
    return torch.tensor(levels, dtype=torch.long)


@QUANTIZERS.register(aliases=("fsq",))
class FSQ(ImplicitCodebookQuantizer):
    """Finite scalar quantization: bound each channel, round it, straight-through gradient.

    ``z = project_in(x)`` (identity when ``dim == len(levels)``), ``k = round(bound(z))``
    ([mentzer2024fsq] App. A.1, with the half-level shift for even ``L``), code
    ``k / floor(L/2)``, output ``project_out(code)``. The index is the mixed-radix number of
    the digits ``k_i + floor(L_i/2)`` (first channel least significant), in
    ``[0, prod(L))``. Training mode passes the gradient through the rounding by the estimator
    (STE by default, identity through the rounding; see :mod:`.implicit` for the estimators
    accepted), so inside the bounds the input gradient is ``bound'(z) / floor(L/2)``. The
    estimator sees the bounded value and the rounded level in level units (each channel's
    rounding error is uniform in ``[-1/2, 1/2]`` there), so a commitment loss and NSVQ's
    error norm are in level units too.

    Args:
        dim: D, the size of the input's last axis.
        levels: ``L_1..L_d``, each >= 2 (the paper recommends e.g. ``(8, 5, 5, 5)`` for
            2^10 codes: :data:`RECOMMENDED_LEVELS`).
        estimator: ``StraightThrough(beta=0.0)`` (default; the paper adds no loss) or
            ``NoiseSubstitution()``.

    Shape:
        input ``(..., D)``; ``quantized`` ``(..., D)``; ``indices`` ``(...)`` int64.

    Raises:
        ValueError: bad ``dim`` / ``levels``, or an estimator it refuses.
        TypeError: ``estimator`` is not an Estimator.

    Example:
        >>> fsq = FSQ(dim=4, levels=(8, 5, 5, 5))
        >>> fsq.codebook_sizes, fsq.bits_per_vector
        ((1000,), 9.965784284662087)
        >>> x = torch.randn(2, 7, 4)
        >>> out = fsq(x)
        >>> out.indices.shape, bool(out.indices.max() < 1000)
        (torch.Size([2, 7]), True)
        >>> torch.equal(fsq.decode(fsq.encode(x)), fsq.eval()(x).quantized)
        True
    """

    def __init__(self, dim: int, levels: Sequence[int], *,
                 estimator: Estimator | None = None) -> None:
        super().__init__()
        levels = check_levels(levels)
        self._setup(dim, len(levels))
        self.levels = levels
        self.register_buffer("levels_buffer", levels_buffer(levels), persistent=False)
        self.estimator = check_implicit_estimator(
            estimator, StraightThrough(beta=0.0), type(self).__name__)

    @property
    def codebook_size(self) -> int:
        """``prod(levels)``, the size of the implicit codebook."""
        return math.prod(self.levels)

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return (self.codebook_size,)

    def _quantize(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """fp32 ``z (N, d)`` -> (bounded value, rounded integer levels), in level units."""
        bounded = fsq_bound(z, self.levels_buffer)
        return bounded, bounded.detach().round()

    def _train_forward(
        self, x: Tensor, keep: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Mapping[str, Tensor]]:
        bounded, integers = self._quantize(self._to_code_space(x, keep))
        indices = fsq_codes_to_indices(integers, self.levels_buffer, self.codebook_size)
        if keep is not None:
            indices = indices.where(keep, -1)
        # The estimator works in level units, where every channel's rounding error is
        # uniform in [-1/2, 1/2]; the code is then k / floor(L/2).
        quantized, loss, losses = self._estimate(bounded, integers, keep)
        code = quantized / half_widths(self.levels_buffer)
        return self._from_code_space(code).to(x.dtype), indices, loss, losses

    def _encode(self, x: Tensor) -> Tensor:
        integers = self._quantize(self._to_code_space(x))[1]
        return fsq_codes_to_indices(integers, self.levels_buffer, self.codebook_size)

    def _decode(self, indices: Tensor) -> Tensor:
        integers = fsq_indices_to_integers(indices.clamp_min(0), self.levels_buffer)
        code = integers.float() / half_widths(self.levels_buffer)
        return self._decode_rows(code, indices >= 0)

    def _check_indices(self, indices: Tensor) -> None:
        check_index_tensor(indices, self.codebook_size)

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim, "levels": list(self.levels),
                "estimator": to_config(self.estimator)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> FSQ:
        args = dict(config)
        args["estimator"] = from_config(args["estimator"], ESTIMATORS)
        return cls(**args)

    def extra_repr(self) -> str:
        return f"{self._extra()}, levels={self.levels}, estimator={self.estimator!r}"
