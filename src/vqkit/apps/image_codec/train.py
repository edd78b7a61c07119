"""Training of the image codec: Adam on MSE + the quantizer's auxiliary loss, through
:class:`vqkit.training.loop.Trainer`.

Dead-codeword replacement ([vali2022nsvq] §III.C) runs every ``replace_every`` steps and stops
``2 * replace_every`` steps before the end as in ``train.py`` of [vali2022nsvqcode].
All randomness comes from generators derived from ``TrainConfig.seed`` by
:mod:`vqkit.training.seed`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ...progress import bar_callback
from ...training.batches import Sampler
from ...training.loop import Trainer
from ...training.objective import StepResult
from ...training.schedule import Replacement, Schedule
from ...training.seed import offset_generator, offset_seed_global
from .config import CodecConfig, TrainConfig
from .data import TileSource
from .model import ImageCodecModel

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """A trained model (in eval mode) and what happened on the way.

    Attributes:
        model: the trained :class:`ImageCodecModel`.
        losses: mean training reconstruction MSE of each logging window.
        replaced: codewords replaced at each replacement call.
        seconds: wall time of training.
    """

    model: ImageCodecModel
    losses: list[float] = field(default_factory=list)
    replaced: list[int] = field(default_factory=list)
    seconds: float = 0.0


def train(
    config: CodecConfig,
    train_config: TrainConfig,
    source: TileSource,
    *,
    progress: bool = False,
    log_every: int = 250,
) -> TrainResult:
    """Train a codec model from scratch on batches drawn from ``source``.

    Example:
        >>> import numpy as np
        >>> from vqkit.apps.image_codec.data import PhotoCrops
        >>> src = PhotoCrops([np.random.default_rng(0).random((40, 40, 3), np.float32)], 16)
        >>> cfg = CodecConfig(tile=16, hidden=8, latent_dim=4)
        >>> res = train(cfg, TrainConfig(steps=3, batch_size=4), src)
        >>> len(res.losses), res.model.training
        (1, False)

    Raises:
        ValueError: ``source`` gives tiles of another size or channel count than ``config``.
    """
    if source.tile != config.tile or source.channels != config.channels:
        raise ValueError(
            f"source gives {source.channels}x{source.tile}x{source.tile} tiles, the config "
            f"expects {config.channels}x{config.tile}x{config.tile}"
        )
    seed = train_config.seed
    with torch.random.fork_rng(devices=[]):
        offset_seed_global(seed, 0)  # layer and codebook initialisation draw from the global RNG
        model = ImageCodecModel(config, generator=offset_generator(seed, 1))  # estimator noise
    every, steps = train_config.replace_every, train_config.steps
    replacement = Replacement(every, max(0, steps - 2 * every), train_config.replace_threshold)
    schedule = Schedule(steps=steps, lr=train_config.lr, replacement=replacement,
                        log_every=log_every)
    tiles = Sampler(source.sample, train_config.batch_size, offset_generator(seed, 2))
    trainer = Trainer(model, tiles, schedule, objective=reconstruction_mse,
                      quantizer=model.quantizer, maintenance=offset_generator(seed, 3),
                      progress=bar_callback("train", enabled=progress, unit="step"))
    start = time.perf_counter()
    trainer.run(on_window=_log_window)
    seconds = time.perf_counter() - start
    model.eval()
    return TrainResult(model, [row["mse"] for row in trainer.meters.history],
                       [n for _, n in trainer.replacements], seconds)


def reconstruction_mse(model: ImageCodecModel, x: Tensor) -> StepResult:
    """The codec's loss: pixel MSE of the reconstruction + the quantizer's auxiliary loss;
    the MSE is the ``mse`` meter.

    Args:
        model: the codec, in training mode.
        x: ``(B, C, H, W)`` tiles in [0, 1].
    """
    y, out = model(x)
    mse = F.mse_loss(y, x)
    return StepResult(mse + out.loss, indices=out.indices, metrics={"mse": float(mse.detach())})


def _log_window(trainer: Trainer) -> None:
    log.info("step %d: mse %.5f", trainer.step, trainer.meters.last()["mse"])
