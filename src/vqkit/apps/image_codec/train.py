"""Training loop of the image codec: Adam on MSE + the quantizer's auxiliary loss.

Dead-codeword replacement ([vali2022nsvq] §III.C) is an explicit call every ``replace_every``
steps, stopped ``2 * replace_every`` steps before the end as in ``train.py`` of
[vali2022nsvqcode].
All randomness comes from generators seeded by ``TrainConfig.seed``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

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
    """
    if source.tile != config.tile or source.channels != config.channels:
        raise ValueError(
            f"source gives {source.channels}x{source.tile}x{source.tile} tiles, the config "
            f"expects {config.channels}x{config.tile}x{config.tile}"
        )
    seed = train_config.seed
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # layer and codebook initialisation draw from the global RNG
        noise = torch.Generator().manual_seed(seed + 1)
        model = ImageCodecModel(config, generator=noise)
    data_gen = torch.Generator().manual_seed(seed + 2)
    replace_gen = torch.Generator().manual_seed(seed + 3)
    opt = torch.optim.Adam(model.parameters(), lr=train_config.lr)
    result = TrainResult(model)
    every = train_config.replace_every
    window: list[float] = []
    start = time.perf_counter()
    steps = range(1, train_config.steps + 1)
    if progress:
        from ...progress import progress_bar

        steps = progress_bar(steps, desc="train", unit="step")
    model.train()
    for step in steps:
        x = source.sample(train_config.batch_size, data_gen)
        y, out = model(x)
        mse = F.mse_loss(y, x)
        loss = mse + out.loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        window.append(float(mse.detach()))
        if every and step % every == 0 and step <= train_config.steps - 2 * every:
            n = model.quantizer.replace_dead_codes_(
                train_config.replace_threshold, generator=replace_gen
            )
            result.replaced.append(int(n))
        if step % log_every == 0 or step == train_config.steps:
            result.losses.append(sum(window) / len(window))
            log.info("step %d: mse %.5f", step, result.losses[-1])
            window = []
    result.seconds = time.perf_counter() - start
    model.eval()
    return result
