"""Training of the image codec models: Adam on MSE + the quantizer's auxiliary loss, through
:class:`vqkit.training.loop.Trainer`.

The same function trains the tile model (:class:`~.model.ImageCodecModel`, the estimator
sweeps) and the whole-image model (:class:`~.network.WholeImageModel`, the codec); the config's
type says which. A whole-image model's index prior is counted after training on
:data:`PRIOR_BATCHES` fresh batches of the training source (:func:`fit_prior`).

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
from ...training.schedule import Constant, Cosine, Replacement, Schedule
from ...training.seed import offset_generator, offset_seed_global
from .config import CodecConfig, ImageModelConfig, TrainConfig
from .data import TileSource
from .model import ImageCodecModel
from .network import WholeImageModel

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

    model: ImageCodecModel | WholeImageModel
    losses: list[float] = field(default_factory=list)
    replaced: list[int] = field(default_factory=list)
    seconds: float = 0.0


#: Batches of the training source whose indices set a whole-image model's prior.
PRIOR_BATCHES = 64
_LR_SCHEDULES = {"constant": Constant, "cosine": Cosine}


def _build(config: CodecConfig | ImageModelConfig, source: TileSource,
           generator: torch.Generator) -> ImageCodecModel | WholeImageModel:
    if isinstance(config, ImageModelConfig):
        if source.channels != config.channels or source.tile % config.downsample:
            raise ValueError(
                f"source gives {source.channels}x{source.tile}x{source.tile} crops; the "
                f"model needs {config.channels} channels and a side that is a multiple of "
                f"{config.downsample}")
        return WholeImageModel(config, generator=generator)
    if source.tile != config.tile or source.channels != config.channels:
        raise ValueError(
            f"source gives {source.channels}x{source.tile}x{source.tile} tiles, the config "
            f"expects {config.channels}x{config.tile}x{config.tile}"
        )
    return ImageCodecModel(config, generator=generator)


def train(
    config: CodecConfig | ImageModelConfig,
    train_config: TrainConfig,
    source: TileSource,
    *,
    progress: bool = False,
    log_every: int = 250,
) -> TrainResult:
    """Train a codec model from scratch on batches drawn from ``source``: the tile model of
    a :class:`CodecConfig` or the whole-image model of an :class:`ImageModelConfig` (whose
    prior :func:`fit_prior` then sets).

    Example:
        >>> import numpy as np
        >>> from vqkit.apps.image_codec.data import PhotoCrops
        >>> src = PhotoCrops([np.random.default_rng(0).random((40, 40, 3), np.float32)], 16)
        >>> cfg = CodecConfig(tile=16, hidden=8, latent_dim=4)
        >>> res = train(cfg, TrainConfig(steps=3, batch_size=4), src)
        >>> len(res.losses), res.model.training
        (1, False)

    Raises:
        ValueError: ``source`` gives tiles of another size or channel count than ``config``
            takes.
    """
    seed = train_config.seed
    with torch.random.fork_rng(devices=[]):
        offset_seed_global(seed, 0)  # layer and codebook initialisation draw from the global RNG
        model = _build(config, source, offset_generator(seed, 1))  # estimator noise
    every, steps = train_config.replace_every, train_config.steps
    replacement = Replacement(every, max(0, steps - 2 * every), train_config.replace_threshold)
    schedule = Schedule(steps=steps, lr=train_config.lr, replacement=replacement,
                        lr_schedule=_LR_SCHEDULES[train_config.lr_schedule](),
                        max_grad_norm=train_config.max_grad_norm, log_every=log_every)
    tiles = Sampler(source.sample, train_config.batch_size, offset_generator(seed, 2))
    trainer = Trainer(model, tiles, schedule, objective=reconstruction_mse,
                      quantizer=model.quantizer, maintenance=offset_generator(seed, 3),
                      progress=bar_callback("train", enabled=progress, unit="step"))
    start = time.perf_counter()
    trainer.run(on_window=_log_window)
    model.eval()
    if isinstance(model, WholeImageModel):
        fit_prior(model, source, train_config.batch_size, offset_generator(seed, 4))
    seconds = time.perf_counter() - start
    return TrainResult(model, [row["mse"] for row in trainer.meters.history],
                       [n for _, n in trainer.replacements], seconds)


@torch.no_grad()
def fit_prior(model: WholeImageModel, source: TileSource, batch_size: int,
              generator: torch.Generator, batches: int = PRIOR_BATCHES) -> None:
    """Set ``model.prior`` from the indices its encoder picks on ``batches`` batches of
    ``source`` (every stage counted at every latent position).
    """
    counts = torch.zeros(model.prior.probabilities.shape, dtype=torch.float64)
    k = model.config.codebook_size
    for _ in range(batches):
        idx = model.encode(source.sample(batch_size, generator)).reshape(-1, model.config.stages)
        for s in range(idx.shape[1]):
            counts[s] += torch.bincount(idx[:, s], minlength=k).double()
    model.prior.fit_(counts)


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
