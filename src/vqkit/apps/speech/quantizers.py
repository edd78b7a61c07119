"""Envelope quantizers of [vali2021msvq] that the core does not have.

- :class:`UniformScalarQuantizer`: the PyAWNeS baseline, one uniform quantizer per envelope
  parameter (straight-through in training);
- :class:`SoftResidualVQ`: multi-stage VQ trained with soft VQ, ``sum_i softmin(beta d_i) c_i``
  with beta = 0.1 ([vali2021msvq] eq. (4)), hard and greedy at test time;
- :class:`ScaledError`: the bitrate-penalty quantizer ``x - gamma (x - x_hat)`` with the
  penalty ``-M log2 gamma`` ([vali2021msvq] eq. (5), §5), wrapped around any quantizer and
  active only in training.

All keep the :class:`~vqkit.quantizers.base.Quantizer` contract.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ...functional.search import nearest_neighbor
from ...quantizers.adapters import Wrapper
from ...quantizers.base import (
    Quantizer,
    check_index_tensor,
    check_vectors,
    quantizer_from_config,
    quantizer_to_config,
)
from ...registry import QUANTIZERS
from ...types import Progress


@QUANTIZERS.register(aliases=("scalar",))
class UniformScalarQuantizer(Quantizer):
    """Uniform scalar quantization of each dimension on ``[low, high]`` with ``2^bits`` levels.

    The range is set from data by :meth:`init_range_` (percentiles); training passes the
    gradient straight through the rounding.

    Args:
        dim: D.
        bits: bits per dimension (so ``D * bits`` bits per vector at a fixed rate).

    Raises:
        ValueError: ``bits < 1``.

    Example:
        >>> sq = UniformScalarQuantizer(2, bits=2)
        >>> sq.init_range_(torch.tensor([[0.0, -1.0], [3.0, 1.0]]), quantile=0.0)
        >>> sq.encode(torch.tensor([[1.1, 0.9]])).tolist()
        [[1, 3]]
        >>> sq.decode(torch.tensor([[1, 3]])).tolist()
        [[1.0, 1.0]]
    """

    initialises_from_data = True

    def __init__(self, dim: int, bits: int) -> None:
        super().__init__()
        if bits < 1:
            raise ValueError(f"bits must be >= 1, got {bits}")
        self.dim = int(dim)
        self.bits = int(bits)
        self.index_shape = (self.dim,)
        self.register_buffer("low", torch.full((dim,), -1.0))
        self.register_buffer("high", torch.full((dim,), 1.0))

    @property
    def levels(self) -> int:
        return 2**self.bits

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        """``2^bits`` levels for each of the D index columns."""
        return (self.levels,) * self.dim

    def init_codebook_(
        self, samples: Tensor, *, generator: torch.Generator | None = None,
        progress: Progress | None = None, quantile: float = 0.001,
    ) -> None:
        """The data-driven start of a scalar quantizer: :meth:`init_range_` (deterministic and
        one pass; ``generator`` and ``progress`` are accepted for the common interface and
        unused).

        Raises:
            TypeError / ValueError: as :meth:`init_range_`.
        """
        self.init_range_(samples, quantile=quantile)

    @torch.no_grad()
    def init_range_(self, samples: Tensor, *, quantile: float = 0.001) -> None:
        """Set ``[low, high]`` to the ``quantile`` and ``1 - quantile`` points of ``samples``.

        Shape:
            ``samples`` ``(..., D)``; ``quantile`` a fraction in [0, 0.5].

        Raises:
            TypeError: ``samples`` is not a tensor of a floating dtype.
            ValueError: ``samples`` is not ``(..., D)`` or holds NaN/Inf.
        """
        check_vectors(samples, self.dim, "samples")
        flat = samples.reshape(-1, self.dim).float()
        self.low.copy_(torch.quantile(flat, quantile, dim=0))
        self.high.copy_(torch.quantile(flat, 1 - quantile, dim=0))

    def _step(self) -> Tensor:
        return ((self.high - self.low) / (self.levels - 1)).clamp_min(1e-12)

    def _encode(self, x: Tensor) -> Tensor:
        idx = torch.round((x.float() - self.low) / self._step())
        return idx.clamp(0, self.levels - 1).long()

    def _decode(self, indices: Tensor) -> Tensor:
        valid = (indices >= 0).float()
        return (self.low + indices.clamp_min(0).float() * self._step()) * valid

    def _train_forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Mapping[str, Tensor]]:
        indices = self._encode(x.detach())
        q = self._decode(indices).to(x.dtype)
        return x + (q - x).detach(), indices, x.new_zeros(()), {}

    def _check_indices(self, indices: Tensor) -> None:
        check_index_tensor(indices, self.levels)

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim, "bits": self.bits}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> UniformScalarQuantizer:
        return cls(**config)


@QUANTIZERS.register(aliases=("soft-rvq",))
class SoftResidualVQ(Quantizer):
    """Multi-stage VQ trained by soft VQ: each stage outputs ``sum_i softmax(-beta d_i) c_i``.

    ``d_i`` is the squared distance from the stage's (soft) residual to codeword i. Test time
    is hard greedy residual search, as a real codec needs; [vali2021msvq] §4 states
    neither choice.

    Args:
        dim: D.
        codebook_size: K per stage.
        num_codebooks: stages M.
        beta: softmin sharpness (0.1 in [vali2021msvq]).
        generator: random source of the initial codewords.

    Raises:
        ValueError: ``beta <= 0`` (or NaN), or ``codebook_size`` or ``num_codebooks < 1``.

    Example:
        >>> vq = SoftResidualVQ(4, 8, 2)
        >>> out = vq(torch.randn(5, 4))
        >>> out.quantized.shape, out.indices.shape
        (torch.Size([5, 4]), torch.Size([5, 2]))
        >>> x = torch.randn(3, 4)
        >>> torch.equal(vq.eval()(x).quantized, vq.decode(vq.encode(x)))
        True
    """

    initialises_from_data = True

    def __init__(
        self, dim: int, codebook_size: int, num_codebooks: int, *, beta: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not beta > 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        if codebook_size < 1 or num_codebooks < 1:
            raise ValueError(
                f"codebook_size and num_codebooks must be >= 1, got {codebook_size}, "
                f"{num_codebooks}"
            )
        self.dim = int(dim)
        self.beta = float(beta)
        self.index_shape = (int(num_codebooks),)
        init = (torch.rand(num_codebooks, codebook_size, dim, generator=generator) * 2 - 1)
        self.codewords = nn.Parameter(init / codebook_size)

    @property
    def codebook_size(self) -> int:
        return self.codewords.shape[1]

    @property
    def num_codebooks(self) -> int:
        return self.codewords.shape[0]

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return (self.codebook_size,) * self.num_codebooks

    @torch.no_grad()
    def init_codebook_(
        self,
        samples: Tensor,
        *,
        generator: torch.Generator | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Stage-wise k-means on the residuals of ``samples`` (greedy RVQ initialisation);
        ``progress(done, total, info)`` runs over all stages (``info["codebook"]``).

        Shape:
            ``samples`` ``(..., D)``.

        Raises:
            TypeError: ``samples`` is not a tensor of a floating dtype.
            ValueError: ``samples`` is not ``(..., D)`` or holds NaN/Inf.
        """
        from ...functional.kmeans import kmeans, stage_progress

        check_vectors(samples, self.dim, "samples")
        r = samples.reshape(-1, self.dim).float()
        stage = self.codebook_size + 20
        for m in range(self.num_codebooks):
            step = stage_progress(progress, m * stage, self.num_codebooks * stage, {"codebook": m})
            self.codewords[m].copy_(kmeans(r, self.codebook_size, iters=20, generator=generator,
                                           progress=step))
            r = r - self.codewords[m][nearest_neighbor(r, self.codewords[m])[1][:, 0]]

    def _train_forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Mapping[str, Tensor]]:
        r = x
        out = torch.zeros_like(x)
        indices = []
        for m in range(self.num_codebooks):
            c = self.codewords[m]
            d = (r.float().unsqueeze(1) - c.unsqueeze(0)).pow(2).sum(-1)
            weights = torch.softmax(-self.beta * d, dim=-1)
            soft = (weights @ c).to(x.dtype)
            indices.append(d.argmin(-1))
            out = out + soft
            r = r - soft
        return out, torch.stack(indices, -1), x.new_zeros(()), {}

    def _encode(self, x: Tensor) -> Tensor:
        r = x.float()
        indices = []
        for m in range(self.num_codebooks):
            idx = nearest_neighbor(r, self.codewords[m].detach())[1][:, 0]
            r = r - self.codewords[m].detach()[idx]
            indices.append(idx)
        return torch.stack(indices, -1)

    def _decode(self, indices: Tensor) -> Tensor:
        out = self.codewords.new_zeros(indices.shape[0], self.dim)
        for m in range(self.num_codebooks):
            idx = indices[:, m]
            out = out + self.codewords[m][idx.clamp_min(0)] * (idx >= 0).unsqueeze(-1)
        return out

    def _check_indices(self, indices: Tensor) -> None:
        check_index_tensor(indices, self.codebook_size)
        if indices.dim() < 1 or indices.shape[-1] != self.num_codebooks:
            raise ValueError(
                f"indices must have shape (..., {self.num_codebooks}), got {tuple(indices.shape)}"
            )

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim, "codebook_size": self.codebook_size,
                "num_codebooks": self.num_codebooks, "beta": self.beta}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SoftResidualVQ:
        return cls(**config)


