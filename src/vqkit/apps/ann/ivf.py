"""IVF FAISS indexes whose fine coder is a vqkit quantizer ([jegou2011pq], [douze2024faiss]).

An inverted-file index splits the database into ``nlist`` lists, one per centroid of a coarse
quantizer; a query scans only the lists of its ``nprobe`` nearest centroids. Here:

- the coarse centroids come from vqkit's k-means (:func:`coarse_centroids`: k-means++ seeding
  and Lloyd iterations on at most ``MAX_POINTS_PER_CENTROID`` rows per centroid, FAISS's own
  subsample) and go into a ``faiss.IndexFlatL2``, the coarse quantizer of the index;
- the fine coder is the vqkit quantizer, exported as for the flat index
  (:func:`~vqkit.apps.ann.faiss_bridge.export_codebooks`): ``IndexIVFPQ`` (pvq),
  ``IndexIVFResidualQuantizer`` (rvq) or ``IndexIVFLocalSearchQuantizer`` (avq), the additive
  ones with ``ST_norm_float`` as the flat index;
- ``by_residual`` is False: the lists hold the codes of the raw vectors, exactly
  ``quantizer.encode(x)`` packed by :func:`~vqkit.apps.ann.faiss_bridge.pack_indices`, so every
  stored vector decodes to what the flat index holds, and the coarse quantizer only chooses
  which vectors a query scans. A vqkit quantizer is trained on the vectors themselves; FAISS's
  default ``by_residual=True`` would encode ``x - c(x)``, the residual to the coarse centroid,
  which needs a coder trained on those residuals (the coarse centroids are not in a vqkit
  checkpoint), so it is not offered.

Each vector goes to the list of its nearest centroid as the coarse quantizer computes it (fp32,
``IndexFlatL2.assign``), the assignment FAISS's own ``add`` makes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...functional.kmeans import kmeans
from ...quantizers.base import Quantizer
from ...quantizers.product import ProductVQ
from ...quantizers.residual import ResidualVQ
from ...types import Progress
from .faiss_bridge import codebook_bits, export_codebooks, pack_indices, require_faiss

#: k-means trains on at most this many rows per centroid (FAISS's ``max_points_per_centroid``).
MAX_POINTS_PER_CENTROID = 256
#: Lloyd iterations of the coarse k-means (FAISS's IVF training default ``cp.niter``).
COARSE_ITERS = 10


def coarse_centroids(x: Tensor, nlist: int, *, iters: int = COARSE_ITERS, seed: int = 0,
                     progress: Progress | None = None) -> Tensor:
    """``nlist`` coarse centroids of the database ``x`` by vqkit's k-means.

    :func:`~vqkit.functional.kmeans.kmeans` with a generator seeded by ``seed``, on at most
    ``MAX_POINTS_PER_CENTROID * nlist`` rows of ``x``.

    Shape:
        ``x`` ``(N, D)``; returns ``(nlist, D)`` float32.

    Raises:
        ValueError: ``nlist`` is not in ``[1, N]``, ``iters`` is negative, or ``x`` is not a
            finite ``(N, D)`` tensor.

    Example:
        >>> coarse_centroids(torch.randn(100, 4), 8).shape
        torch.Size([8, 4])
    """
    if x.dim() != 2:
        raise ValueError(f"x must be (N, D), got shape {tuple(x.shape)}")
    if not 1 <= nlist <= x.shape[0]:
        raise ValueError(f"nlist must be in [1, {x.shape[0]}] (the database vectors), "
                         f"got {nlist}")
    if iters < 0:
        raise ValueError(f"iters must be >= 0, got {iters}")
    generator = torch.Generator().manual_seed(seed)
    return kmeans(x, nlist, iters=iters, generator=generator, progress=progress,
                  max_points_per_centroid=MAX_POINTS_PER_CENTROID)


def check_nprobe(nprobe: int, nlist: int) -> int:
    """``nprobe`` if it is in ``[1, nlist]``.

    Raises:
        ValueError: it is not (FAISS would silently probe ``min(nprobe, nlist)``).
    """
    if not 1 <= nprobe <= nlist:
        raise ValueError(f"nprobe must be in [1, {nlist}] (the index's nlist), got {nprobe}")
    return nprobe


def ivf_index(q: Quantizer, centroids: Tensor, *, nprobe: int = 1) -> Any:
    """An empty IVF FAISS index: coarse quantizer ``centroids``, fine coder ``q``'s codebooks.

    ``by_residual`` is False (see the module docstring) and ``nprobe`` is stored in the index.

    Args:
        q: a :class:`ProductVQ`, :class:`ResidualVQ` or :class:`AdditiveVQ`.
        centroids: ``(nlist, D)`` coarse centroids, ``D == q.dim``.
        nprobe: lists scanned per query by default.

    Returns:
        ``faiss.IndexIVFPQ``, ``faiss.IndexIVFResidualQuantizer`` or
        ``faiss.IndexIVFLocalSearchQuantizer``, trained and empty.

    Raises:
        ImportError: faiss is not installed.
        TypeError: ``q`` is not a ProductVQ, ResidualVQ or AdditiveVQ.
        ValueError: ``q.codebook_size`` is not a power of two, ``centroids`` is not a finite
            ``(nlist, q.dim)`` array with ``nlist >= 1``, or ``nprobe`` is not in
            ``[1, nlist]``.

    Example:
        >>> pvq = ProductVQ(dim=8, codebook_size=16, num_codebooks=4)
        >>> index = ivf_index(pvq, torch.randn(4, 8), nprobe=2)
        >>> index.nlist, index.nprobe, index.by_residual
        (4, 2, False)
    """
    faiss = require_faiss()
    nbits = codebook_bits(q)
    c = centroids.detach().cpu().float().numpy()
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] != q.dim:
        raise ValueError(f"centroids must have shape (nlist, {q.dim}), got {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("centroids hold NaN or infinite values")
    nlist = c.shape[0]
    check_nprobe(nprobe, nlist)
    coarse = faiss.IndexFlatL2(q.dim)
    coarse.add(np.ascontiguousarray(c))
    if isinstance(q, ProductVQ):
        index = faiss.IndexIVFPQ(coarse, q.dim, nlist, q.num_codebooks, nbits)
    else:
        cls = faiss.IndexIVFResidualQuantizer if isinstance(q, ResidualVQ) \
            else faiss.IndexIVFLocalSearchQuantizer
        index = cls(coarse, q.dim, nlist, q.num_codebooks, nbits, faiss.METRIC_L2,
                    faiss.AdditiveQuantizer.ST_norm_float)
    index.by_residual = False
    export_codebooks(q, index)
    index.nprobe = nprobe
    return index


def add_to_lists(index: Any, vectors: Tensor, indices: Tensor) -> None:
    """Append ``vectors``, given with their vqkit ``indices``, to an IVF index of
    :func:`ivf_index`: each to the list of its nearest coarse centroid, as its packed indices.

    Shape:
        ``vectors`` ``(N, D)``; ``indices`` ``(N, M)`` int, ``quantizer.encode(vectors)``.

    Raises:
        ImportError: faiss is not installed.
        TypeError: ``index`` is not a FAISS IVF index.
        ValueError: ``index`` encodes residuals (``by_residual``), ``vectors`` is not
            ``(N, index.d)``, ``indices`` has another N, or as
            :func:`~vqkit.apps.ann.faiss_bridge.pack_indices`.
    """
    faiss = require_faiss()
    if not isinstance(index, faiss.IndexIVF):
        raise TypeError(f"index must be a FAISS IVF index, got {type(index).__name__}")
    if index.by_residual:
        raise ValueError("index encodes residuals to its coarse centroids (by_residual); "
                         "vqkit codes are codes of the raw vectors")
    x = np.ascontiguousarray(vectors.detach().cpu().float().numpy())
    if x.ndim != 2 or x.shape[1] != index.d:
        raise ValueError(f"vectors must have shape (N, {index.d}), got {x.shape}")
    if indices.shape[0] != x.shape[0]:
        raise ValueError(f"indices must have {x.shape[0]} rows (one per vector), "
                         f"got {indices.shape[0]}")
    fine = pack_indices(index, indices)
    lists = index.quantizer.assign(x, 1)[:, 0]
    # IndexIVF's sa code: the list number, little endian in coarse_code_size() bytes, then
    # the fine code (Level1Quantizer::encode_listno).
    prefix = lists.astype("<i8").view(np.uint8).reshape(-1, 8)[:, : index.coarse_code_size()]
    index.add_sa_codes(np.ascontiguousarray(np.concatenate([prefix, fine], axis=1)))


def probe_params(index: Any, nprobe: int) -> Any:
    """FAISS search parameters that scan ``nprobe`` lists of IVF ``index`` (instead of the
    ``nprobe`` stored in it), for :func:`~vqkit.apps.ann.faiss_bridge.search`.

    Raises:
        ImportError: faiss is not installed.
        ValueError: ``index`` is not an IVF index, or ``nprobe`` is not in ``[1, nlist]``.
    """
    faiss = require_faiss()
    if not isinstance(index, faiss.IndexIVF):
        raise ValueError(f"nprobe applies to IVF indexes, not to a flat "
                         f"{type(index).__name__}")
    return faiss.SearchParametersIVF(nprobe=check_nprobe(nprobe, index.nlist))
