"""ANN data: disjoint train / database / query rows of GloVe or Fashion-MNIST.

- ``"glove"``: GloVe 6B 50-d ([pennington2014glove]), rows scaled to unit norm so L2 search is
  cosine search (ann-benchmarks' ``glove-50-angular``); the three splits are disjoint random rows
  of the 400,000.
- ``"fashion"``: Fashion-MNIST 784-d ([xiao2017fashionmnist]), pixels scaled to [0, 1] (the
  ranking under L2 is that of the raw bytes); training and database rows come from the 60,000
  training images, queries from the 10,000 test images (ann-benchmarks'
  ``fashion-mnist-784-euclidean``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .config import Split

DATASETS = ("glove", "fashion")


@dataclass(frozen=True)
class AnnData:
    """The three splits, float32 ``(n, D)`` each."""

    name: str
    train: Tensor
    database: Tensor
    queries: Tensor

    @property
    def dim(self) -> int:
        return self.train.shape[1]


def _pick(n: int, counts: list[int], generator: torch.Generator, name: str) -> list[Tensor]:
    if sum(counts) > n:
        raise ValueError(f"{name} has {n} rows, fewer than the {sum(counts)} requested")
    perm = torch.randperm(n, generator=generator)
    out, start = [], 0
    for c in counts:
        out.append(perm[start : start + c].sort().values)
        start += c
    return out


def load_split(name: str, split: Split, *, generator: torch.Generator) -> AnnData:
    """Disjoint random train / database / query rows of data set ``name``.

    Args:
        name: ``"glove"`` or ``"fashion"``.
        split: the sizes.
        generator: chooses the rows.

    Returns:
        float32 ``(n, D)`` splits: D = 50 for GloVe (unit-norm rows), 784 for Fashion-MNIST
        (pixels in [0, 1]).

    Raises:
        ImportError / MissingDataError: the data package is not installed (the message names it).
        ValueError: ``name`` is not one of :data:`DATASETS`, or the data set has fewer rows
            than ``split`` requests.
    """
    if name == "glove":
        from ...data.glove import load_glove_vectors, normalize_rows

        x = load_glove_vectors(mmap=True)
        parts = _pick(len(x), [split.n_train, split.n_database, split.n_queries],
                      generator, name)
        tr, db, qu = (torch.from_numpy(normalize_rows(x[p.numpy()])) for p in parts)
        return AnnData(name, tr, db, qu)
    if name == "fashion":
        from ...data.fashion_mnist import load_fashion_mnist

        train_imgs, _ = load_fashion_mnist("train")
        test_imgs, _ = load_fashion_mnist("test")
        xt = torch.from_numpy(train_imgs.reshape(len(train_imgs), -1).astype(np.float32) / 255.0)
        xq = torch.from_numpy(test_imgs.reshape(len(test_imgs), -1).astype(np.float32) / 255.0)
        tr, db = _pick(len(xt), [split.n_train, split.n_database], generator, "fashion train")
        (qu,) = _pick(len(xq), [split.n_queries], generator, "fashion test")
        return AnnData(name, xt[tr].clone(), xt[db].clone(), xq[qu].clone())
    raise ValueError(f"name must be one of {DATASETS}, got {name!r}")


def pad_to(x: Tensor, dim: int) -> Tensor:
    """Append zero columns up to ``dim`` (L2 distances are unchanged).

    Product quantizers need ``D % M == 0``; GloVe's 50 dimensions are padded to 56 for M = 4, 8.

    Shape:
        ``x`` ``(N, D)``; returns ``(N, dim)``.

    Raises:
        ValueError: ``dim`` is smaller than ``x``'s width ``D``.

    Example:
        >>> pad_to(torch.ones(2, 3), 4).tolist()
        [[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0]]
    """
    if dim < x.shape[1]:
        raise ValueError(f"dim must be >= {x.shape[1]} (the current width), got {dim}")
    return torch.nn.functional.pad(x, (0, dim - x.shape[1]))
