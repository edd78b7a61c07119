"""Training of the envelope codec: Adam on spectral bits over random batches of frames,
through :class:`vqkit.training.loop.Trainer`; one generator draws the k-means sample, the
batches and the dead-code replacements."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ...progress import bar_callback
from ...quantizers.base import Quantizer
from ...training.batches import RandomRows
from ...training.loop import Trainer
from ...training.objective import Objective, StepResult
from ...training.schedule import Replacement, Schedule
from .model import EnvelopeModel


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`train`.

    Args:
        steps: optimiser steps.
        batch_size: frames per step.
        lr: Adam learning rate of every parameter (A, B, codebooks, gamma).
        replace_every: call the quantizer's ``replace_dead_codes_`` every this many steps
            (0 = never; a no-op for quantizers without usage counts), stopping 20 % before
            the end.
        kmeans_init: initialise codebooks by k-means on the standardised envelopes first.
    """

    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    replace_every: int = 200
    kmeans_init: bool = True


@dataclass
class TrainLog:
    """Mean loss (bits per frame) every ``every`` steps."""

    every: int
    bits: list[float] = field(default_factory=list)


def envelope_bits(model: EnvelopeModel, batch: Tensor) -> StepResult:
    """The envelope model's loss (spectral bits per frame + the quantizer's auxiliary loss);
    the bits are the ``bits`` meter.

    Args:
        model: the envelope model, in training mode.
        batch: ``(B, N)`` MDCT frames.
    """
    out = model(batch)
    return StepResult(out.loss, indices=out.indices, metrics={"bits": float(out.bits.detach())})


def vector_error(quantizer: Quantizer, x: Tensor) -> StepResult:
    """``mean ||x - quantized||^2 + out.loss`` of a quantizer alone; the squared error (summed
    over the vector, averaged over the batch, float32 as the loss) is the ``bits`` meter, the
    quantity :class:`TrainLog` keeps.

    Args:
        quantizer: in training mode.
        x: ``(B, D)`` vectors.
    """
    out = quantizer(x)
    mse = (out.quantized - x).pow(2).sum(-1).mean()
    return StepResult(mse + out.loss, indices=out.indices, metrics={"bits": float(mse.detach())})


def _kmeans_init_(quantizer: Quantizer, vectors: Tensor, generator: torch.Generator) -> None:
    sample = vectors[torch.randperm(vectors.shape[0], generator=generator)[:20000]]
    quantizer.init_codebook_(sample, generator=generator)


def _fit(model: torch.nn.Module, quantizer: Quantizer, data: Tensor, objective: Objective,
         config: TrainConfig, generator: torch.Generator, desc: str) -> TrainLog:
    """Train ``model`` on random batches of ``data`` (the ``bits`` meter every
    ``max(1, steps // 20)`` steps); replacement stops at 80 % of the steps."""
    log = TrainLog(every=max(1, config.steps // 20))
    if config.steps == 0:  # k-means only
        model.eval()
        return log
    # Replacement at the steps s <= 0.8 steps.
    replacement = Replacement(config.replace_every, math.floor(0.8 * config.steps))
    schedule = Schedule(steps=config.steps, lr=config.lr, replacement=replacement,
                        log_every=log.every)
    trainer = Trainer(model, RandomRows(data, config.batch_size, generator), schedule,
                      objective=objective, quantizer=quantizer, maintenance=generator,
                      progress=bar_callback(desc, unit="step"))
    trainer.run()
    log.bits = [row["bits"] for row in trainer.meters.history if row["step"] % log.every == 0]
    model.eval()
    return log


def train(
    model: EnvelopeModel, coefficients: Tensor, config: TrainConfig, *,
    generator: torch.Generator,
) -> TrainLog:
    """Train ``model`` on MDCT frames ``(F, N)``; returns the loss curve.

    Example:
        >>> from vqkit import VectorQuantizer
        >>> g = torch.Generator().manual_seed(0)
        >>> frames = torch.randn(512, 160, generator=g) * torch.linspace(1, 0.01, 160)
        >>> model = EnvelopeModel(VectorQuantizer(16, 8))
        >>> log = train(model, frames, TrainConfig(steps=40, batch_size=64), generator=g)
        >>> log.bits[-1] < log.bits[0]
        True

    Raises:
        ValueError: ``coefficients`` is not a non-empty ``(F, N)`` tensor.
    """
    if coefficients.dim() != 2 or coefficients.shape[0] == 0:
        raise ValueError(f"coefficients must be a non-empty (F, N) tensor, got "
                         f"{tuple(coefficients.shape)}")
    z = model.set_normalisation_(coefficients)
    if config.kmeans_init:
        _kmeans_init_(model.quantizer, z, generator)
    return _fit(model, model.quantizer, coefficients, envelope_bits, config, generator,
                "training envelope")


def train_vectors(
    quantizer: Quantizer, vectors: Tensor, config: TrainConfig, *,
    generator: torch.Generator,
) -> TrainLog:
    """Train a quantizer alone on ``vectors (N, D)`` to minimise ``||x - quantized||^2``
    (:class:`TrainLog` then holds that squared error, not bits).

    Used for the WORLD front end, whose coded envelope is fixed (no A, B to learn).
    """
    if config.kmeans_init:
        _kmeans_init_(quantizer, vectors, generator)
    return _fit(quantizer, quantizer, vectors, vector_error, config, generator, "training VQ")
