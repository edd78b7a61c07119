"""Fit a space-filling VQ to data with the paper's growth schedule ([vali2023sfvqcode]).

Core code: progress is reported through a callback (``progress(done, total, info)``), so
this module imports torch only; :func:`vqkit.progress.bar_callback` turns a tqdm bar into
such a callback.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..estimators import Estimator
from .curve import Projection
from .estimators import MSEFit
from .quantizer import SpaceFillingVQ

log = logging.getLogger(__name__)


def _check(data: Tensor, bits: int, epochs_per_stage: int, batch_size: int, lr: float) -> None:
    if not isinstance(data, Tensor) or data.dim() != 2 or not data.is_floating_point():
        got = getattr(data, "shape", type(data).__name__)
        raise ValueError(f"data must be a floating (N, D) tensor, got {got}")
    if not bool(torch.isfinite(data).all()):
        raise ValueError("data contains NaN or Inf values")
    if not isinstance(bits, int) or bits < 2:
        raise ValueError(f"bits must be an int >= 2, got {bits!r}")
    if data.shape[0] < 2**bits:
        raise ValueError(
            f"data must hold at least 2**bits = {2**bits} vectors, got {data.shape[0]}"
        )
    if epochs_per_stage < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(
            f"epochs_per_stage, batch_size and lr must be positive, got {epochs_per_stage}, "
            f"{batch_size}, {lr}"
        )


def fit_space_filling(
    data: Tensor,
    bits: int,
    *,
    epochs_per_stage: int = 5,
    batch_size: int = 64,
    lr: float = 1e-3,
    estimator: Estimator | None = None,
    projection: Projection | None = None,
    generator: torch.Generator | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    on_stage_end: Callable[[int, SpaceFillingVQ], None] | None = None,
) -> SpaceFillingVQ:
    """Train a ``2**bits``-point SFVQ on ``data`` by the paper's schedule
    (``train.py`` of [vali2023sfvqcode]).

    Start with 4 corner points (means of norm-sorted chunks of ``data``); for bitrate
    2, 3, ..., ``bits``: double the points with :meth:`SpaceFillingVQ.expand_` (from bitrate
    3 on), then train ``epochs_per_stage`` epochs over ``data`` in fixed order with a fresh
    Adam (``lr``) and MultiStepLR (milestones at int(0.6 E) and int(0.8 E), gamma 0.5).

    Args:
        data: ``(N, D)`` training vectors, N >= 2**bits.
        bits: B; the result has ``2**bits`` corner points.
        epochs_per_stage: E (5 in the paper's code).
        batch_size: 64 in the paper's code.
        lr: Adam learning rate (1e-3).
        estimator: training estimator (default :class:`~vqkit.MSEFit`, the stand-alone loss).
        projection: the returned quantizer's inference projection (default the paper's rule).
        generator: source of the dither.
        progress: called as ``progress(batches_done, batches_total, info)`` after every batch
            (``info``: current ``K`` and, at the end of an epoch, its mean ``loss``); e.g.
            :func:`vqkit.progress.bar_callback` for a tqdm bar. None: silent.
        on_stage_end: called as ``on_stage_end(stage_bits, quantizer)`` after each stage, with
            the quantizer in eval mode: the curve of every bitrate up to ``bits`` from one run
            (the schedule to b bits is the first b - 1 stages of the schedule to ``bits``).

    Returns:
        The trained :class:`~vqkit.SpaceFillingVQ`, in eval mode, on ``data``'s device.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(512, 8, generator=g)
        >>> sf = fit_space_filling(x, 3, epochs_per_stage=1, generator=g)
        >>> sf.codebook_size, sf.training
        (8, False)
    """
    _check(data, bits, epochs_per_stage, batch_size, lr)
    estimator = MSEFit() if estimator is None else estimator
    sf = SpaceFillingVQ(
        data.shape[1], 2**bits, estimator=estimator, projection=projection,
        initial_size=4 if bits >= 2 else 2**bits, generator=generator,
    ).to(data.device)
    sf.init_codebook_(data)
    n_batches = math.ceil(data.shape[0] / batch_size)
    milestones = [int(0.6 * epochs_per_stage), int(0.8 * epochs_per_stage)]
    total = (bits - 1) * epochs_per_stage * n_batches
    done = 0
    sf.train()
    for stage_bits in range(2, bits + 1):
        if stage_bits > 2:
            sf.expand_()
        opt = torch.optim.Adam(sf.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.5)
        for _epoch in range(epochs_per_stage):
            running = 0.0
            for start in range(0, data.shape[0], batch_size):
                out = sf(data[start : start + batch_size])
                opt.zero_grad(set_to_none=True)
                out.loss.backward()
                opt.step()
                running += float(out.loss.detach())
                done += 1
                if progress is not None and done % n_batches:
                    progress(done, total, {"K": sf.codebook_size})
            sched.step()
            if progress is not None:
                progress(done, total, {"K": sf.codebook_size, "loss": running / n_batches})
        log.info("SFVQ stage %d bits: mean training loss %.6g", stage_bits, running / n_batches)
        if on_stage_end is not None:
            on_stage_end(stage_bits, sf.eval())
            sf.train()
    return sf.eval()
