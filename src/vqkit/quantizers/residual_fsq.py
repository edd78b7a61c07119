"""ResidualFSQ: FSQ stages on the residual, each at a finer scale.

Stage ``m`` quantizes the residual scaled up by ``(L - 1)^m`` (per channel) with the FSQ of
:mod:`.fsq` and scales its code back down: ``q_m = s_m FSQ(r_m / s_m)``, ``s_m = (L - 1)^{-m}``,
``r_{m+1} = r_m - q_m`` and ``x_hat = project_out(sum_m q_m)``. The per-stage scales follow
vector-quantize-pytorch's ``ResidualFSQ`` ([lucidrains2026vqpytorch]): a stage's rounding
error is at most half a step, ``1/(L - 1)`` of the previous range, so the next stage sees the
same range as the first. Any prefix of the indices decodes, and quantizer dropout
(:mod:`.dropout`) trains every prefix, as for :class:`~vqkit.ResidualVQ`.
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
from ..registry import DROPOUTS, ESTIMATORS, QUANTIZERS
from ..strategy import from_config, to_config
from .base import check_index_tensor
from .dropout import QuantizerDropout, check_dropout, check_prefix_shape, drop_stages, pad_prefix
from .fsq import check_levels, levels_buffer
from .implicit import ImplicitCodebookQuantizer, check_implicit_estimator, check_positive_int


@QUANTIZERS.register(aliases=("rfsq",))
class ResidualFSQ(ImplicitCodebookQuantizer):
    """Residual FSQ with per-stage scales ``(L - 1)^{-m}``, prefix decoding and dropout.

    Training applies the estimator stage by stage (STE through each rounding by default);
    the residual passed on is detached, as in the peers.

    Args:
        dim: D.
        levels: the levels of every stage, each >= 3 (with ``L = 2`` the scale ``(L-1)^{-m}``
            would not refine).
        num_codebooks: M, the number of stages.
        estimator: ``StraightThrough(beta=0.0)`` (default) or ``NoiseSubstitution()``.
        dropout: None, :class:`~vqkit.BatchDepth`, :class:`~vqkit.ExampleDepth` or
            :class:`~vqkit.FractionDepth`: stages beyond the drawn depth get index -1.

    Shape:
        input ``(..., D)``; ``quantized`` ``(..., D)``; ``indices`` ``(..., M)`` int64;
        :meth:`decode` also takes a prefix ``(..., m)``, ``m <= M``.

    Raises:
        ValueError: bad ``dim`` / ``levels`` / ``num_codebooks`` or a refused estimator.
        TypeError: ``estimator`` or ``dropout`` of the wrong type.

    Example:
        >>> rfsq = ResidualFSQ(dim=4, levels=(5, 5, 5, 5), num_codebooks=3)
        >>> x = torch.randn(6, 4)
        >>> idx = rfsq.encode(x)
        >>> idx.shape, torch.equal(rfsq.decode(idx), rfsq.eval()(x).quantized)
        (torch.Size([6, 3]), True)
        >>> err = [float((rfsq.decode(idx[:, :m]) - x).pow(2).mean()) for m in (1, 2, 3)]
        >>> err[0] > err[1] > err[2]
        True
    """

    def __init__(self, dim: int, levels: Sequence[int], num_codebooks: int, *,
                 estimator: Estimator | None = None,
                 dropout: QuantizerDropout | None = None) -> None:
        super().__init__()
        levels = check_levels(levels, minimum=3)
        self._setup(dim, len(levels))
        self.levels = levels
        self.num_codebooks = check_positive_int(num_codebooks, "num_codebooks")
        self.index_shape = (self.num_codebooks,)
        self.register_buffer("levels_buffer", levels_buffer(levels), persistent=False)
        self.estimator = check_implicit_estimator(
            estimator, StraightThrough(beta=0.0), type(self).__name__)
        self.dropout = check_dropout(dropout)
        # Training steps seen, so dropout decisions are the same on every rank and resume.
        self.register_buffer("dropout_step", torch.zeros((), dtype=torch.long))

    @property
    def codebook_size(self) -> int:
        """``prod(levels)`` entries per stage."""
        return math.prod(self.levels)

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return (self.codebook_size,) * self.num_codebooks

    def _scale(self, m: int) -> Tensor:
        """``(L - 1)^{-m}`` per channel, fp32."""
        return (self.levels_buffer.float() - 1) ** -m

    def _stages(self, z: Tensor, keep: Tensor | None = None):
        """Yield ``(m, bounded, integers)`` of each stage for fp32 ``z (N, d)``, in the stage's
        level units (times ``_scale(m) / floor(L/2)`` in code space); ``keep (N, M)`` leaves
        dropped stages out of the residual."""
        hw = half_widths(self.levels_buffer)
        residual = z
        for m in range(self.num_codebooks):
            scale = self._scale(m)
            bounded = fsq_bound(residual / scale, self.levels_buffer)
            integers = bounded.detach().round()
            yield m, bounded, integers
            step = integers * (scale / hw)
            if keep is not None:
                step = step * keep[:, m : m + 1]
            residual = residual - step

    def _select(self, z: Tensor) -> Tensor:
        return torch.stack([fsq_codes_to_indices(k, self.levels_buffer, self.codebook_size)
                            for _, _, k in self._stages(z.detach())], dim=1)

    def _train_forward(
        self, x: Tensor, keep: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Mapping[str, Tensor]]:
        z = self._to_code_space(x, keep)
        indices = drop_stages(self.dropout, self.dropout_step, self._select(z))
        if keep is not None:
            indices = indices.where(keep[:, None], -1)
        kept_stages = (indices >= 0).float()
        hw = half_widths(self.levels_buffer)
        total = z.new_zeros(())
        loss = z.new_zeros(())
        losses: dict[str, Tensor] = {}
        for m, bounded, integers in self._stages(z, kept_stages):
            # in level units, as FSQ; a dropped stage's losses count (as in the peers)
            quantized, stage_loss, stage_losses = self._estimate(bounded, integers, keep)
            total = total + quantized * (self._scale(m) / hw) * kept_stages[:, m : m + 1]
            loss = loss + stage_loss
            for name, value in stage_losses.items():
                losses[name] = losses.get(name, 0.0) + value
        return self._from_code_space(total).to(x.dtype), indices, loss, losses

    def _encode(self, x: Tensor) -> Tensor:
        return self._select(self._to_code_space(x))

    def _decode(self, indices: Tensor) -> Tensor:
        indices = pad_prefix(indices, self.num_codebooks)
        hw = half_widths(self.levels_buffer)
        total = torch.zeros(indices.shape[0], self.code_dim, device=indices.device)
        for m in range(self.num_codebooks):
            idx = indices[:, m]
            integers = fsq_indices_to_integers(idx.clamp_min(0), self.levels_buffer)
            code = integers.float() / hw * self._scale(m)
            total = total + code * (idx >= 0)[:, None].float()
        return self._decode_rows(total, (indices >= 0).any(dim=1))

    def _check_indices(self, indices: Tensor) -> None:
        check_index_tensor(indices, self.codebook_size)
        check_prefix_shape(indices, self.num_codebooks)

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim, "levels": list(self.levels),
                "num_codebooks": self.num_codebooks, "estimator": to_config(self.estimator),
                "dropout": None if self.dropout is None else to_config(self.dropout)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ResidualFSQ:
        args = dict(config)
        args["estimator"] = from_config(args["estimator"], ESTIMATORS)
        if args.get("dropout") is not None:
            args["dropout"] = from_config(args["dropout"], DROPOUTS)
        return cls(**args)

    def extra_repr(self) -> str:
        return (f"{self._extra()}, levels={self.levels}, num_codebooks={self.num_codebooks}, "
                f"estimator={self.estimator!r}, dropout={self.dropout!r}")
