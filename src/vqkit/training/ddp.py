"""Set-up of data-parallel training from torchrun's environment, and the helpers a loop needs.

``torchrun --nproc_per_node N script.py`` starts N processes and gives each ``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. :func:`setup_from_env` reads them
and initialises the default process group (gloo on CPU, nccl on GPU); run without torchrun (or
with ``WORLD_SIZE=1``) it is a no-op and returns a single-process :class:`DistInfo`, so the same
training script runs both ways.

What the quantizers synchronise by themselves (EMA statistics, dead-code replacement, k-means
initialisation) is decided at call time by :mod:`vqkit.distributed`; this module only starts
the processes' group, shards the data, and wraps the model (see ``docs/distributed.md``).

A typical loop::

    info = setup_from_env()
    model = wrap(model.to(info.device), info)      # DDP for gradient-trained parameters
    part = shard(len(dataset), even=True)          # the same number of steps on every rank
    ...
    if is_main_process():
        save(...)
    cleanup()
"""

from __future__ import annotations

import gc
import inspect
import logging
import os
import sys
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from .. import distributed

log = logging.getLogger(__name__)

#: Environment variables torchrun sets and :func:`setup_from_env` reads.
ENV_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
BACKENDS = ("gloo", "nccl")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank among ``world_size`` and the device it computes on.

    Example:
        >>> info = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
        >>> info.is_main, info.is_distributed
        (True, False)
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on rank 0, the rank that reads input files, logs and writes outputs."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from None


def _pick_device(device: str | torch.device | None, local_rank: int) -> torch.device:
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", local_rank)
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup_from_env(
    *,
    backend: str | None = None,
    device: str | torch.device | None = None,
    timeout: timedelta = timedelta(minutes=10),
) -> DistInfo:
    """Initialise the default process group from torchrun's environment variables.

    With ``WORLD_SIZE`` unset or 1 nothing is initialised and the single-process
    ``DistInfo(0, 1, 0, device)`` is returned. Calling it again once the group exists returns
    the same information without re-initialising.

    Args:
        backend: ``"gloo"`` or ``"nccl"``; default nccl when the device is a GPU, else gloo.
        device: ``"cpu"``, ``"cuda"`` (this process's ``cuda:LOCAL_RANK``) or a device;
            default the local GPU when there is one, else the CPU.
        timeout: how long a collective waits for the other ranks before failing (a rank that
            died or diverged then fails loudly instead of hanging forever).

    Returns:
        This process's :class:`DistInfo`.

    Raises:
        ValueError: an unknown ``backend``; ``WORLD_SIZE``, ``RANK`` or ``LOCAL_RANK`` not an
            integer, ``WORLD_SIZE < 1`` or ``RANK`` outside ``[0, WORLD_SIZE)``; a CUDA device
            without a GPU; ``MASTER_ADDR`` / ``MASTER_PORT`` unset with ``WORLD_SIZE > 1``; or
            ``"nccl"`` on a CPU device.
        RuntimeError: ``WORLD_SIZE > 1`` and this torch build has no ``torch.distributed``.

    Example:
        >>> import os
        >>> if "WORLD_SIZE" not in os.environ:
        ...     setup_from_env(device="cpu")
        DistInfo(rank=0, world_size=1, local_rank=0, device=device(type='cpu'))
    """
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or None, got {backend!r}")
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world < 1:
        raise ValueError(f"environment variable WORLD_SIZE must be >= 1, got {world}")
    if not 0 <= rank < world:
        raise ValueError(f"environment variable RANK must be in [0, {world}), got {rank}")
    dev = _pick_device(device, local_rank)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {dev} was asked for, but torch sees no CUDA GPU")
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev)
    if world == 1:
        return DistInfo(0, 1, 0, dev)
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:
        raise ValueError(
            f"WORLD_SIZE={world} but {', '.join(missing)} is not set; start the processes with "
            "torchrun, which sets them"
        )
    if backend is None:
        backend = "nccl" if dev.type == "cuda" else "gloo"
    if backend == "nccl" and dev.type != "cuda":
        raise ValueError(f"backend 'nccl' needs a CUDA device, got device {dev}")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world,
                            timeout=timeout)
    log.info("rank %d of %d initialised (%s on %s)", rank, world, backend, dev)
    return DistInfo(rank, world, local_rank, dev)


def is_main_process() -> bool:
    """True on rank 0 or in a single process (decided at call time).

    Example:
        >>> is_main_process()
        True
    """
    return distributed.rank() == 0


