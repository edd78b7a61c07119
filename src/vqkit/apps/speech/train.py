"""Training loop of the envelope codec: Adam on spectral bits over random batches of frames."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ...quantizers.base import Quantizer
from .model import EnvelopeModel

logger = logging.getLogger(__name__)


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
    """
    from ...progress import progress_bar

    if coefficients.dim() != 2 or coefficients.shape[0] == 0:
        raise ValueError(f"coefficients must be a non-empty (F, N) tensor, got "
                         f"{tuple(coefficients.shape)}")
    z = model.set_normalisation_(coefficients)
    if config.kmeans_init:
        sample = z[torch.randperm(z.shape[0], generator=generator)[:20000]]
        model.quantizer.init_codebook_(sample, generator=generator)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    log = TrainLog(every=max(1, config.steps // 20))
    running = 0.0
    model.train()
    quantizer = model.quantizer
    for step in progress_bar(range(1, config.steps + 1), desc="training envelope", leave=False):
        batch = coefficients[torch.randint(0, coefficients.shape[0], (config.batch_size,),
                                           generator=generator)]
        out = model(batch)
        if out.loss.requires_grad:  # a fixed scalar quantizer with fixed A, B learns nothing
            optimiser.zero_grad(set_to_none=True)
            out.loss.backward()
            optimiser.step()
        running += float(out.bits.detach())
        if step % log.every == 0:
            log.bits.append(running / log.every)
            running = 0.0
        if (config.replace_every and step % config.replace_every == 0
                and step <= 0.8 * config.steps):
            replaced = quantizer.replace_dead_codes_(generator=generator)
            logger.debug("step %d: replaced %s dead codes", step, replaced)
    model.eval()
    return log


def train_vectors(
    quantizer: Quantizer, vectors: Tensor, config: TrainConfig, *,
    generator: torch.Generator,
) -> TrainLog:
    """Train a quantizer alone on ``vectors (N, D)`` to minimise ``||x - quantized||^2``.

    Used for the WORLD front end, whose coded envelope is fixed (no A, B to learn).
    """
    from ...progress import progress_bar

    if config.kmeans_init:
        sample = vectors[torch.randperm(vectors.shape[0], generator=generator)[:20000]]
        quantizer.init_codebook_(sample, generator=generator)
    optimiser = torch.optim.Adam(quantizer.parameters(), lr=config.lr)
    log = TrainLog(every=max(1, config.steps // 20))
    running = 0.0
    quantizer.train()
    for step in progress_bar(range(1, config.steps + 1), desc="training VQ", leave=False):
        x = vectors[torch.randint(0, vectors.shape[0], (config.batch_size,), generator=generator)]
        out = quantizer(x)
        mse = (out.quantized - x).pow(2).sum(-1).mean()
        optimiser.zero_grad(set_to_none=True)
        (mse + out.loss).backward()
        optimiser.step()
        running += float(mse.detach())
        if step % log.every == 0:
            log.bits.append(running / log.every)
            running = 0.0
        if (config.replace_every and step % config.replace_every == 0
                and step <= 0.8 * config.steps):
            quantizer.replace_dead_codes_(generator=generator)
    quantizer.eval()
    return log
