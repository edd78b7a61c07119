"""Codebook parameterisations: how a codebook's codewords are made, and the space it searches.

The third axis of a codebook quantizer, beside the estimator (how the gradient reaches the
input) and the codebook learning (gradient or EMA, :mod:`vqkit.codebooks`). A
:class:`~vqkit.codebooks.Codebook` holds one of these strategies; it maps the quantizer's
``D``-dimensional input to the **code space** (``to_code``), where the exact nearest-neighbour
search, the estimator and the EMA statistics run against the effective ``(K, d)`` codewords,
and maps the code back (``from_code``):

- :class:`Direct`: a free ``(K, D)`` matrix, code space = data space (the default).
- :class:`SimVQ` ([zhu2024simvq] eq. (6)): ``C = B W + b`` with a frozen random basis
  ``B (K, D)`` (a buffer) and a learned linear map ``W (D, D)``, ``b (D,)``; every codeword
  moves with every update of ``W``, the paper's cure for codebook collapse. Code space = data
  space.
- :class:`Cosine` ([yu2022vitvqgan] §3.2): inputs and codewords l2-normalised, so the nearest
  codeword is the one of largest cosine similarity (``||u - v||^2 = 2 - 2 cos`` on the sphere).
- :class:`Factorised` ([yu2022vitvqgan] §3.2, "factorized codes"): a learned projection
  ``D -> d`` before the search, the codebook in ``d`` dimensions (itself any non-factorised
  parameterisation, e.g. ``Factorised(8, Cosine())``), a learned projection ``d -> D`` after.

How they combine with the other axes (each refusal is a ``ValueError`` from the constructor):

- every estimator (NSVQ, STE, rotation trick, DiVeQ) works with every parameterisation: it
  runs in the code space on ``(to_code(x), codeword)``, so NSVQ substitutes noise on the sphere
  for :class:`Cosine` and in ``d`` dimensions for :class:`Factorised`, and the rotation trick
  rotates the projected vector onto its code; the output goes through ``from_code``;
- EMA learning moves free codeword rows toward the mean of their code-space inputs: meaningful
  for :class:`Direct`, for :class:`Cosine` (the EMA of normalised inputs, renormalised when
  read, as in the spherical k-means step) and for :class:`Factorised` over a free inner
  codebook (the rows live in the projected space); refused for :class:`SimVQ`, whose rows are
  tied through ``W`` and learned by gradient only;
- k-means initialisation fits the code-space vectors (normalised, or projected); for
  :class:`SimVQ` it sets ``W, b`` to the least-squares solution of ``B W + b = centres``; dead-code
  replacement overwrites rows in the code space and is refused for :class:`SimVQ` (a row cannot
  move alone; the shared map is what keeps SimVQ's codes alive);
- the sum-type quantizers (:class:`~vqkit.ResidualVQ`, :class:`~vqkit.AdditiveVQ`) take only
  the parameterisations whose code space is the data space
  (:attr:`CodebookParameterisation.in_data_space`): a sum of unit vectors is not on the
  sphere, and stages projected into their own spaces have no common residual.
  :class:`~vqkit.ProductVQ` takes all four, per sub-space.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .registry import PARAMETERISATIONS
from .strategy import Strategy, from_config, to_config

if TYPE_CHECKING:
    from .codebooks import Codebook, CodebookLearning


class CodebookParameterisation(Strategy):
    """Base class of the parameterisations; :class:`Direct` behaviour unless overridden.

    Raises:
        ValueError: from :meth:`check_learning` / :meth:`check_rows_writable`, for the
            combinations a parameterisation refuses.
    """

    registry = PARAMETERISATIONS

    #: Whether the code space is the data space (``to_code`` and ``from_code`` are the
    #: identity): the sum-type quantizers need it.
    in_data_space: bool = True

    def code_dim(self, dim: int) -> int:
        """d, the dimension of the code space of a codebook quantizing ``dim``-vectors."""
        return dim

    def check_learning(self, learning: CodebookLearning) -> None:
        """Raise ``ValueError`` when ``learning`` cannot train this parameterisation."""

    def check_rows_writable(self) -> None:
        """Raise ``ValueError`` when single codewords cannot be overwritten (dead-code
        replacement)."""

    def register_state_(self, codebook: Codebook, initial: Tensor, trained: bool) -> None:
        """Register the parameters and buffers on ``codebook``; ``initial`` are the ``(K, d)``
        initial codewords, ``trained`` whether the optimizer trains them (else EMA)."""
        if trained:
            codebook.codewords = nn.Parameter(initial)
        else:
            codebook.register_buffer("codewords", initial)

    def codewords(self, codebook: Codebook) -> Tensor:
        """The effective ``(K, d)`` codewords, differentiable."""
        return codebook.codewords

    def to_code(self, codebook: Codebook, x: Tensor) -> Tensor:
        """``(N, D)`` inputs to ``(N, d)`` code-space vectors (differentiable)."""
        return x

    def from_code(self, codebook: Codebook, z: Tensor) -> Tensor:
        """``(N, d)`` code-space vectors to ``(N, D)`` outputs (differentiable)."""
        return z

    def write_rows_(self, codebook: Codebook, rows: Tensor, values: Tensor) -> Tensor:
        """Make the effective codewords ``rows`` equal ``values`` (no gradient); returns what
        they stand for now (``values`` themselves for free rows, a fit where rows are tied)."""
        codebook.codewords[rows] = values.to(codebook.codewords.dtype)
        return values


@PARAMETERISATIONS.register(aliases=("direct",))
class Direct(CodebookParameterisation):
    """A free ``(K, D)`` codeword matrix searched in the data space (the default).

    Example:
        >>> from vqkit import VectorQuantizer
        >>> vq = VectorQuantizer(4, 8, parameterisation=Direct())
        >>> vq.codewords is vq.codebook.codewords
        True
    """


@PARAMETERISATIONS.register(aliases=("simvq", "linear"))
class SimVQ(CodebookParameterisation):
    """SimVQ ([zhu2024simvq] eq. (6)): codewords ``C = B W + b``, ``B`` frozen, ``W, b`` learned.

    ``B (K, d)`` is a frozen random basis, the buffer ``basis``, drawn N(0, 1/d) as in the
    paper's released code (the quantizer's ``init`` does not apply to it); ``W (d, d)`` is the
    parameter ``weight`` and ``b (d,)`` the parameter ``bias`` (with ``bias=True``, as the
    paper's ``nn.Linear``), both initialised as ``nn.Linear(d, d)`` is (U(-1/sqrt(d),
    1/sqrt(d))), so the initial codewords are a small cloud around the origin and move
    together. A gradient reaching any codeword updates ``W`` (and ``b``) and so every codeword,
    which is why SimVQ does not collapse. Data initialisation (k-means) fits ``W, b`` by least
    squares.

    On the codebook-usage reproduction (``vqkit reproduce codebook-usage``) this initialisation
    keeps more codes alive than a unit-variance basis with ``W = I`` (docs/results.md).

    Args:
        bias: learn the offset ``b`` (default True, the paper's code); False gives ``C = B W``.

    Raises:
        TypeError: ``bias`` is not a bool.
        ValueError: (:meth:`check_learning`) with EMA learning; (:meth:`check_rows_writable`)
            on dead-code replacement.

    Example:
        >>> from vqkit import VectorQuantizer
        >>> vq = VectorQuantizer(4, 8, parameterisation=SimVQ())
        >>> cb = vq.codebook
        >>> torch.allclose(vq.codewords, cb.basis @ cb.weight + cb.bias)
        True
    """

    def __init__(self, bias: bool = True) -> None:
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {bias!r}")
        self.bias = bias

    def config(self) -> dict[str, Any]:
        return {"bias": self.bias}

    def check_learning(self, learning: CodebookLearning) -> None:
        """Refuse EMA learning.

        Raises:
            ValueError: ``learning`` is not by gradient (EMA).
        """
        if not learning.trained_by_gradient:
            raise ValueError(
                f"SimVQ cannot be learned by {learning!r}: EMA moves free codeword rows, and "
                "SimVQ's rows are B W + b with B frozen; W, b are learned by gradient only "
                "([zhu2024simvq])")

    def check_rows_writable(self) -> None:
        """Refuse dead-code replacement.

        Raises:
            ValueError: always (the rows are tied through ``W``).
        """
        raise ValueError(
            "SimVQ cannot replace dead codes: its codewords are tied through the shared map W "
            "(C = B W + b, B frozen), so one row cannot be overwritten alone; SimVQ keeps codes "
            "alive by updating W with every gradient ([zhu2024simvq]); train without replacement")

    def register_state_(self, codebook: Codebook, initial: Tensor, trained: bool) -> None:
        size, dim = initial.shape
        basis = torch.randn(size, dim, dtype=initial.dtype, device=initial.device)
        codebook.register_buffer("basis", basis * dim**-0.5)
        layer = nn.Linear(dim, dim, bias=self.bias, dtype=initial.dtype, device=initial.device)
        codebook.weight = nn.Parameter(layer.weight.detach().T.contiguous())
        codebook.register_parameter(
            "bias", nn.Parameter(layer.bias.detach()) if self.bias else None)

    def codewords(self, codebook: Codebook) -> Tensor:
        if codebook.bias is None:
            return codebook.basis @ codebook.weight
        return torch.addmm(codebook.bias, codebook.basis, codebook.weight)

    def write_rows_(self, codebook: Codebook, rows: Tensor, values: Tensor) -> Tensor:
        # All K rows at once (k-means initialisation): the least-squares W, b of B W + b = values.
        if rows.numel() != codebook.codebook_size:
            self.check_rows_writable()
        design = codebook.basis.double()[rows].cpu()
        if codebook.bias is not None:
            design = torch.cat([design, torch.ones(len(design), 1, dtype=design.dtype)], dim=1)
        solution = torch.linalg.lstsq(design, values.double().cpu()).solution
        codebook.weight.copy_(solution[:codebook.weight.shape[0]].to(codebook.weight))
        if codebook.bias is not None:
            codebook.bias.copy_(solution[-1].to(codebook.bias))
        return self.codewords(codebook)[rows].to(values)


@PARAMETERISATIONS.register(aliases=("cosine",))
class Cosine(CodebookParameterisation):
    """l2-normalised codes and inputs ([yu2022vitvqgan] §3.2): the search is an argmax of cosine
    similarity and the output lies on the unit sphere.

    The stored ``codewords`` are free rows; the effective codewords are ``c / ||c||``
    (computed in fp32, in the codebook's dtype). An EMA codebook averages normalised inputs and
    is renormalised when read. A zero input stays zero.

    Example:
        >>> from vqkit import VectorQuantizer
        >>> vq = VectorQuantizer(4, 8, parameterisation=Cosine()).eval()
        >>> out = vq(torch.randn(3, 4))
        >>> torch.allclose(out.quantized.norm(dim=-1), torch.ones(3))
        True
    """

    in_data_space = False

    def codewords(self, codebook: Codebook) -> Tensor:
        c = codebook.codewords
        return F.normalize(c.float(), dim=-1).to(c.dtype)

    def to_code(self, codebook: Codebook, x: Tensor) -> Tensor:
        return F.normalize(x.float(), dim=-1)


@PARAMETERISATIONS.register(aliases=("factorised",))
class Factorised(CodebookParameterisation):
    """Factorised low-dimensional codes ([yu2022vitvqgan] §3.2): search in ``d`` dimensions.

    ``z = W_in x + b_in`` (``nn.Linear(D, d)``, the codebook's ``project_in``); the nearest of
    the ``(K, d)`` codewords of ``inner`` is found for ``z``; the output is
    ``W_out q + b_out`` (``project_out``, ``nn.Linear(d, D)``). The quantizer's ``dim`` stays
    D. ViT-VQGAN combines it with l2-normalisation: ``Factorised(8, Cosine())``.

    Args:
        codebook_dim: d >= 1 (8 as in [yu2022vitvqgan]).
        inner: the parameterisation of the d-dimensional codebook: :class:`Direct` (default),
            :class:`Cosine` or :class:`SimVQ`.

    Raises:
        ValueError: ``codebook_dim`` is not an int >= 1, or ``inner`` is itself factorised.
        TypeError: ``inner`` is not a parameterisation.

    Example:
        >>> from vqkit import VectorQuantizer
        >>> vq = VectorQuantizer(16, 32, parameterisation=Factorised(4, Cosine()))
        >>> vq.codewords.shape, vq(torch.randn(5, 16)).quantized.shape
        (torch.Size([32, 4]), torch.Size([5, 16]))
    """

    in_data_space = False

    def __init__(self, codebook_dim: int = 8,
                 inner: CodebookParameterisation | None = None) -> None:
        if isinstance(codebook_dim, bool) or not isinstance(codebook_dim, int) or codebook_dim < 1:
            raise ValueError(f"codebook_dim must be an int >= 1, got {codebook_dim!r}")
        inner = Direct() if inner is None else inner
        if not isinstance(inner, CodebookParameterisation):
            raise TypeError(f"inner must be a CodebookParameterisation, got {inner!r}")
        if isinstance(inner, Factorised):
            raise ValueError("inner must not be Factorised: two projections in a row are one")
        self.codebook_dim = codebook_dim
        self.inner = inner

    def config(self) -> dict[str, Any]:
        return {"codebook_dim": self.codebook_dim, "inner": to_config(self.inner)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Factorised:
        return cls(config["codebook_dim"], from_config(config["inner"], PARAMETERISATIONS))

    def code_dim(self, dim: int) -> int:
        return self.codebook_dim

    def check_learning(self, learning: CodebookLearning) -> None:
        self.inner.check_learning(learning)

    def check_rows_writable(self) -> None:
        self.inner.check_rows_writable()

    def register_state_(self, codebook: Codebook, initial: Tensor, trained: bool) -> None:
        self.inner.register_state_(codebook, initial, trained)
        codebook.project_in = nn.Linear(codebook.dim, self.codebook_dim)
        codebook.project_out = nn.Linear(self.codebook_dim, codebook.dim)

    def codewords(self, codebook: Codebook) -> Tensor:
        return self.inner.codewords(codebook)

    def to_code(self, codebook: Codebook, x: Tensor) -> Tensor:
        return self.inner.to_code(codebook, _linear(codebook.project_in, x))

    def from_code(self, codebook: Codebook, z: Tensor) -> Tensor:
        out = codebook.project_out
        return _linear(out, self.inner.from_code(codebook, z)).to(out.weight.dtype)

    def write_rows_(self, codebook: Codebook, rows: Tensor, values: Tensor) -> Tensor:
        return self.inner.write_rows_(codebook, rows, values)


def _linear(layer: nn.Linear, x: Tensor) -> Tensor:
    """``layer(x)`` in fp32 whatever the dtypes (the search needs fp32 inputs)."""
    return F.linear(x.float(), layer.weight.float(), layer.bias.float())
