"""ANN data: train / database / query rows of GloVe or Fashion-MNIST, raw, in the standard
protocol of ANN benchmarks.

- ``"glove"``: GloVe 6B 50-d ([pennington2014glove]), raw vectors, L2. The queries are random
  rows of the 400,000; the database is drawn from the others (all 390,000 of them at the
  standard scale) and the training vectors from the database.
- ``"fashion"``: Fashion-MNIST 784-d ([xiao2017fashionmnist]), raw pixels 0..255 as float32,
  L2. The database is drawn from the 60,000 training images (all of them at the standard
  scale), the training vectors from the database, and the queries from the 10,000 test images.

So the training vectors are always database vectors (as in ann-benchmarks and the FAISS
benchmarks), and the queries are never seen in training. Nothing is downloaded: the loaders
read installed packages.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _raw(name: str) -> tuple[Tensor, Tensor | None]:
    """The rows the database and the queries come from (``None``: the same rows)."""
    from ...data.named import NAMED

    if name == "glove":
        return torch.from_numpy(NAMED["glove-6b-50d"]()), None
    if name == "fashion":
        return (torch.from_numpy(NAMED["fashion-mnist-train"]()),
                torch.from_numpy(NAMED["fashion-mnist-test"]()))
    raise ValueError(f"name must be one of {DATASETS}, got {name!r}")


def load_split(name: str, split: Split, *, generator: torch.Generator) -> AnnData:
    """Random database, training (a subset of the database) and query rows of data set
    ``name``, as the module docstring describes.

    Args:
        name: ``"glove"`` or ``"fashion"``.
        split: the sizes (``n_train <= n_database``).
        generator: chooses the rows.

    Returns:
        float32 ``(n, D)`` splits: D = 50 for GloVe, 784 for Fashion-MNIST (pixels 0..255).

    Raises:
        ImportError / MissingDataError: the data package is not installed (the message names it).
        ValueError: ``name`` is not one of :data:`DATASETS`, or the data set has fewer rows
            than ``split`` requests.
    """
    base, test = _raw(name)
    if test is None:  # GloVe: queries and database from the same rows, disjoint
        qu, db = _pick(len(base), [split.n_queries, split.n_database], generator, name)
        queries = base[qu]
    else:
        (db,) = _pick(len(base), [split.n_database], generator, f"{name} train")
        (qu,) = _pick(len(test), [split.n_queries], generator, f"{name} test")
        queries = test[qu]
    database = base[db]
    (tr,) = _pick(len(database), [split.n_train], generator, f"{name} database")
    return AnnData(name, database[tr].clone(), database.clone(), queries.clone())


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
