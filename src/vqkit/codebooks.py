"""Codebooks: the (K, D) codeword matrix, its usage counters, how it learns and how it is made.

How the codewords are made (a free matrix, SimVQ's ``B W + b``, l2-normalised rows, a factorised
low-dimensional codebook) is a :class:`~vqkit.parameterisations.CodebookParameterisation`
held by the :class:`Codebook`. How a codebook learns is a strategy object:

- :class:`Gradient`: the codewords are an ``nn.Parameter`` trained by the optimizer, through the
  estimator's gradient (NSVQ, DiVeQ) or a codebook loss (STE, rotation trick).
- :class:`EMA`: the codewords are a buffer, moved in training-mode forward passes toward the
  mean of the inputs assigned to them ([vali2025thesis] eq. (3.8)), with Laplace smoothing of
  the counts. Statistics are all-reduced across DDP ranks before use.

All state (codewords, EMA statistics, usage counters) lives in parameters and registered
buffers, so ``state_dict``, ``.to()``, DDP and checkpoints work unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import distributed
from .parameterisations import CodebookParameterisation, Direct
from .registry import LEARNINGS
from .strategy import Strategy

INITS = ("uniform", "normal")


class CodebookLearning(Strategy):
    """Base class of the codebook-learning strategies."""

    registry = LEARNINGS

    #: Whether the optimizer trains the codewords (they are an ``nn.Parameter``).
    trained_by_gradient: bool = True
    #: Names of the buffers that hold running statistics: they stay fp32 whatever the
    #: module's dtype (bf16 resolves 2^-8: an EMA step of 1 % would stall or drift).
    statistics: tuple[str, ...] = ()

    def register_state_(self, codebook: Codebook) -> None:
        """Register the buffers the strategy needs on ``codebook``."""

    def update_(self, codebook: Codebook, x: Tensor, indices: Tensor) -> None:
        """Forward-time update from inputs ``x (N, D)`` and their ``indices (N,)``."""

    def reset_(self, codebook: Codebook, rows: Tensor) -> None:
        """Forget the statistics of ``rows`` after their codewords were overwritten."""


@LEARNINGS.register(aliases=("gradient",))
class Gradient(CodebookLearning):
    """Codewords are a parameter trained by the optimizer (the default)."""


def _bins(indices: Tensor, size: int) -> Tensor:
    """``indices`` with -1 (masked or dropped rows) sent to a spare bin ``size``: the updates
    keep fixed shapes (no ``nonzero``, no ``bincount``), which ``torch.compile`` captures."""
    return indices.where(indices >= 0, size)


def _histogram(bins: Tensor, size: int) -> Tensor:
    """int64 counts of ``bins`` over ``[0, size)`` (the spare bin ``size`` is dropped)."""
    counts = torch.zeros(size + 1, dtype=torch.long, device=bins.device)
    return counts.index_add_(0, bins, torch.ones_like(bins))[:size]


@LEARNINGS.register(aliases=("ema",))
class EMA(CodebookLearning):
    """Exponential-moving-average codebook ([vali2025thesis] eq. (3.8)) with Laplace smoothing.

    ``N_k <- decay N_k + (1 - decay) n_k``; ``S_k <- decay S_k + (1 - decay) sum x``;
    ``c_k = S_k / N~_k`` with ``N~_k = (N_k + eps) / (sum N + K eps) * sum N``. Counts start at
    one and sums at the initial codewords, so an unused codeword stays where it was instead of
    jumping to the origin on the first step.

    Args:
        decay: the EMA factor gamma (0.99 as in VQ-VAE and the DiVeQ baselines).
        eps: Laplace smoothing of the counts.

    Raises:
        ValueError: ``decay`` is outside ``[0, 1)`` or ``eps`` is not > 0.
    """

    trained_by_gradient = False
    statistics = ("ema_counts", "ema_sums")

    def __init__(self, decay: float = 0.99, eps: float = 1e-5) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.decay = float(decay)
        self.eps = float(eps)

    def config(self) -> dict[str, Any]:
        return {"decay": self.decay, "eps": self.eps}

    def register_state_(self, codebook: Codebook) -> None:
        w = codebook.codewords
        codebook.register_buffer("ema_counts", torch.ones(w.shape[0], dtype=torch.float32))
        codebook.register_buffer("ema_sums", w.detach().clone().float())

    @torch.no_grad()
    def update_(self, codebook: Codebook, x: Tensor, indices: Tensor) -> None:
        size = codebook.codebook_size
        bins = _bins(indices, size)
        counts = _histogram(bins, size).float()
        sums = codebook.ema_sums.new_zeros(size + 1, codebook.ema_sums.shape[1])
        sums = sums.index_add_(0, bins, x.detach().float())[:size]
        # The one collective in forward: sufficient statistics, summed, never averaged.
        distributed.all_reduce_(counts)
        distributed.all_reduce_(sums)
        codebook.ema_counts.lerp_(counts, 1.0 - self.decay)
        codebook.ema_sums.lerp_(sums, 1.0 - self.decay)
        total = codebook.ema_counts.sum()
        smoothed = (codebook.ema_counts + self.eps) / (total + size * self.eps) * total
        codebook.codewords.copy_(codebook.ema_sums / smoothed[:, None])

    @torch.no_grad()
    def reset_(self, codebook: Codebook, rows: Tensor) -> None:
        codebook.ema_counts[rows] = 1.0
        codebook.ema_sums[rows] = codebook.codewords[rows].float()


def initial_codewords(codebook_size: int, dim: int, init: str) -> Tensor:
    """Random codewords: ``"uniform"`` U(-1/K, 1/K) ([vali2023rpavqcode]) or ``"normal"``
    N(0, 1) ([vali2022nsvqcode]). Drawn from torch's global generator, like ``nn.Linear``.

    Args:
        codebook_size: K.
        dim: D.
        init: ``"uniform"`` or ``"normal"``.

    Returns:
        ``(K, D)`` float32 codewords.

    Raises:
        ValueError: ``init`` is not one of :data:`INITS`.
    """
    if init == "uniform":
        return (torch.rand(codebook_size, dim) * 2.0 - 1.0) / codebook_size
    if init == "normal":
        return torch.randn(codebook_size, dim)
    raise ValueError(f"init must be one of {INITS}, got {init!r}")


class Codebook(nn.Module):
    """``K`` codewords with usage counters, learned by gradient or EMA, made by a
    parameterisation (a free matrix by default).

    ``usage[k]`` counts the training batches in which codeword ``k`` was picked at least once,
    as the NSVQ reference code does ([vali2022nsvqcode]); ``usage_batches`` counts the batches. Both
    are reset by dead-code replacement. The parameterisation's maps (:meth:`to_code`,
    :meth:`from_code`, :meth:`effective_codewords`) run in fp32 or the codebook's dtype even
    under autocast, so the search sees the same numbers with and without it.

    Args:
        codebook_size: K.
        dim: D, the dimension of the vectors the codebook quantizes.
        learning: :class:`Gradient` (default) or :class:`EMA`.
        init: ``"uniform"`` (default) or ``"normal"``; see :func:`initial_codewords` (the
            initial effective codewords, in the code space).
        parameterisation: :class:`~vqkit.parameterisations.Direct` (default),
            ``SimVQ``, ``Cosine`` or ``Factorised``.

    Raises:
        ValueError: ``codebook_size`` or ``dim`` is below 1, ``init`` is unknown, or the
            parameterisation refuses the learning (SimVQ with EMA).
        TypeError: ``learning`` or ``parameterisation`` is not a strategy of its kind.

    Shape:
        codewords (:meth:`effective_codewords`): ``(K, d)``, d = ``code_dim`` (D unless
        factorised).

    Example:
        >>> cb = Codebook(4, 2, learning=EMA(decay=0.9))
        >>> cb.lookup(torch.tensor([0, 3])).shape
        torch.Size([2, 2])
    """

    codewords: Tensor

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        *,
        learning: CodebookLearning | None = None,
        init: str = "uniform",
        parameterisation: CodebookParameterisation | None = None,
    ) -> None:
        super().__init__()
        if int(codebook_size) < 1 or int(dim) < 1:
            raise ValueError(f"codebook_size and dim must be >= 1, got {codebook_size}, {dim}")
        learning = Gradient() if learning is None else learning
        if not isinstance(learning, CodebookLearning):
            raise TypeError(f"learning must be Gradient() or EMA(...), got {learning!r}")
        parameterisation = Direct() if parameterisation is None else parameterisation
        if not isinstance(parameterisation, CodebookParameterisation):
            raise TypeError("parameterisation must be a CodebookParameterisation (Direct(), "
                            f"SimVQ(), Cosine(), Factorised(d)), got {parameterisation!r}")
        parameterisation.check_learning(learning)
        self.codebook_size = int(codebook_size)
        self.dim = int(dim)
        self.code_dim = parameterisation.code_dim(self.dim)
        self.learning = learning
        self.parameterisation = parameterisation
        self.init = init
        weight = initial_codewords(self.codebook_size, self.code_dim, init)
        parameterisation.register_state_(self, weight, learning.trained_by_gradient)
        learning.register_state_(self)
        self.register_buffer("usage", torch.zeros(self.codebook_size, dtype=torch.long))
        self.register_buffer("usage_batches", torch.zeros((), dtype=torch.long))

    @property
    def bits(self) -> float:
        return math.log2(self.codebook_size)

    def _apply(self, fn, recurse=True):  # noqa: ANN001, ANN202 (nn.Module's signature)
        # ``.to(dtype)``, ``.half()``, ``.bfloat16()`` cast every floating buffer; the learning
        # statistics follow the module's device only and stay fp32. The originals are kept
        # and moved, so no value is rounded through the module's dtype on the way.
        kept = {name: self._buffers[name] for name in self.learning.statistics}
        super()._apply(fn, recurse)
        for name, value in kept.items():
            moved = self._buffers[name]
            if moved.dtype != value.dtype:  # (a device move or ``to_empty`` keeps its result)
                self._buffers[name] = value.to(device=moved.device)
        return self

    def _exact(self) -> torch.autocast:
        """No autocast: the parameterisation's maps keep their dtypes (see the class doc)."""
        return torch.autocast(self.usage.device.type, enabled=False)

    def effective_codewords(self) -> Tensor:
        """The ``(K, d)`` codewords the search uses (for :class:`Direct`, the stored matrix
        itself); differentiable."""
        with self._exact():
            return self.parameterisation.codewords(self)

    def to_code(self, x: Tensor) -> Tensor:
        """``(N, D)`` inputs in the code space ``(N, d)`` (the identity unless normalised or
        projected); differentiable."""
        with self._exact():
            return self.parameterisation.to_code(self, x)

    def from_code(self, z: Tensor) -> Tensor:
        """``(N, d)`` code-space vectors back to ``(N, D)``; differentiable."""
        with self._exact():
            return self.parameterisation.from_code(self, z)

    def lookup(self, indices: Tensor) -> Tensor:
        """Code-space codewords of ``indices`` (any shape, -1 gives a zero row);
        differentiable."""
        c = self.effective_codewords()
        valid = (indices >= 0).unsqueeze(-1).to(c.dtype)
        return F.embedding(indices.clamp_min(0), c) * valid

    def decode(self, indices: Tensor) -> Tensor:
        """``from_code`` of :meth:`lookup`, with index -1 giving a zero row ``(..., D)``."""
        q = self.from_code(self.lookup(indices))
        return q * (indices >= 0).unsqueeze(-1).to(q.dtype)

    def observe_(self, x: Tensor, indices: Tensor) -> None:
        """Training-time bookkeeping: usage counters and the learning strategy's update.

        Rows with index -1 (masked or dropped) are ignored. A batch without a valid index
        counts as no batch, but the learning update still runs: under DDP an EMA codebook's
        all-reduce must be called on every rank.

        Shape:
            x: ``(N, d)`` code-space vectors; indices: ``(N,)`` int64 in ``[-1, K)``.
        """
        with torch.no_grad():
            self.usage += _histogram(_bins(indices, self.codebook_size), self.codebook_size) > 0
            self.usage_batches += (indices >= 0).any()
        self.learning.update_(self, x, indices)

    @torch.no_grad()
    def overwrite_(self, rows: Tensor, values: Tensor) -> Tensor:
        """Set the effective codewords ``rows`` to ``values`` ``(len(rows), d)`` and forget
        their learning statistics.

        Returns:
            What the rows stand for now: ``values`` as given for free rows (before any
            rounding to the codebook's dtype), SimVQ's least-squares fit ``(B W + b)[rows]``.

        Raises:
            ValueError: the parameterisation cannot overwrite these rows (SimVQ: fewer
                than all K).
        """
        held = self.parameterisation.write_rows_(self, rows, values)
        self.learning.reset_(self, rows)
        return held

    @torch.no_grad()
    def reset_usage_(self) -> None:
        self.usage.zero_()
        self.usage_batches.zero_()

    def extra_repr(self) -> str:
        text = f"codebook_size={self.codebook_size}, dim={self.dim}, learning={self.learning!r}"
        if not isinstance(self.parameterisation, Direct):
            text += f", parameterisation={self.parameterisation!r}"
        return text