def shard(n: int, *, even: bool = False, rank: int | None = None,
          world_size: int | None = None) -> slice:
    """This rank's contiguous part of ``n`` items.

    The parts are in rank order, cover ``range(n)`` and differ in size by at most one. With
    ``even=True`` the last ``n % world_size`` items are dropped so every rank gets exactly
    ``n // world_size``: use it for training data, because ranks that run different numbers of
    DDP steps wait for each other forever.

    Args:
        n: number of items.
        even: drop the remainder so all parts have the same size.
        rank, world_size: default: this process's (1 and 0 without a process group).

    Raises:
        ValueError: ``n`` is not an int ``>= 0``, ``world_size < 1`` or ``rank`` is not in
            ``[0, world_size)``.

    Example:
        >>> [shard(10, rank=r, world_size=3) for r in range(3)]
        [slice(0, 4, None), slice(4, 7, None), slice(7, 10, None)]
        >>> [shard(10, even=True, rank=r, world_size=3) for r in range(3)]
        [slice(0, 3, None), slice(3, 6, None), slice(6, 9, None)]
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    world = distributed.world_size() if world_size is None else int(world_size)
    r = distributed.rank() if rank is None else int(rank)
    if world < 1:
        raise ValueError(f"world_size must be >= 1, got {world}")
    if not 0 <= r < world:
        raise ValueError(f"rank must be in [0, {world}), got {r}")
    base, extra = divmod(n, world)
    if even:
        return slice(r * base, (r + 1) * base)
    start = r * base + min(r, extra)
    return slice(start, start + base + (1 if r < extra else 0))


@torch.no_grad()
def broadcast_state_(module: nn.Module, src: int = 0) -> nn.Module:
    """Overwrite every parameter and buffer of ``module`` with rank ``src``'s (no-op alone).

    Use it on models that :func:`wrap` does not put into DDP (no gradient-trained parameter,
    e.g. an EMA-only quantizer), whose random initial codebooks otherwise differ per rank.

    Example:
        >>> broadcast_state_(nn.Linear(2, 2)).in_features
        2
    """
    if distributed.is_distributed():
        for tensor in list(module.parameters()) + list(module.buffers()):
            distributed.broadcast_(tensor.data, src=src)
    return module


def wrap(
    model: nn.Module,
    info: DistInfo | None = None,
    *,
    find_unused_parameters: bool = False,
) -> nn.Module:
    """Wrap ``model`` in DistributedDataParallel when there is more than one rank.

    Parameters and buffers are first broadcast from rank 0 (:func:`broadcast_state_`), so
    random initial codebooks agree even when the ranks were seeded differently. After that,
    buffers are **not** re-broadcast at every forward: the usage counters are per rank by
    design (dead-code replacement sums them over ranks), and EMA statistics are already
    identical because they are all-reduced. (DDP's default re-broadcasts rank 0's buffers in
    every forward, which would overwrite the other ranks' usage counters; its
    ``broadcast_buffers=False`` also skips the initial broadcast of the buffers, so an EMA
    codebook would keep each rank's random start.) A model without gradient-trained
    parameters is returned unwrapped after :func:`broadcast_state_`; so is any model in a
    single process. Reach the quantizer's methods through ``unwrap(model)``.

    Args:
        model: the model, already on ``info.device``.
        info: from :func:`setup_from_env` (default: read the current process group).
        find_unused_parameters: set it when some parameters get no gradient in a step
            (quantizer dropout in a residual quantizer, SFVQ before growth).

    Example:
        >>> m = nn.Linear(2, 2)
        >>> wrap(m) is m   # one process: unchanged
        True
    """
    if not distributed.is_distributed():
        return model
    broadcast_state_(model)
    if not any(p.requires_grad for p in model.parameters()):
        return model
    device = info.device if info is not None else next(model.parameters()).device
    ids = [device.index] if device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel
    # torch >= 2.13 renamed broadcast_buffers (deprecated) to forward_sync_buffers.
    no_buffer_sync = (
        {"forward_sync_buffers": False}
        if "forward_sync_buffers" in inspect.signature(ddp.__init__).parameters
        else {"broadcast_buffers": False}
    )
    return ddp(model, device_ids=ids, find_unused_parameters=find_unused_parameters,
               **no_buffer_sync)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (``model`` itself when it is not wrapped).

    Example:
        >>> m = nn.Linear(2, 2)
        >>> unwrap(m) is m
        True
    """
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if distributed.is_distributed():
        dist.barrier()


def cleanup(*, wait: bool | None = None) -> None:
    """Destroy the default process group if one exists (safe to call in any process).

    Args:
        wait: first wait for every rank (a barrier), so no rank tears the group down while
            another still uses it. Default: wait unless an exception is propagating (called
            from a ``finally`` block after a failure on this rank, a barrier could only pair
            with another rank's unrelated collective).

    Example:
        >>> cleanup()
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if wait is None:
        wait = sys.exc_info()[0] is None
    if wait and dist.get_world_size() > 1:
        dist.barrier()
    # A DDP wrapper left in a reference cycle would keep the group's C++ object (and gloo's worker
    # threads) alive past destroy_process_group(); torn down during interpreter finalisation
    # they may abort the process ("terminate called without an active exception") after all
    # work was done. Collect such cycles while the interpreter is still whole.
    gc.collect()
    dist.destroy_process_group()
