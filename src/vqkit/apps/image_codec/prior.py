"""The learned prior over codebook indices and their entropy coding.

The whole-image codec's residual VQ picks one index of ``K`` per stage at every latent
position. Its file codes those indices with a range coder ([bamler2022constriction],
``constriction``'s ``RangeEncoder``/``RangeDecoder``) under :class:`IndexPrior`: one
categorical distribution per stage, the index frequencies the model's own encoder produces on
the training photos, counted after training (add-half smoothed, so every index stays
codable). The file size therefore follows the content: flat regions, whose indices are the
frequent ones, cost fewer bits than texture.

The cost of an index ``k`` of stage ``s`` is ``-log2 p_s(k)`` bits
(:meth:`IndexPrior.bits`); the range coder's output is within a few bytes of the sum over an
image (tested). Probabilities are float64 buffers of the model, so the encoder and the
decoder quantize them to the same fixed-point tables.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from vqkit.data._errors import require_module

#: pip extra that installs the entropy coder.
CODER_INSTALL = "pip install 'vqkit[image]' (or: pip install constriction)"


def _constriction():
    return require_module("constriction", CODER_INSTALL)


class IndexPrior(nn.Module):
    """Per-stage categorical distributions over the ``K`` indices, kept as float64 buffers.

    Args:
        stages: M, the number of residual stages.
        codebook_size: K.

    Shape:
        ``probabilities`` buffer ``(M, K)`` float64, every row sums to 1 (uniform until
        :meth:`fit_` is called).

    Raises:
        ValueError: ``stages`` or ``codebook_size`` is not a positive int.

    Example:
        >>> prior = IndexPrior(2, 4)
        >>> prior.bits(torch.tensor([[0, 1], [2, 3]]))
        8.0
        >>> counts = torch.tensor([[10, 0, 0, 0], [1, 1, 1, 1]])
        >>> prior.fit_(counts)
        >>> round(prior.bits(torch.tensor([[0, 0]])), 3)   # -log2(10.5 / 12) - log2(1 / 4)
        2.193
    """

    def __init__(self, stages: int, codebook_size: int) -> None:
        super().__init__()
        for name, value in (("stages", stages), ("codebook_size", codebook_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        uniform = torch.full((stages, codebook_size), 1.0 / codebook_size, dtype=torch.float64)
        self.register_buffer("probabilities", uniform)

    @property
    def stages(self) -> int:
        return self.probabilities.shape[0]

    @property
    def codebook_size(self) -> int:
        return self.probabilities.shape[1]

    @torch.no_grad()
    def fit_(self, counts: Tensor, smoothing: float = 0.5) -> None:
        """Set the distributions from index counts: ``p_s(k) = (n_sk + smoothing) / sum``.

        Args:
            counts: ``(M, K)`` non-negative counts (how often stage ``s`` picked ``k``).
            smoothing: added to every count (> 0 keeps every index codable at finite cost).

        Raises:
            ValueError: ``counts`` is not ``(M, K)``, holds a negative or non-finite value,
                or ``smoothing`` is not > 0.
        """
        if tuple(counts.shape) != tuple(self.probabilities.shape):
            raise ValueError(f"counts must have shape {tuple(self.probabilities.shape)}, "
                             f"got {tuple(counts.shape)}")
        c = counts.detach().to(torch.float64)
        if not bool(torch.isfinite(c).all()) or bool((c < 0).any()):
            raise ValueError("counts must be finite and non-negative")
        if not smoothing > 0:
            raise ValueError(f"smoothing must be > 0, got {smoothing}")
        c = c + smoothing
        self.probabilities.copy_(c / c.sum(dim=1, keepdim=True))

    def _check(self, indices: Tensor) -> Tensor:
        if not isinstance(indices, Tensor) or indices.dtype != torch.int64 or indices.dim() != 2:
            got = tuple(indices.shape) if isinstance(indices, Tensor) else type(indices).__name__
            raise ValueError(f"indices must be an int64 (N, m) tensor, got {got}")
        if indices.shape[1] > self.stages:
            raise ValueError(f"indices have {indices.shape[1]} stages, the prior {self.stages}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise ValueError(f"indices must be in [0, {self.codebook_size})")
        return indices

    def bits(self, indices: Tensor) -> float:
        """Ideal code length ``sum -log2 p_s(k)`` of ``indices`` in bits.

        Shape:
            ``indices`` ``(N, m)`` int64, ``m <= M`` (the first ``m`` stages).

        Raises:
            ValueError: ``indices`` is not an ``(N, m)`` int64 tensor of valid indices.
        """
        idx = self._check(indices)
        logp = self.probabilities[: idx.shape[1]].log2()
        return float(-logp.gather(1, idx.t()).sum())

    def least_bits(self, positions: int, stages: int) -> float:
        """A lower bound on the payload bits of any ``(positions, stages)`` indices.

        Every index of stage ``s`` costs at least ``-log2 max_k p_s(k)`` bits; the bound is
        that sum less 0.1 % and 64 bits, for the coder's fixed-point probabilities and its
        final words. :func:`~.whole_file.decompress` refuses a shorter payload, so a tiny
        forged file cannot make it decode (and allocate for) a huge image.
        """
        per_position = float(-self.probabilities[:stages].max(dim=1).values.log2().sum())
        return max(0.0, 0.999 * positions * per_position - 64.0)

    def _models(self, stages: int) -> list:
        model = _constriction().stream.model
        return [model.Categorical(self.probabilities[s].numpy(), perfect=False)
                for s in range(stages)]

    def encode(self, indices: Tensor) -> bytes:
        """Range-code ``indices`` (stage-major: every position's stage 0, then stage 1, ...).

        Shape:
            ``indices`` ``(N, m)`` int64, ``m <= M``.

        Raises:
            ValueError: as :meth:`bits`.
            ImportError: ``constriction`` is not installed (the message says how to install it).
        """
        idx = self._check(indices)
        coder = _constriction().stream.queue.RangeEncoder()
        for s, model in enumerate(self._models(idx.shape[1])):
            coder.encode(idx[:, s].numpy().astype(np.int32), model)
        return coder.get_compressed().astype("<u4").tobytes()

    def decode(self, payload: bytes, positions: int, stages: int) -> Tensor:
        """Inverse of :meth:`encode`: ``(positions, stages)`` int64 indices.

        Raises:
            ValueError: ``stages`` exceeds M, or ``payload`` is not a whole number of 32-bit
                words, does not decode (a corrupt payload) or holds words beyond the indices
                asked for (detected whenever the coder can tell).
            ImportError: ``constriction`` is not installed.
        """
        if not 0 <= stages <= self.stages or positions < 0:
            raise ValueError(f"stages must be in [0, {self.stages}] and positions >= 0, got "
                             f"{stages}, {positions}")
        if len(payload) % 4:
            raise ValueError(f"payload of {len(payload)} bytes is not a whole number of words")
        words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
        coder = _constriction().stream.queue.RangeDecoder(words)
        out = np.empty((stages, positions), dtype=np.int64)
        try:
            for s, model in enumerate(self._models(stages)):
                out[s] = coder.decode(model, positions)
        except (ValueError, RuntimeError, AssertionError) as err:
            raise ValueError(f"entropy-coded payload does not decode: {err}") from err
        if not coder.maybe_exhausted():  # False only when words are certainly left over
            raise ValueError(f"entropy-coded payload does not end where its {positions} "
                             f"positions x {stages} stages do (words left over)")
        return torch.from_numpy(out).t().contiguous()
