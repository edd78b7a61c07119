"""The run behind ``vqkit fit``: its settings become a :class:`Schedule` and a
:class:`Trainer` on random rows of this rank's vectors (the CLI parses, this module trains).

``settings`` is the plain dict the CLI merges from its options (stored in checkpoints as
``fit``): ``steps, batch, lr, replace_every, replace_threshold, log_every, seed, init,
init_samples, codebook_size, initial_size, expand_every`` are read here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch

from .. import distributed
from . import ddp
from .checkpoint import Checkpoint
from .loop import Progress, Trainer, rows_trainer
from .schedule import Growth, Replacement, Schedule
from .seed import generator, seed_global

logger = logging.getLogger(__name__)

#: The loop's settings, recorded in checkpoints under ``fit["loop"]``.
LOOP_KEYS = ("steps", "batch", "lr", "replace_every", "replace_threshold", "log_every", "seed")


def growth_stages(initial_size: int, codebook_size: int) -> int:
    """How many times ``initial_size`` corner points can double within ``codebook_size``.

    Example:
        >>> growth_stages(4, 32), growth_stages(3, 32), growth_stages(32, 32)
        (3, 3, 0)
    """
    stages, k = 0, int(initial_size)
    while 2 * k <= codebook_size:
        k, stages = 2 * k, stages + 1
    return stages


def fit_schedule(settings: Mapping[str, Any]) -> Schedule:
    """The :class:`Schedule` of a ``vqkit fit`` run: constant lr, replacement every
    ``replace_every`` steps to the end, SFVQ growth every ``expand_every`` steps until the
    corner points reach ``codebook_size``.

    Example:
        >>> s = fit_schedule({"steps": 100, "lr": 1e-3, "replace_every": 0,
        ...                   "replace_threshold": 0.01, "log_every": 10, "expand_every": 30,
        ...                   "initial_size": 4, "codebook_size": 16})
        >>> s.boundaries()
        (30, 60)
    """
    growth = None
    if settings.get("expand_every"):
        initial = settings.get("initial_size") or settings["codebook_size"]
        growth = Growth(int(settings["expand_every"]),
                        growth_stages(initial, int(settings["codebook_size"])))
    return Schedule(
        steps=int(settings["steps"]), lr=settings["lr"], log_every=int(settings["log_every"]),
        replacement=Replacement(int(settings["replace_every"]), None,
                                settings["replace_threshold"]),
        growth=growth,
    )


def fit_trainer(
    quantizer: Any,
    data: torch.Tensor,
    settings: Mapping[str, Any],
    *,
    device: torch.device,
    checkpoint: Checkpoint | None = None,
    progress: Progress | None = None,
    init_progress: Progress | None = None,
) -> Trainer:
    """The Trainer of a ``vqkit fit`` run on this rank's shard of ``data``, ready to run.

    A new run initialises the codebooks (k-means on up to ``init_samples`` vectors over all
    ranks, or as constructed), makes all ranks agree and seeds the global generator; a resumed
    run continues from ``checkpoint``.

    Args:
        quantizer: the quantizer to train, on ``device`` (the checkpoint's when resuming).
        data: ``(N, D)`` vectors of all ranks (each rank takes its even shard).
        settings: the run's settings (see the module docstring).
        device: where training runs.
        checkpoint: the run to continue, or None.
        progress: ``progress(done, total, info)`` callback of the training steps, or None.
        init_progress: ``progress(done, total, info)`` callback of the codebook
            initialisation (k-means; see :meth:`vqkit.quantizers.Quantizer.init_codebook_`),
            or None.

    Raises:
        ValueError: ``data`` is empty, or the checkpoint does not match the Trainer.
    """
    rank, world = distributed.rank(), distributed.world_size()
    local = data[ddp.shard(data.shape[0], even=True)]
    seed = settings["seed"]
    trainer = rows_trainer(quantizer, local, fit_schedule(settings), batch=int(settings["batch"]),
                           seed=seed, device=device, progress=progress)
    if checkpoint is not None:
        trainer.restore(checkpoint)
        return trainer
    if settings["init"] == "kmeans" and not quantizer.initialises_from_data:
        logger.warning("fit: %s has no data-driven initialisation; --init kmeans skipped",
                       type(quantizer).__name__)
    elif settings["init"] == "kmeans":
        g = generator(seed, "init-samples", rank)
        take = min(local.shape[0], max(1, settings["init_samples"] // world))
        rows = local[torch.randperm(local.shape[0], generator=g)[:take]].to(device)
        quantizer.init_codebook_(rows, generator=generator(seed, "kmeans"),
                                 progress=init_progress)
    ddp.broadcast_state_(quantizer)
    seed_global(seed, "train", rank)
    return trainer


def loop_record(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The loop's settings as checkpoints record them (``fit["loop"]``)."""
    return {k: settings[k] for k in LOOP_KEYS}
