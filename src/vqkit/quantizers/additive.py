"""AdditiveVQ: M full-dimension codebooks whose selected codewords are summed ([vali2023rpavq]).

``x_hat = sum_m c^m_{i_m}``, every codebook D-dimensional. Unlike residual VQ the codebooks
have no order: the encoder is a beam search that lets each partial tuple take the codebooks in
any order ([vali2023rpavqcode], with the correct residual), batched over vectors in
:func:`vqkit.functional.beam.additive_beam_search`. Dead codewords can be replaced per codebook
or, as the thesis does, over the pool of all M K codewords (an unused entry may be overwritten
by a used entry of another codebook).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from .. import distributed
from ..codebooks import CodebookLearning
from ..estimators import Estimator
from ..functional.beam import additive_beam_search
from ..maintenance import ReplacementRule, TileUsed, jittered_copies
from ..parameterisations import CodebookParameterisation
from ..registry import ENCODERS, QUANTIZERS
from ..strategy import from_config, to_config
from .application import EstimatorApplication
from .composite import MultiCodebookQuantizer
from .data_init import DataInit
from .encoders import BeamSearch, Encoder, check_encoder


@QUANTIZERS.register(aliases=("avq",))
class AdditiveVQ(MultiCodebookQuantizer):
    """Additive VQ with free-order beam-search encoding, trained end to end with any estimator.

    Args:
        dim: D.
        codebook_size: K, entries per codebook.
        num_codebooks: M.
        estimator: an :class:`~vqkit.Estimator` (applied to the composite; NSVQ by default),
            or ``OnComposite(est)`` / ``PerStage(est)``.
        learning: :class:`~vqkit.Gradient` (default) or :class:`~vqkit.EMA`; an EMA codeword
            moves toward ``x`` minus the other selected codewords.
        encoder: ``BeamSearch(width=8)`` (default; the thesis's W) or :class:`Greedy`
            (width 1, still free order).
        init: ``"uniform"`` U(-1/K, 1/K) ([vali2023rpavqcode]) or ``"normal"``.
        parameterisation: ``Direct()`` (default) or ``SimVQ()`` per codebook (see
            :mod:`vqkit.parameterisations`; cosine and factorised codebooks are refused).
        data_init: None (default) or :class:`~vqkit.DataInit`: the first training-mode
            forward runs :meth:`init_codebook_` on its (kept) vectors, once; see
            :mod:`vqkit.quantizers.data_init`.

    Raises:
        ValueError: ``dim``, ``codebook_size`` or ``num_codebooks`` is not an int >= 1,
            ``init`` is unknown, or the parameterisation is refused (with the reason).
        TypeError: ``estimator``, ``learning``, ``encoder`` or ``data_init`` is not a strategy
            of its kind.

    Shape:
        input ``(..., D)``; ``quantized`` ``(..., D)``; ``indices`` ``(..., M)`` int64.

    Example:
        >>> from vqkit.quantizers.encoders import BeamSearch
        >>> avq = AdditiveVQ(dim=8, codebook_size=16, num_codebooks=3, encoder=BeamSearch(4))
        >>> out = avq(torch.randn(2, 5, 8))
        >>> out.indices.shape
        torch.Size([2, 5, 3])
        >>> x = torch.randn(5, 8)
        >>> torch.equal(avq.decode(avq.encode(x)), avq.eval()(x).quantized)
        True
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
        init: str = "uniform",
        parameterisation: CodebookParameterisation | None = None,
        data_init: DataInit | None = None,
    ) -> None:
        super().__init__()
        self._build(dim, codebook_size, num_codebooks, dim, estimator, learning, init,
                    parameterisation)
        self._use_data_init_(data_init)
        self.encoder = check_encoder(encoder, BeamSearch(width=8))

    def _select(self, x: Tensor) -> Tensor:
        books = [cb.effective_codewords() for cb in self.codebooks]
        return additive_beam_search(x, books, self.encoder.width)

    @torch.no_grad()
    def replace_dead_codes_(
        self,
        threshold: float = 0.01,
        *,
        rule: ReplacementRule | None = None,
        generator: torch.Generator | None = None,
        pooled: bool = False,
    ) -> int:
        """Replace dead codewords per codebook, or over the pool of all M K codewords.

        Args:
            threshold: a codeword picked in fewer than this fraction of batches is dead.
            rule: :class:`~vqkit.TileUsed` (default) or :class:`~vqkit.UsageWeighted`.
            generator: random source (seed it identically on every rank).
            pooled: True treats the M codebooks as one pool ([vali2023rpavqcode]): a dead entry may
                be overwritten by a used entry of another codebook.

        Returns:
            The total number of codewords overwritten.

        Raises:
            ValueError: ``threshold`` is outside ``[0, 1]``, or the parameterisation cannot
                overwrite single codewords (SimVQ).
        """
        if not pooled:
            return super().replace_dead_codes_(threshold, rule=rule, generator=generator)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        self.parameterisation.check_rows_writable()
        rule = TileUsed() if rule is None else rule
        usage = distributed.all_reduce_(torch.cat([cb.usage for cb in self.codebooks]))
        batches = torch.cat([cb.usage_batches.reshape(1) for cb in self.codebooks]).clone()
        distributed.all_reduce_(batches)
        size = self.codebook_size
        rate = usage.double() / batches.repeat_interleave(size).clamp_min(1).double()
        dead = (rate < threshold) & (batches.repeat_interleave(size) > 0)
        n_dead = int(dead.sum())
        if 0 < n_dead < dead.numel():
            pool = torch.cat([cb.effective_codewords() for cb in self.codebooks])
            rows = dead.nonzero().flatten()
            sources = rule.sources((~dead).nonzero().flatten(), usage, n_dead, generator)
            new = jittered_copies(pool, sources, 1e-4, generator)
            for m, cb in enumerate(self.codebooks):
                mine = (rows // size) == m
                if bool(mine.any()):
                    cb.overwrite_(rows[mine] % size, new[mine])
        elif n_dead == dead.numel():
            return super().replace_dead_codes_(threshold, rule=rule, generator=generator)
        for cb in self.codebooks:
            cb.reset_usage_()
        return n_dead

    def config(self) -> dict[str, Any]:
        return {**self._base_config(), "encoder": to_config(self.encoder)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AdditiveVQ:
        args = cls._base_args(config)
        args["encoder"] = from_config(args["encoder"], ENCODERS)
        return cls(**args)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, encoder={self.encoder!r}"
