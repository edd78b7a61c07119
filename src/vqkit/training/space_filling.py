"""Fit a space-filling VQ to data with the paper's growth schedule ([vali2023sfvqcode]),
through the one training loop: :class:`~vqkit.space_filling.growth.GrowthPlan` becomes a
:class:`~vqkit.training.schedule.Schedule` of fixed-order epochs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..estimators import Estimator
from ..space_filling import MSEFit, Projection, SpaceFillingVQ
from ..space_filling.growth import GrowthPlan
from .batches import Epochs
from .loop import Trainer
from .objective import StepResult
from .schedule import Growth, MultiStep, Schedule

log = logging.getLogger(__name__)


def _check(data: Tensor, plan: GrowthPlan, batch_size: int, lr: float) -> None:
    if not isinstance(data, Tensor) or data.dim() != 2 or not data.is_floating_point():
        got = getattr(data, "shape", type(data).__name__)
        raise ValueError(f"data must be a floating (N, D) tensor, got {got}")
    if not bool(torch.isfinite(data).all()):
        raise ValueError("data contains NaN or Inf values")
    if data.shape[0] < 2**plan.bits:
        raise ValueError(
            f"data must hold at least 2**bits = {2**plan.bits} vectors, got {data.shape[0]}"
        )
    if batch_size < 1 or not lr > 0:
        raise ValueError(f"batch_size and lr must be positive, got {batch_size}, {lr}")


def growth_schedule(plan: GrowthPlan, epoch_length: int, lr: float) -> Schedule:
    """The :class:`Schedule` of ``plan`` with ``epoch_length`` batches per epoch: one meter
    window per epoch, a fresh Adam (``lr``) and MultiStepLR per stage.

    Example:
        >>> s = growth_schedule(GrowthPlan(bits=3, epochs_per_stage=2), 10, 1e-3)
        >>> s.steps, s.boundaries(), s.lr_schedule.milestones
        (40, (20,), (1, 1))
    """
    stage = plan.epochs_per_stage * epoch_length
    return Schedule(
        steps=(plan.bits - 1) * stage, lr=lr,
        lr_schedule=MultiStep(plan.lr_milestones, plan.lr_gamma, per="epoch"),
        growth=Growth(every=stage, stages=plan.expansions), log_every=epoch_length,
    )


def _curve_objective(quantizer: SpaceFillingVQ, x: Tensor) -> StepResult:
    """The estimator's own loss (MSEFit: the stand-alone curve-fitting loss)."""
    return StepResult(quantizer(x).loss)


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

    Raises:
        ValueError: ``data`` not a finite floating ``(N, D)`` tensor with N >= 2**bits, bits
            below 2, or a non-positive ``epochs_per_stage``, ``batch_size`` or ``lr``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(512, 8, generator=g)
        >>> sf = fit_space_filling(x, 3, epochs_per_stage=1, generator=g)
        >>> sf.codebook_size, sf.training
        (8, False)
    """
    plan = GrowthPlan(bits, epochs_per_stage)
    _check(data, plan, batch_size, lr)
    sf = SpaceFillingVQ(
        data.shape[1], 2**bits, estimator=MSEFit() if estimator is None else estimator,
        projection=projection, initial_size=plan.initial_size, generator=generator,
    ).to(data.device)
    sf.init_codebook_(data)
    source = Epochs(data, batch_size)
    schedule = growth_schedule(plan, source.epoch_length, lr)

    def report(done: int, total: int, info: dict[str, Any]) -> None:
        progress(done, total, {"K": sf.codebook_size, **info})

    def stage_end(trainer: Trainer) -> None:
        stage_bits = sf.codebook_size.bit_length() - 1
        log.info("SFVQ stage %d bits: mean training loss %.6g", stage_bits,
                 trainer.meters.last()["loss"])
        if on_stage_end is not None:
            on_stage_end(stage_bits, sf.eval())

    trainer = Trainer(sf, source, schedule, objective=_curve_objective,
                      progress=None if progress is None else report)
    trainer.run(on_stage_end=stage_end)
    return sf.eval()
