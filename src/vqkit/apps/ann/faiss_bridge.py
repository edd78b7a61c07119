"""The FAISS bridge: vqkit quantizers to FAISS quantizers and indexes, and back.

Export to FAISS [douze2024faiss]:

- :class:`~vqkit.ProductVQ` -> ``faiss.ProductQuantizer`` / ``faiss.IndexPQ``; FAISS centroids
  have the layout ``(M, ksub, dsub)``, one row block per sub-space.
- :class:`~vqkit.ResidualVQ` -> ``faiss.ResidualQuantizer`` / ``faiss.IndexResidualQuantizer``,
  codebooks ``(M K, d)``; ``max_beam_size`` is the encoder's width (1 for greedy, so FAISS's
  codes equal ours; FAISS's own default beam is 5).
- :class:`~vqkit.AdditiveVQ` -> ``faiss.LocalSearchQuantizer`` / ``IndexLocalSearchQuantizer``
  with our codebooks. FAISS would encode new vectors with LSQ's ICM search, which is not our
  free-order beam search, so the database is encoded by *our* quantizer and its indices are
  packed into the index (:func:`add_encoded`); FAISS then only searches.

Every export needs ``codebook_size == 2**nbits``. Additive indexes store each vector's norm
as a float (``ST_norm_float``), so asymmetric distances are exact up to fp32 rounding.

Import (:func:`from_faiss`) turns trained FAISS quantizers (or their indexes) into vqkit
quantizers whose ``decode`` equals FAISS's, so FAISS-trained codebooks can be fine-tuned by
NSVQ or used inside a network.

faiss is optional: it is imported when first needed, and a missing one raises ImportError
naming ``pip install faiss-cpu`` (the ``faiss`` extra).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...quantizers.additive import AdditiveVQ
from ...quantizers.base import Quantizer
from ...quantizers.build import build_quantizer
from ...quantizers.encoders import BeamSearch, Greedy
from ...quantizers.product import ProductVQ
from ...quantizers.residual import ResidualVQ

INSTALL = "pip install faiss-cpu  (or: pip install 'vqkit[faiss]')"


def require_faiss() -> Any:
    """Import faiss or raise ImportError naming the package that provides it.

    Raises:
        ImportError: faiss is not installed (the message names ``pip install faiss-cpu``).
    """
    try:
        import faiss
    except ImportError as err:
        raise ImportError(f"faiss is required for the FAISS bridge: install it with `{INSTALL}`") \
            from err
    return faiss


def codebook_bits(q: Quantizer) -> int:
    """The bits per code of ``q``'s codebooks, as FAISS wants them (``2**nbits`` codewords).

    Raises:
        TypeError: ``q`` is not a ProductVQ, ResidualVQ or AdditiveVQ (FAISS has no
            equivalent of the others).
        ValueError: ``q.codebook_size`` is not a power of two.

    Example:
        >>> codebook_bits(ProductVQ(dim=8, codebook_size=16, num_codebooks=4))
        4
    """
    if not isinstance(q, (ProductVQ, ResidualVQ, AdditiveVQ)):
        raise TypeError(
            f"q must be a ProductVQ, ResidualVQ or AdditiveVQ, got {type(q).__name__}"
        )
    size = q.codebook_size
    nbits = int(round(math.log2(size)))
    if 2**nbits != size:
        raise ValueError(
            f"codebook_size must be a power of two to export to FAISS, got {size}"
        )
    return nbits


def export_codebooks(q: Quantizer, fq: Any) -> Any:
    """Copy ``q``'s codebooks into ``fq`` and mark it trained; returns ``fq``.

    ``fq`` is an empty FAISS quantizer of ``q``'s shape (``ProductQuantizer``,
    ``ResidualQuantizer``, ``LocalSearchQuantizer``) or an index holding one (flat or IVF).
    A residual quantizer's ``max_beam_size`` becomes the encoder's width.

    Raises:
        ImportError: faiss is not installed.
        TypeError / ValueError: as :func:`codebook_bits`.
    """
    faiss = require_faiss()
    codebook_bits(q)
    inner = _inner_quantizer(fq)
    books = q.codewords.detach().float().cpu().numpy().astype(np.float32, copy=True)
    flat = np.ascontiguousarray(books.reshape(-1))
    if isinstance(inner, faiss.ProductQuantizer):
        faiss.copy_array_to_vector(flat, inner.centroids)
    else:
        if isinstance(q, ResidualVQ):
            inner.max_beam_size = q.encoder.width
        faiss.copy_array_to_vector(flat, inner.codebooks)
        inner.is_trained = True
        inner.compute_codebook_tables()
    if fq is not inner:
        fq.is_trained = True
    return fq


def to_faiss_quantizer(q: Quantizer) -> Any:
    """A trained FAISS quantizer holding ``q``'s codebooks.

    Args:
        q: a :class:`ProductVQ`, :class:`ResidualVQ` or :class:`AdditiveVQ` whose
            ``codebook_size`` is a power of two.

    Returns:
        ``faiss.ProductQuantizer``, ``faiss.ResidualQuantizer`` (``max_beam_size`` = the
        encoder's width) or ``faiss.LocalSearchQuantizer``.

    Raises:
        ImportError: faiss is not installed.
        TypeError: ``q`` is not a ProductVQ, ResidualVQ or AdditiveVQ.
        ValueError: ``q.codebook_size`` is not a power of two.

    Example:
        >>> rvq = ResidualVQ(dim=8, codebook_size=16, num_codebooks=2)
        >>> rq = to_faiss_quantizer(rvq)
        >>> rq.M, rq.max_beam_size
        (2, 1)
    """
    faiss = require_faiss()
    nbits = codebook_bits(q)
    if isinstance(q, ProductVQ):
        fq = faiss.ProductQuantizer(q.dim, q.num_codebooks, nbits)
    elif isinstance(q, ResidualVQ):
        fq = faiss.ResidualQuantizer(q.dim, q.num_codebooks, nbits)
    else:
        fq = faiss.LocalSearchQuantizer(q.dim, q.num_codebooks, nbits)
    return export_codebooks(q, fq)


def to_faiss(q: Quantizer, database: Tensor | None = None) -> Any:
    """An empty FAISS index with ``q``'s codebooks, or one holding ``database`` encoded by ``q``.

    Args:
        q: a :class:`ProductVQ`, :class:`ResidualVQ` or :class:`AdditiveVQ`.
        database: optional ``(N, D)`` vectors, encoded by ``q`` (never by FAISS) and added.

    Returns:
        ``faiss.IndexPQ``, ``faiss.IndexResidualQuantizer`` or
        ``faiss.IndexLocalSearchQuantizer`` (additive ones with ``ST_norm_float``).

    Raises:
        ImportError: faiss is not installed.
        TypeError: ``q`` is not a ProductVQ, ResidualVQ or AdditiveVQ.
        ValueError: ``q.codebook_size`` is not a power of two.
        TypeError / ValueError: ``database`` is not valid input of ``q.encode`` (not a float
            ``(N, D)`` tensor, or NaN/Inf).

    Example:
        >>> pvq = ProductVQ(dim=8, codebook_size=16, num_codebooks=4)
        >>> index = to_faiss(pvq, torch.randn(100, 8))
        >>> index.ntotal
        100
    """
    faiss = require_faiss()
    nbits = codebook_bits(q)
    if isinstance(q, ProductVQ):
        index = faiss.IndexPQ(q.dim, q.num_codebooks, nbits)
    else:
        cls = faiss.IndexResidualQuantizer if isinstance(q, ResidualVQ) \
            else faiss.IndexLocalSearchQuantizer
        index = cls(q.dim, q.num_codebooks, nbits, faiss.METRIC_L2,
                    faiss.AdditiveQuantizer.ST_norm_float)
    export_codebooks(q, index)
    if database is not None:
        add_encoded(index, q.encode(database))
    return index


def _inner_quantizer(obj: Any) -> Any:
    for name in ("pq", "rq", "lsq", "aq"):
        inner = getattr(obj, name, None)
        if inner is not None and not callable(inner):
            return inner
    return obj


def pack_indices(fq: Any, indices: Tensor) -> np.ndarray:
    """Pack ``(N, M)`` indices into FAISS's byte codes for quantizer (or index) ``fq``.

    Product quantizers get packed bitstrings; additive quantizers also get the vector's norm,
    computed from the decoded vector as FAISS's ``pack_codes`` does.

    Shape:
        ``indices`` ``(N, M)`` int; returns ``(N, code_size)`` uint8.

    Raises:
        ImportError: faiss is not installed.
        ValueError: ``indices`` is not ``(N, M)`` with ``fq``'s M, holds a -1 or a value
            outside ``[0, K)``, or ``fq``'s codebooks have unequal ``nbits``.
    """
    faiss = require_faiss()
    inner = _inner_quantizer(fq)
    idx = indices.detach().cpu().numpy()
    if idx.ndim != 2 or idx.shape[1] != inner.M:
        raise ValueError(f"indices must have shape (N, {inner.M}), got {tuple(idx.shape)}")
    high = faiss_codebooks(inner).shape[1]
    if idx.size and (idx.min() < 0 or idx.max() >= high):
        raise ValueError(
            f"indices must be complete (no -1) and in [0, {high - 1}] to pack, got values in "
            f"[{idx.min()}, {idx.max()}]"
        )
    if isinstance(inner, faiss.ProductQuantizer):
        if inner.nbits == 8:
            return np.ascontiguousarray(idx.astype(np.uint8))
        return faiss.pack_bitstrings(np.ascontiguousarray(idx.astype(np.int32)), inner.nbits)
    codes32 = np.ascontiguousarray(idx.astype(np.int32))
    out = np.zeros((idx.shape[0], inner.code_size), dtype=np.uint8)
    inner.pack_codes(idx.shape[0], faiss.swig_ptr(codes32), faiss.swig_ptr(out))
    return out


def add_encoded(index: Any, indices: Tensor) -> None:
    """Append vectors given by their vqkit ``(N, M)`` indices to a FAISS index.

    Raises:
        ImportError / ValueError: as :func:`pack_indices`.
    """
    codes = pack_indices(index, indices)
    index.add_sa_codes(codes)


def search(index: Any, queries: Tensor | np.ndarray, k: int, *,
           params: Any = None) -> tuple[Tensor, Tensor]:
    """FAISS search: ``(distances, indices)``, both ``(Q, k)`` (float32, int64), as FAISS does.

    Distances are squared L2 from each raw query to the decoded database vectors
    (asymmetric distance computation). An IVF index scans the lists of the query's ``nprobe``
    nearest coarse centroids only; when they hold fewer than ``k`` vectors, the remaining ids
    are -1 (FAISS's padding; their distance is the float32 maximum).

    Args:
        index: a FAISS index.
        queries: ``(Q, D)`` raw queries.
        k: neighbours per query.
        params: FAISS ``SearchParameters`` (e.g. :func:`~vqkit.apps.ann.ivf.probe_params`),
            or None for the index's own settings.

    Shape:
        ``queries`` ``(Q, D)``; returns ``(Q, k)`` float32 distances and ``(Q, k)`` int64
        database indices.

    Raises:
        ValueError: ``k`` is not in ``[1, index.ntotal]``.
    """
    if not 1 <= k <= index.ntotal:
        raise ValueError(f"k must be in [1, {index.ntotal}] (index.ntotal), got {k}")
    q = queries.detach().cpu().float().numpy() if isinstance(queries, Tensor) \
        else np.asarray(queries, dtype=np.float32)
    dist, ids = index.search(np.ascontiguousarray(q), k, params=params)
    return torch.from_numpy(dist), torch.from_numpy(ids.astype(np.int64))


def faiss_codebooks(fq: Any) -> np.ndarray:
    """The codebooks of a FAISS quantizer or index as ``(M, K, d)`` float32.

    Raises:
        ImportError: faiss is not installed.
        ValueError: an additive quantizer's codebooks have unequal ``nbits``.
    """
    faiss = require_faiss()
    inner = _inner_quantizer(fq)
    if isinstance(inner, faiss.ProductQuantizer):
        flat = faiss.vector_to_array(inner.centroids)
        return flat.reshape(inner.M, inner.ksub, inner.dsub)
    nbits = faiss.vector_to_array(inner.nbits)
    if len(set(nbits.tolist())) != 1:
        raise ValueError(f"every codebook must have the same nbits, got {nbits.tolist()}")
    flat = faiss.vector_to_array(inner.codebooks)
    return flat.reshape(inner.M, 2 ** int(nbits[0]), inner.d)


def from_faiss(fq: Any, **kwargs: Any) -> Quantizer:
    """A vqkit quantizer with the codebooks of a trained FAISS quantizer or index.

    ``ProductQuantizer``/``IndexPQ`` -> :class:`ProductVQ`; ``ResidualQuantizer`` ->
    :class:`ResidualVQ` (``Greedy`` when ``max_beam_size == 1``, else ``BeamSearch``);
    any other additive quantizer (LSQ, ...) -> :class:`AdditiveVQ` (beam-search encoder:
    FAISS's ICM encoding is not reproduced, so codes may differ while ``decode`` is equal).

    Args:
        fq: the FAISS object (trained).
        **kwargs: extra constructor arguments (``estimator=``, ``learning=``, ``encoder=``).

    Raises:
        ImportError: faiss is not installed.
        TypeError: ``fq`` is not a FAISS product, residual or additive quantizer (or index).
        ValueError: ``fq`` is not trained, or its codebooks have unequal ``nbits``.

    Example:
        >>> import faiss
        >>> rq = faiss.ResidualQuantizer(8, 2, 4); rq.max_beam_size = 1
        >>> rq.train(np.random.default_rng(0).standard_normal((400, 8)).astype("float32"))
        >>> from_faiss(rq).encoder
        Greedy()
    """
    faiss = require_faiss()
    inner = _inner_quantizer(fq)
    if not getattr(fq, "is_trained", True) or not getattr(inner, "is_trained", True):
        raise ValueError("fq must be trained before it is imported")
    books = torch.from_numpy(faiss_codebooks(inner).copy())
    num, size = books.shape[0], books.shape[1]
    if isinstance(inner, faiss.ProductQuantizer):
        kind = "pvq"
    elif isinstance(inner, faiss.ResidualQuantizer):
        kind, beam = "rvq", int(inner.max_beam_size)
        kwargs.setdefault("encoder", Greedy() if beam == 1 else BeamSearch(beam))
    elif isinstance(inner, faiss.AdditiveQuantizer):
        kind = "avq"
    else:
        raise TypeError(f"fq must be a FAISS PQ, RQ or additive quantizer, got {type(fq)}")
    q = build_quantizer(kind, inner.d, size, num, **kwargs)
    rows = torch.arange(size)
    for m, cb in enumerate(q.codebooks):
        cb.overwrite_(rows, books[m])
    return q
