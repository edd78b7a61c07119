"""torch.distributed helpers, decided at call time.

A model built before ``init_process_group`` still synchronises: nothing here caches whether
the process group exists (vector-quantize-pytorch [lucidrains2026vqpytorch] caches it at
construction, in ``is_distributed()``, and so silently never syncs).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

_OPS = {"sum": "SUM", "max": "MAX", "min": "MIN"}


def is_distributed() -> bool:
    """True when a default process group with more than one rank exists right now."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of ranks (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def _on_backend_device(tensor: Tensor) -> Tensor:
    """``tensor``, or a contiguous working copy that the caller copies back: when ``tensor``
    is not contiguous, or lives on the CPU under nccl (which reduces GPU tensors only, while
    counters and metrics are often CPU tensors)."""
    if tensor.device.type == "cpu" and dist.get_backend() == "nccl":
        return tensor.to(torch.device("cuda", torch.cuda.current_device())).contiguous()
    return tensor.contiguous()


def all_reduce_(tensor: Tensor, op: str = "sum") -> Tensor:
    """All-reduce ``tensor`` in place across ranks (a no-op in a single process).

    Args:
        tensor: the local value; replaced by the reduction over ranks.
        op: ``"sum"``, ``"max"`` or ``"min"``.

    Returns:
        ``tensor`` itself, holding the reduction.

    Raises:
        ValueError: ``op`` is not ``"sum"``, ``"max"`` or ``"min"``.
    """
    if op not in _OPS:
        raise ValueError(f"op must be one of {sorted(_OPS)}, got {op!r}")
    if is_distributed():
        work = _on_backend_device(tensor)
        dist.all_reduce(work, op=getattr(dist.ReduceOp, _OPS[op]))
        if work is not tensor:
            tensor.copy_(work)
    return tensor


def broadcast_(tensor: Tensor, src: int = 0) -> Tensor:
    """Overwrite ``tensor`` on every rank with rank ``src``'s value (no-op in one process)."""
    if is_distributed():
        work = _on_backend_device(tensor)
        dist.broadcast(work, src=src)
        if work is not tensor:
            tensor.copy_(work)
    return tensor


def sum_over_ranks(tensor: Tensor) -> Tensor:
    """The sum of ``tensor`` over ranks, differentiable (``tensor`` itself in one process).

    The backward pass sums the ranks' gradients (``torch.distributed.nn``): for a loss that
    every rank computes alike from the global sum, that is what DDP's averaging of parameter
    gradients expects.
    """
    if not is_distributed():
        return tensor
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(tensor.contiguous())


def reducer() -> object | None:
    """The all-reduce to inject into pure functions (``None`` outside a process group)."""
    return all_reduce_ if is_distributed() else None


def same_on_all_ranks(tensor: Tensor) -> bool:
    """True when ``tensor`` is bit-identical on every rank (a check for tests and debugging)."""
    if not is_distributed():
        return True
    local = tensor.detach().double().reshape(-1)
    hi, lo = local.clone(), local.clone()
    all_reduce_(hi, "max")
    all_reduce_(lo, "min")
    return bool(torch.equal(hi, lo))
