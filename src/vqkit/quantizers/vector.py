"""VectorQuantizer: one codebook, one estimator ([vali2025thesis] eq. (2.1))."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from .. import distributed
from ..codebooks import Codebook, CodebookLearning
from ..estimators import Estimator, NoiseSubstitution
from ..functional.kmeans import kmeans
from ..functional.search import nearest_indices
from ..maintenance import ReplacementRule, replace_dead_codes_
from ..parameterisations import CodebookParameterisation, Direct
from ..registry import (
    DATA_INITS,
    ESTIMATORS,
    LEARNINGS,
    PARAMETERISATIONS,
    QUANTIZERS,
    REGULARISERS,
)
from ..regularisers import Regulariser
from ..strategy import from_config, to_config
from ..types import Progress
from .base import Quantizer, check_index_tensor, check_samples, loss_over_kept
from .data_init import DataInit


@QUANTIZERS.register(aliases=("vq",))
class VectorQuantizer(Quantizer):
    """Nearest-codeword VQ whose gradient estimator, codebook learning and codebook
    parameterisation are strategies.

    Training mode: the input is taken to the code space (``z = x`` unless the
    parameterisation normalises or projects it), the nearest codeword ``q`` of ``z`` is found
    (fp32, chunked), usage counters and (for :class:`~vqkit.codebooks.EMA`) the codebook are
    updated, the estimator returns its output for ``(z, q)`` and the losses, and the output is
    taken back to the data space. Eval mode returns the decoded ``q``: ``decode(encode(x))``.

    Args:
        dim: D, the size of the last axis of the input.
        codebook_size: K.
        estimator: :class:`~vqkit.NoiseSubstitution` (default), ``StraightThrough``,
            ``RotationTrick``, ``DiVeQ`` or ``DiVeQDetach``.
        learning: :class:`~vqkit.Gradient` (default) or :class:`~vqkit.EMA`.
        init: initial codewords, ``"uniform"`` U(-1/K, 1/K) or ``"normal"`` N(0, 1);
            :meth:`init_codebook_` replaces them by k-means on data.
        regulariser: None (default) or an auxiliary loss on the code assignments, e.g.
            :class:`~vqkit.regularisers.EntropyPenalty` (the codebook-entropy / diversity
            penalty over a softmax of the ``(N, K)`` distances, added to ``out.losses``).
        parameterisation: :class:`~vqkit.parameterisations.Direct` (default, a free
            matrix), ``SimVQ()``, ``Cosine()`` or ``Factorised(codebook_dim)``; see
            :mod:`vqkit.parameterisations`.
        data_init: None (default: :meth:`init_codebook_` is an explicit call) or
            :class:`~vqkit.DataInit`: the first training-mode forward runs
            :meth:`init_codebook_` on its (kept) vectors, once; see
            :mod:`vqkit.quantizers.data_init`.

    Raises:
        TypeError: ``estimator`` is not an :class:`~vqkit.Estimator`, or ``learning``,
            ``parameterisation`` or ``data_init`` is not a strategy of its kind.
        ValueError: ``codebook_size`` or ``dim`` is below 1, ``init`` is unknown, or the
            parameterisation refuses the learning (SimVQ with EMA, with the reason).

    Shape:
        input ``(..., D)``; ``quantized`` ``(..., D)``; ``indices`` ``(...)`` int64.

    Example:
        >>> from vqkit import StraightThrough, EMA
        >>> vq = VectorQuantizer(dim=8, codebook_size=32, estimator=StraightThrough(),
        ...                      learning=EMA(decay=0.99))
        >>> out = vq(torch.randn(4, 10, 8))
        >>> out.quantized.shape, out.indices.shape, sorted(out.losses)
        (torch.Size([4, 10, 8]), torch.Size([4, 10]), ['commitment'])
        >>> x = torch.randn(5, 8)
        >>> torch.equal(vq.decode(vq.encode(x)), vq.eval()(x).quantized)
        True
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        *,
        estimator: Estimator | None = None,
        learning: CodebookLearning | None = None,
        init: str = "uniform",
        regulariser: Regulariser | None = None,
        parameterisation: CodebookParameterisation | None = None,
        data_init: DataInit | None = None,
    ) -> None:
        super().__init__()
        estimator = NoiseSubstitution() if estimator is None else estimator
        if not isinstance(estimator, Estimator):
            raise TypeError(f"estimator must be an Estimator, got {estimator!r}")
        if regulariser is not None and not isinstance(regulariser, Regulariser):
            raise TypeError(f"regulariser must be None or a Regulariser, got {regulariser!r}")
        self.regulariser = regulariser
        self.dim = int(dim)
        self.estimator = estimator
        self.codebook = Codebook(codebook_size, dim, learning=learning, init=init,
                                 parameterisation=parameterisation)
        self._use_data_init_(data_init)

    @property
    def codebook_size(self) -> int:
        return self.codebook.codebook_size

    @property
    def codewords(self) -> Tensor:
        """The effective ``(K, d)`` codewords the search uses (the stored ``(K, D)`` matrix
        for the default :class:`~vqkit.parameterisations.Direct`)."""
        return self.codebook.effective_codewords()

    @property
    def parameterisation(self) -> CodebookParameterisation:
        """How the codewords are made (:mod:`vqkit.parameterisations`)."""
        return self.codebook.parameterisation

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return (self.codebook_size,)

    masks_in_place = True
    initialises_from_data = True

    def _train_forward(
        self, x: Tensor, keep: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Mapping[str, Tensor]]:
        cb = self.codebook
        z = cb.to_code(x)
        indices = nearest_indices(z, cb.effective_codewords())[:, 0]
        by_gradient = cb.learning.trained_by_gradient
        if keep is not None:  # masked rows: index -1, and input = codeword = 0 (no error)
            indices = indices.where(keep, -1)
            rows = keep[:, None]
            q = cb.lookup(indices).where(rows, 0.0)
            cb.observe_(z, indices)
            out = self.estimator(z.float().where(rows, 0.0), q, by_gradient)
            loss, losses = self._regularise(z, keep, *loss_over_kept(keep, out.loss, out.losses))
            return cb.from_code(out.quantized).to(x.dtype), indices, loss, losses
        q = cb.lookup(indices)
        cb.observe_(z, indices)
        out = self.estimator(z.float(), q, by_gradient)
        loss, losses = self._regularise(z, None, out.loss, out.losses)
        return cb.from_code(out.quantized).to(x.dtype), indices, loss, losses

    def _regularise(
        self, x: Tensor, keep: Tensor | None, loss: Tensor, losses: Mapping[str, Tensor]
    ) -> tuple[Tensor, Mapping[str, Tensor]]:
        """Add the regulariser's loss and named parts (nothing without a regulariser)."""
        if self.regulariser is None:
            return loss, losses
        extra, parts = self.regulariser.on_codes(x, self.codebook.effective_codewords(), keep)
        return loss + extra, {**losses, **parts}

    def _encode(self, x: Tensor) -> Tensor:
        cb = self.codebook
        return nearest_indices(cb.to_code(x), cb.effective_codewords())[:, 0]

    def _decode(self, indices: Tensor) -> Tensor:
        return self.codebook.decode(indices)

    def _check_indices(self, indices: Tensor) -> None:
        check_index_tensor(indices, self.codebook_size)

    @torch.no_grad()
    def init_codebook_(
        self,
        samples: Tensor,
        *,
        generator: torch.Generator | None = None,
        iters: int = 50,
        progress: Progress | None = None,
    ) -> None:
        """Set the codewords to k-means++ / Lloyd centroids of ``samples``
        ([arthur2007kmeanspp]), in the code space (normalised or projected samples; for
        SimVQ, ``W`` becomes the least-squares fit of ``B W + b`` to the centroids).

        Under DDP each rank passes its own samples and all ranks end with the same codebook.

        Args:
            samples: ``(N, D)`` data, N >= K over all ranks.
            generator: random source of the seeding (seed it identically on every rank).
            iters: maximum Lloyd iterations.
            progress: ``progress(done, K + iters, info)`` callback (see
                :func:`vqkit.functional.kmeans.kmeans`).

        Raises:
            TypeError / ValueError: ``samples`` is not a finite floating ``(N, D)`` tensor
                with at least K rows.
        """
        samples = check_samples(samples, self.dim, self.codebook_size)
        centres = kmeans(
            self.codebook.to_code(samples), self.codebook_size, iters=iters, generator=generator,
            all_reduce=distributed.reducer(), progress=progress,
        )
        device = self.codebook.usage.device
        rows = torch.arange(self.codebook_size, device=device)
        self.codebook.overwrite_(rows, centres.to(device))
        self.codebook.reset_usage_()

    def replace_dead_codes_(
        self,
        threshold: float = 0.01,
        *,
        rule: ReplacementRule | None = None,
        generator: torch.Generator | None = None,
    ) -> int:
        """Overwrite codewords picked in fewer than ``threshold`` of the batches since the last
        call; see :func:`vqkit.maintenance.replace_dead_codes_`. Returns how many.

        Raises:
            ValueError: ``threshold`` is outside ``[0, 1]``, or the parameterisation cannot
                overwrite single codewords (SimVQ).
        """
        return replace_dead_codes_(self.codebook, threshold, rule=rule, generator=generator)

    def config(self) -> dict[str, Any]:
        config = {
            "dim": self.dim,
            "codebook_size": self.codebook_size,
            "estimator": to_config(self.estimator),
            "learning": to_config(self.codebook.learning),
            "init": self.codebook.init,
        }
        if self.regulariser is not None:  # absent otherwise: configs saved before it match
            config["regulariser"] = to_config(self.regulariser)
        parameterisation = self.codebook.parameterisation
        if parameterisation != Direct():  # (the same: configs of a free matrix are unchanged)
            config["parameterisation"] = to_config(parameterisation)
        if self.data_init is not None:  # (the same)
            config["data_init"] = to_config(self.data_init)
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> VectorQuantizer:
        args = dict(config)
        args["estimator"] = from_config(args["estimator"], ESTIMATORS)
        args["learning"] = from_config(args["learning"], LEARNINGS)
        if "regulariser" in args:
            args["regulariser"] = from_config(args["regulariser"], REGULARISERS)
        if "parameterisation" in args:
            args["parameterisation"] = from_config(args["parameterisation"], PARAMETERISATIONS)
        if "data_init" in args:
            args["data_init"] = from_config(args["data_init"], DATA_INITS)
        return cls(**args)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, codebook_size={self.codebook_size}, estimator={self.estimator!r}"
