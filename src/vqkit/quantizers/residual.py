"""ResidualVQ: multi-stage VQ, each stage quantizing what the previous ones left.

Stage ``m`` has its own D-dimensional codebook; ``r_0 = x``, ``i_m = argmin ||r_{m-1} - c||``,
``r_m = r_{m-1} - c_{i_m}`` and ``x_hat = sum_m c_{i_m}`` ([vali2021msvq] §2; [vali2023rpavq]).
Encoding is greedy or a stage-ordered beam search; any prefix of the indices decodes (fewer
stages, fewer bits), and quantizer dropout trains every prefix (variable bitrate, as in
[zeghidour2021soundstream]).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..codebooks import CodebookLearning
from ..estimators import Estimator
from ..functional.beam import residual_beam_search
from ..functional.search import nearest_indices
from ..parameterisations import CodebookParameterisation
from ..registry import DROPOUTS, ENCODERS, QUANTIZERS
from ..strategy import from_config, to_config
from .application import EstimatorApplication
from .base import check_index_tensor
from .composite import MultiCodebookQuantizer
from .data_init import DataInit
from .dropout import QuantizerDropout, check_dropout, check_prefix_shape, drop_stages, pad_prefix
from .encoders import Encoder, Greedy, check_encoder


@QUANTIZERS.register(aliases=("rvq",))
class ResidualVQ(MultiCodebookQuantizer):
    """Residual (multi-stage) VQ trained end to end with any estimator.

    Training ([vali2023rpavq]): the stages are searched without gradient, ``x_hat`` is the sum
    of the selected codewords (differentiable lookups), and by default ONE estimator call on
    ``(x, x_hat)`` gives the output, so the gradient reaches every selected codeword (NSVQ:
    ``x + ||x - x_hat|| v/||v||``). ``estimator=PerStage(StraightThrough())`` applies the
    estimator stage by stage as SoundStream and EnCodec do.

    Args:
        dim: D.
        codebook_size: K, entries per stage.
        num_codebooks: M, the number of stages.
        estimator: an :class:`~vqkit.Estimator` (applied to the composite; NSVQ by default),
            or ``OnComposite(est)`` / ``PerStage(est)``.
        learning: :class:`~vqkit.Gradient` (default) or :class:`~vqkit.EMA`, per codebook.
        encoder: :class:`Greedy` (default, the thesis) or :class:`BeamSearch` ``(width)``.
        dropout: None, :class:`BatchDepth`, :class:`ExampleDepth` or :class:`FractionDepth`;
            in training mode the stages beyond the drawn depth get index -1.
        init: initial codewords, ``"uniform"`` U(-1/K, 1/K) ([vali2023rpavqcode]) or ``"normal"``.
        parameterisation: ``Direct()`` (default) or ``SimVQ()`` per stage codebook (see
            :mod:`vqkit.parameterisations`; cosine and factorised codebooks are refused).
        data_init: None (default) or :class:`~vqkit.DataInit`: the first training-mode
            forward runs :meth:`init_codebook_` on its (kept) vectors, once; see
            :mod:`vqkit.quantizers.data_init`.

    Raises:
        ValueError: ``dim``, ``codebook_size`` or ``num_codebooks`` is not an int >= 1,
            ``init`` is unknown, or the parameterisation is refused (with the reason).
        TypeError: ``estimator``, ``learning``, ``encoder``, ``dropout`` or ``data_init`` is
            not a strategy of its kind.

    Shape:
        input ``(..., D)``; ``quantized`` ``(..., D)``; ``indices`` ``(..., M)`` int64.
        :meth:`decode` also takes a prefix ``(..., m)`` with ``m <= M``.

    Example:
        >>> from vqkit import StraightThrough
        >>> rvq = ResidualVQ(dim=8, codebook_size=16, num_codebooks=3)
        >>> out = rvq(torch.randn(4, 10, 8))
        >>> out.quantized.shape, out.indices.shape
        (torch.Size([4, 10, 8]), torch.Size([4, 10, 3]))
        >>> x = torch.randn(5, 8)
        >>> idx = rvq.encode(x)
        >>> torch.equal(rvq.decode(idx), rvq.eval()(x).quantized)
        True
        >>> rvq.decode(idx[:, :2]).shape   # the first two stages only
        torch.Size([5, 8])
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        num_codebooks: int,
        *,
        estimator: Estimator | EstimatorApplication | None = None,
        learning: CodebookLearning | None = None,
        encoder: Encoder | None = None,
        dropout: QuantizerDropout | None = None,
        init: str = "uniform",
        parameterisation: CodebookParameterisation | None = None,
        data_init: DataInit | None = None,
    ) -> None:
        super().__init__()
        self._build(dim, codebook_size, num_codebooks, dim, estimator, learning, init,
                    parameterisation)
        self._use_data_init_(data_init)
        self.encoder = check_encoder(encoder, Greedy())
        self.dropout = check_dropout(dropout)
        # Training steps seen, so dropout decisions are the same on every rank and resume.
        self.register_buffer("dropout_step", torch.zeros((), dtype=torch.long))

    def _select(self, x: Tensor) -> Tensor:
        books = [cb.effective_codewords() for cb in self.codebooks]
        if self.encoder.width > 1:
            return residual_beam_search(x, books, self.encoder.width)
        residual = x.detach().float()
        picked = []
        for c in books:
            idx = nearest_indices(residual, c)[:, 0]
            residual = residual - c.detach().float()[idx]
            picked.append(idx)
        return torch.stack(picked, dim=1)

    def _stage_dropout(self, indices: Tensor) -> Tensor:
        return drop_stages(self.dropout, self.dropout_step, indices)

    def _targets(self, x: Tensor, parts: Sequence[Tensor], per_stage: bool) -> list[Tensor]:
        if not per_stage:
            return super()._targets(x, parts, per_stage)
        targets, residual = [], x
        for p in parts:  # SoundStream / EnCodec: each stage targets its own input residual
            targets.append(residual)
            residual = residual - p
        return targets

    def _decode(self, indices: Tensor) -> Tensor:
        return super()._decode(pad_prefix(indices, self.num_codebooks))

    def _check_indices(self, indices: Tensor) -> None:
        check_index_tensor(indices, self.codebook_size)
        check_prefix_shape(indices, self.num_codebooks)

    def config(self) -> dict[str, Any]:
        return {
            **self._base_config(),
            "encoder": to_config(self.encoder),
            "dropout": None if self.dropout is None else to_config(self.dropout),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ResidualVQ:
        args = cls._base_args(config)
        args["encoder"] = from_config(args["encoder"], ENCODERS)
        if args["dropout"] is not None:
            args["dropout"] = from_config(args["dropout"], DROPOUTS)
        return cls(**args)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, encoder={self.encoder!r}, dropout={self.dropout!r}"
