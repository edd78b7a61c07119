"""ANN evaluation: exact ground truth, Recall@T of asymmetric search, MSE, timings.

Recall@T ([vali2023rpavq] Fig. 5; the SIFT1M protocol of [jegou2011pq]) is the fraction of queries
whose true nearest neighbour (exact, brute force over the raw database) is among the top T
results of the asymmetric-distance search (raw query against the decoded database).
Recall@10 is "R@10" of the FAISS benchmarks (1-recall at 10).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch  # noqa: F401  (the doctests use it)
from torch import Tensor

from ...functional.search import nearest_neighbor


def exact_nearest(queries: Tensor, database: Tensor) -> Tensor:
    """Index of the exact nearest database vector of each query (squared L2, chunked, fp32).

    Shape:
        queries ``(Q, D)``, database ``(N, D)``; returns ``(Q,)`` int64.

    Raises:
        ValueError: ``queries`` or ``database`` is not 2-D, or their widths differ.

    Example:
        >>> db = torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
        >>> exact_nearest(torch.tensor([[0.9, 0.8], [4.0, 4.5]]), db).tolist()
        [1, 2]
    """
    if queries.dim() != 2 or database.dim() != 2 or queries.shape[1] != database.shape[1]:
        raise ValueError(
            f"queries and database must be (Q, D) and (N, D), got {tuple(queries.shape)} and "
            f"{tuple(database.shape)}"
        )
    return nearest_neighbor(queries, database)[1][:, 0]


def adc_search(queries: Tensor, decoded: Tensor, k: int) -> Tensor:
    """Top-``k`` database rows by asymmetric distance (query vs decoded vector), ``(Q, k)``.

    The pure-torch reference of what a FAISS index returns; ties go to the lowest index.
    """
    return nearest_neighbor(queries, decoded, k)[1]


def recall_curve(found: Tensor, truth: Tensor) -> list[float]:
    """Recall@T for T = 1 .. ``found.shape[1]``.

    Args:
        found: ``(Q, T_max)`` ranked search results (database indices; -1 = none).
        truth: ``(Q,)`` index of each query's true nearest neighbour.

    Returns:
        ``T_max`` floats; entry ``T - 1`` is the fraction of queries whose true neighbour is
        in the first T results.

    Raises:
        ValueError: ``found`` is not 2-D, ``truth`` is not 1-D, or their numbers of queries
            differ.

    Example:
        >>> found = torch.tensor([[3, 1, 2], [0, 2, 1], [5, 6, 7]])
        >>> [round(r, 3) for r in recall_curve(found, torch.tensor([3, 1, 4]))]
        [0.333, 0.333, 0.667]
    """
    if found.dim() != 2 or truth.dim() != 1 or found.shape[0] != truth.shape[0]:
        raise ValueError(
            f"found must be (Q, T) and truth (Q,), got {tuple(found.shape)} and "
            f"{tuple(truth.shape)}"
        )
    hit = found.long() == truth.long()[:, None]
    return hit.cumsum(dim=1).clamp_max(1).float().mean(dim=0).tolist()


def squared_error(x: Tensor, x_hat: Tensor) -> float:
    """MSE as the thesis defines it (eq. 2.4): mean over vectors of ``||x - x_hat||^2``.

    Shape:
        ``x`` and ``x_hat`` ``(..., D)``; the squared error is summed over D (not averaged).

    Raises:
        ValueError: ``x`` and ``x_hat`` have different shapes.
    """
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have equal shapes, got {tuple(x.shape)} and "
                         f"{tuple(x_hat.shape)}")
    return float((x.float() - x_hat.float()).pow(2).sum(dim=-1).mean())


@contextmanager
def timed(into: dict[str, float], key: str) -> Iterator[None]:
    """Add the wall time of the ``with`` block to ``into[key]`` and the CPU time of this
    process (all threads) to ``into[key + "_cpu"]`` (seconds).

    On a shared machine the wall time depends on the other load, the CPU time much less.

    Example:
        >>> t = {}
        >>> with timed(t, "work"):
        ...     _ = sum(range(10))
        >>> t["work"] >= 0 and t["work_cpu"] >= 0
        True
    """
    start, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        into[key] = into.get(key, 0.0) + time.perf_counter() - start
        into[f"{key}_cpu"] = into.get(f"{key}_cpu", 0.0) + time.process_time() - cpu


def recall_at(curve: list[float], t: int) -> float:
    """Recall@``t`` read from a :func:`recall_curve` list (1-based ``t``).

    Raises:
        ValueError: ``t`` is not in ``[1, len(curve)]``.
    """
    if not 1 <= t <= len(curve):
        raise ValueError(f"t must be in [1, {len(curve)}], got {t}")
    return curve[t - 1]


__all__ = ["adc_search", "exact_nearest", "recall_at", "recall_curve", "squared_error", "timed"]