@QUANTIZERS.register
class ScaledError(Wrapper):
    """Training-time bitrate adaptation: ``x - gamma (x - x_hat)`` with penalty ``-M log2 gamma``.

    ``gamma`` (kept as ``exp`` of a free parameter, starting at 1) shrinks or grows the
    quantization error the rest of the model sees; the penalty ``Delta B = -M log2 gamma``
    (bits, added to ``loss``) prices that change. After training, ``Delta B`` estimates how
    many bits the inner quantizer lacks (> 0) or has in excess (< 0). Eval mode is the inner
    quantizer's, so the codec is unchanged.

    Args:
        inner: the quantizer whose error is scaled.
        penalty_dim: M in the penalty (16 envelope parameters in [vali2021msvq]).

    Raises:
        TypeError: ``inner`` is not a :class:`~vqkit.quantizers.base.Quantizer`.

    Example:
        >>> from vqkit import VectorQuantizer
        >>> q = ScaledError(VectorQuantizer(4, 8), penalty_dim=4)
        >>> out = q(torch.randn(6, 4))
        >>> abs(out.losses["bitrate_penalty"].item()), q.gamma.item()
        (0.0, 1.0)
    """

    def __init__(self, inner: Quantizer, *, penalty_dim: int | None = None) -> None:
        super().__init__()
        self.inner = self._adopt(inner, "inner")
        self.penalty_dim = int(penalty_dim if penalty_dim is not None else inner.dim)
        self.log_gamma = nn.Parameter(torch.zeros(()))

    @property
    def wrapped(self) -> Quantizer:
        return self.inner

    @property
    def gamma(self) -> Tensor:
        return self.log_gamma.exp()

    def bitrate_penalty(self) -> Tensor:
        """``Delta B = -M log2 gamma`` in bits per vector."""
        return -self.penalty_dim * self.log_gamma / math.log(2.0)

    def _train_forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Mapping[str, Tensor]]:
        out = self.inner(x)
        scaled = x - self.gamma * (x - out.quantized)
        penalty = self.bitrate_penalty()
        losses = {**out.losses, "bitrate_penalty": penalty}
        return scaled, out.indices, out.loss + penalty, losses

    # Everything else (hooks, codebooks, maintenance) is the inner quantizer's (Wrapper).

    def config(self) -> dict[str, Any]:
        return {"inner": quantizer_to_config(self.inner), "penalty_dim": self.penalty_dim}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ScaledError:
        return cls(quantizer_from_config(config["inner"]), penalty_dim=config["penalty_dim"])
