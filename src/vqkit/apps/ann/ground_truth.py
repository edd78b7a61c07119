"""Brute-force ground truth of an ANN split, computed once and cached on disk.

The exact nearest neighbour of 10,000 queries over 390,000 GloVe vectors (or 60,000
Fashion-MNIST images) takes minutes on one core; the answer depends only on the queries and
the database, so it is cached under a key that fingerprints both (SHA-256 of their bytes and
shapes): other data or another split gets another file, never a stale answer. The cache lives
in ``$VQKIT_CACHE/ann-ground-truth`` (default ``~/.cache/vqkit``), outside ``results/``, and is
written atomically; an unreadable or foreign cache file is recomputed and rewritten.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ...io.atomic import atomic_write
from .evaluate import exact_nearest

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$VQKIT_CACHE/ann-ground-truth``, default ``~/.cache/vqkit/ann-ground-truth``."""
    root = Path(os.environ.get("VQKIT_CACHE", Path.home() / ".cache" / "vqkit"))
    return root / "ann-ground-truth"


def split_key(queries: Tensor, database: Tensor) -> str:
    """Hex SHA-256 of the shapes, dtypes and bytes of ``queries`` and ``database``.

    Example:
        >>> a, b = torch.zeros(2, 3), torch.ones(4, 3)
        >>> split_key(a, b) == split_key(a.clone(), b.clone()), split_key(a, b) == split_key(b, a)
        (True, False)
    """
    h = hashlib.sha256()
    for t in (queries, database):
        h.update(f"{tuple(t.shape)}{t.dtype};".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _read(path: Path, n_queries: int) -> Tensor | None:
    try:
        found = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        logger.warning("ignoring unreadable ground-truth cache %s: %s", path, err)
        return None
    if found.shape != (n_queries,) or found.dtype != np.int64:
        logger.warning("ignoring ground-truth cache %s of shape %s", path, found.shape)
        return None
    return torch.from_numpy(found)


def cached_nearest(queries: Tensor, database: Tensor, *, cache_dir: Path | None = None
                   ) -> Tensor:
    """The exact nearest database row of each query (:func:`.evaluate.exact_nearest`), read
    from the cache when a previous run computed it for the same data, else computed and
    cached.

    Args:
        queries: ``(Q, D)``.
        database: ``(N, D)``.
        cache_dir: where the cache files are (default :func:`default_cache_dir`).

    Returns:
        ``(Q,)`` int64 database indices.

    Raises:
        ValueError: as :func:`.evaluate.exact_nearest`.
        OSError: the cache folder cannot be created or written.
    """
    folder = default_cache_dir() if cache_dir is None else Path(cache_dir)
    path = folder / f"nearest-{split_key(queries, database)[:32]}.npy"
    if path.is_file():
        cached = _read(path, queries.shape[0])
        if cached is not None:
            logger.info("ground truth from the cache %s", path)
            return cached
    truth = exact_nearest(queries, database)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.save(buffer, truth.numpy().astype(np.int64), allow_pickle=False)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    logger.info("ground truth written to the cache %s", path)
    return truth
