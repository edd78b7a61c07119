"""ProductVQ: the vector split into M contiguous sub-vectors, one codebook per sub-space.

``x = [x_1, ..., x_M]`` with ``x_m`` of dimension ``D/M``; ``i_m = argmin ||x_m - c^m||`` and
``x_hat = [c^1_{i_1}, ..., c^M_{i_M}]`` ([vali2025thesis] eq. (2.10)). The sub-spaces are
independent, so this search is exact. By default one estimator call on the whole concatenated
vector trains it (the thesis: the noise substitution is over the full D-dimensional vector, not
per sub-vector).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ..codebooks import CodebookLearning
from ..estimators import Estimator
from ..functional.search import nearest_indices
from ..parameterisations import CodebookParameterisation
from ..registry import QUANTIZERS
from .application import EstimatorApplication
from .composite import MultiCodebookQuantizer, check_count
from .data_init import DataInit


@QUANTIZERS.register(aliases=("pvq", "pq"))
class ProductVQ(MultiCodebookQuantizer):
    """Product VQ ([jegou2011pq]; [vali2025thesis] eq. (2.10)) trained end to end with any
    estimator.

    Args:
        dim: D, a multiple of ``num_codebooks``.
        codebook_size: K, entries per sub-space codebook.
        num_codebooks: M, the number of sub-vectors (each ``D/M``-dimensional).
        estimator: an :class:`~vqkit.Estimator` (applied to the concatenated vector; NSVQ by
            default), or ``OnComposite(est)`` / ``PerStage(est)`` (per sub-vector).
        learning: :class:`~vqkit.Gradient` (default) or :class:`~vqkit.EMA`; an EMA codeword
            moves toward the mean of its sub-vectors.
        init: ``"uniform"`` U(-1/K, 1/K) ([vali2023rpavqcode]) or ``"normal"``.
        parameterisation: the parameterisation of every sub-space codebook: ``Direct()``
            (default), ``SimVQ()``, ``Cosine()`` (each sub-vector on its unit sphere) or
            ``Factorised(d)`` (each sub-vector projected to d dimensions); the estimator then
            runs on the concatenated code-space vectors (see :mod:`vqkit.parameterisations`).
        data_init: None (default) or :class:`~vqkit.DataInit`: the first training-mode
            forward runs :meth:`init_codebook_` on its (kept) vectors, once; see
            :mod:`vqkit.quantizers.data_init`.

    Raises:
        ValueError: ``dim``, ``codebook_size`` or ``num_codebooks`` is not an int >= 1,
            ``dim`` is not a multiple of ``num_codebooks``, ``init`` is unknown, or the
            parameterisation refuses the learning (SimVQ with EMA).
        TypeError: ``estimator``, ``learning`` or ``data_init`` is not a strategy of its kind.

    Shape:
        input ``(..., D)``; ``quantized`` ``(..., D)``; ``indices`` ``(..., M)`` int64.

    Example:
        >>> pvq = ProductVQ(dim=8, codebook_size=16, num_codebooks=4)
        >>> out = pvq(torch.randn(3, 8))
        >>> out.indices.shape, pvq.codebooks[0].codewords.shape
        (torch.Size([3, 4]), torch.Size([16, 2]))
        >>> x = torch.randn(5, 8)
        >>> torch.equal(pvq.decode(pvq.encode(x)), pvq.eval()(x).quantized)
        True
    """

    sums_parts = False

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        num_codebooks: int,
        *,
        estimator: Estimator | EstimatorApplication | None = None,
        learning: CodebookLearning | None = None,
        init: str = "uniform",
        parameterisation: CodebookParameterisation | None = None,
        data_init: DataInit | None = None,
    ) -> None:
        super().__init__()
        dim = check_count(dim, "dim")
        num = check_count(num_codebooks, "num_codebooks")
        if dim % num:
            raise ValueError(
                f"dim must be a multiple of num_codebooks={num} (contiguous equal sub-vectors), "
                f"got dim={dim}"
            )
        self.sub_dim = dim // num
        self._build(dim, codebook_size, num, self.sub_dim, estimator, learning, init,
                    parameterisation)
        self._use_data_init_(data_init)

    def _subvector(self, x: Tensor, m: int) -> Tensor:
        # Equal contiguous blocks, of the data (D/M) or of the code space (d each).
        width = x.shape[1] // self.num_codebooks
        return x[:, m * width : (m + 1) * width]

    def _select(self, x: Tensor) -> Tensor:
        picked = []
        for m, cb in enumerate(self.codebooks):
            z = cb.to_code(self._subvector(x, m))
            picked.append(nearest_indices(z, cb.effective_codewords())[:, 0])
        return torch.stack(picked, dim=1)

    def config(self) -> dict[str, Any]:
        return self._base_config()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ProductVQ:
        return cls(**cls._base_args(config))
