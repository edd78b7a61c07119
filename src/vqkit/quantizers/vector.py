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
from ..functional.search import nearest_neighbor
from ..maintenance import ReplacementRule, replace_dead_codes_
from ..registry import ESTIMATORS, LEARNINGS, QUANTIZERS, REGULARISERS
from ..regularisers import Regulariser
from ..strategy import from_config, to_config
from ..types import Progress
from .base import Quantizer, check_index_tensor, check_samples, loss_over_kept


@QUANTIZERS.register(aliases=("vq",))
class VectorQuantizer(Quantizer):
    """Nearest-codeword VQ whose gradient estimator and codebook learning are strategies.

    Training mode: the nearest codeword ``q`` of each vector is found (fp32, chunked), usage
    counters and (for :class:`~vqkit.codebooks.EMA`) the codebook are updated, and the
    estimator returns the output and losses. Eval mode returns ``q``: ``decode(encode(x))``.

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

    Raises:
        TypeError: ``estimator`` is not an :class:`~vqkit.Estimator`, or ``learning`` is not
            a codebook-learning strategy.
        ValueError: ``codebook_size`` or ``dim`` is below 1, or ``init`` is unknown.

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
        self.codebook = Codebook(codebook_size, dim, learning=learning, init=init)

    @property
    def codebook_size(self) -> int:
        return self.codebook.codebook_size

    @property
    def codewords(self) -> Tensor:
        """The ``(K, D)`` codeword matrix."""
        return self.codebook.codewords

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return (self.codebook_size,)

    masks_in_place = True
    initialises_from_data = True

    def _train_forward(
        self, x: Tensor, keep: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Mapping[str, Tensor]]:
        indices = nearest_neighbor(x, self.codebook.codewords)[1][:, 0]
        by_gradient = self.codebook.learning.trained_by_gradient
        if keep is not None:  # masked rows: index -1, and input = codeword = 0 (no error)
            indices = indices.where(keep, -1)
            rows = keep[:, None]
            q = self.codebook.lookup(indices.clamp_min(0)).where(rows, 0.0)
            self.codebook.observe_(x, indices)
            out = self.estimator(x.float().where(rows, 0.0), q, by_gradient)
            loss, losses = self._regularise(x, keep, *loss_over_kept(keep, out.loss, out.losses))
            return out.quantized.to(x.dtype), indices, loss, losses
        q = self.codebook.lookup(indices)
        self.codebook.observe_(x, indices)
        out = self.estimator(x.float(), q, by_gradient)
        loss, losses = self._regularise(x, None, out.loss, out.losses)
        return out.quantized.to(x.dtype), indices, loss, losses

    def _regularise(
        self, x: Tensor, keep: Tensor | None, loss: Tensor, losses: Mapping[str, Tensor]
    ) -> tuple[Tensor, Mapping[str, Tensor]]:
        """Add the regulariser's loss and named parts (nothing without a regulariser)."""
        if self.regulariser is None:
            return loss, losses
        extra, parts = self.regulariser.on_codes(x, self.codebook.codewords, keep)
        return loss + extra, {**losses, **parts}

    def _encode(self, x: Tensor) -> Tensor:
        return nearest_neighbor(x, self.codebook.codewords)[1][:, 0]

    def _decode(self, indices: Tensor) -> Tensor:
        valid = indices >= 0
        q = self.codebook.lookup(indices.clamp_min(0))
        return q * valid.unsqueeze(-1).to(q.dtype)

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
        ([arthur2007kmeanspp]).

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
            samples, self.codebook_size, iters=iters, generator=generator,
            all_reduce=distributed.reducer(), progress=progress,
        )
        rows = torch.arange(self.codebook_size, device=centres.device)
        self.codebook.overwrite_(rows, centres.to(self.codebook.codewords.device))
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
            ValueError: ``threshold`` is outside ``[0, 1]``.
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
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> VectorQuantizer:
        args = dict(config)
        args["estimator"] = from_config(args["estimator"], ESTIMATORS)
        args["learning"] = from_config(args["learning"], LEARNINGS)
        if "regulariser" in args:
            args["regulariser"] = from_config(args["regulariser"], REGULARISERS)
        return cls(**args)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, codebook_size={self.codebook_size}, estimator={self.estimator!r}"
