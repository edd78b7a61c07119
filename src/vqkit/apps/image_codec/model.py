"""The codec's network: a compact convolutional VQ-VAE (encoder, quantizer, decoder).

The encoder maps a ``(B, C, T, T)`` tile in [0, 1] to a ``(B, D, T/s, T/s)`` latent grid with
``log2 s`` stride-2 convolutions and a residual block; every latent vector is quantized with
``bits`` bits by the configured quantizer; the decoder mirrors the encoder. Checkpoints are
``{format, format_version, config, train_config, state_dict}`` read with ``weights_only``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vqkit.io.torch_file import atomic_torch_save, read_torch_file
from vqkit.quantizers import ChannelsFirst, Quantizer
from vqkit.quantizers.build import build_estimator
from vqkit.quantizers.build import build_quantizer as build_registered
from vqkit.quantizers.encoders import BeamSearch
from vqkit.types import QuantizerOutput

from .config import CodecConfig, QuantizerSpec
from .layers import ResidualBlock

CHECKPOINT_FORMAT = "vqkit-image-codec"
CHECKPOINT_VERSION = 1


def build_quantizer(
    spec: QuantizerSpec, dim: int, generator: torch.Generator | None = None
) -> Quantizer:
    """The bottleneck quantizer of ``spec`` for ``dim``-dimensional latents; ``generator`` is
    the noise source of the estimators that draw noise (NSVQ, DiVeQ)."""
    options = {"encoder": BeamSearch(width=spec.beam_width)} if spec.kind == "avq" else {}
    return build_registered(
        spec.kind, dim, spec.codebook_size, spec.num_codebooks,
        estimator=build_estimator(spec.estimator, generator=generator),
        learning=spec.learning, **options,
    )


def _encoder(cfg: CodecConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    width_in = cfg.channels
    for _ in range(cfg.downsample.bit_length() - 1):
        layers += [nn.Conv2d(width_in, cfg.hidden, 4, stride=2, padding=1), nn.ReLU()]
        width_in = cfg.hidden
    layers += [nn.Conv2d(cfg.hidden, cfg.hidden, 3, padding=1), ResidualBlock(cfg.hidden),
               nn.ReLU(), nn.Conv2d(cfg.hidden, cfg.latent_dim, 1)]
    return nn.Sequential(*layers)


def _decoder(cfg: CodecConfig) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cfg.latent_dim, cfg.hidden, 3, padding=1),
                               ResidualBlock(cfg.hidden), nn.ReLU()]
    ups = cfg.downsample.bit_length() - 1
    for i in range(ups):
        last = i == ups - 1
        layers.append(nn.ConvTranspose2d(cfg.hidden, cfg.channels if last else cfg.hidden, 4,
                                         stride=2, padding=1))
        if not last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ImageCodecModel(nn.Module):
    """Convolutional VQ-VAE on ``tile x tile`` images.

    Args:
        config: the :class:`CodecConfig` (architecture and quantizer).
        generator: noise source of the NSVQ / DiVeQ estimators (not saved).

    Shape:
        tiles ``(B, C, T, T)`` in [0, 1]; indices ``(B, G, G)`` or ``(B, G, G, M)``.

    Raises:
        TypeError: ``config`` is not a :class:`CodecConfig`.

    Example:
        >>> model = ImageCodecModel(CodecConfig(tile=16, hidden=8, latent_dim=4)).eval()
        >>> x = torch.rand(2, 3, 16, 16)
        >>> idx = model.encode(x)
        >>> idx.shape
        torch.Size([2, 4, 4])
        >>> torch.equal(model.decode(idx), model.reconstruct(x))
        True
    """

    def __init__(self, config: CodecConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(config, CodecConfig):
            raise TypeError(f"config must be a CodecConfig, got {type(config).__name__}")
        self.config = config
        self.encoder = _encoder(config)
        quantizer = build_quantizer(config.quantizer, config.latent_dim, generator)
        self.quantizer = ChannelsFirst(quantizer)
        self.decoder = _decoder(config)

    def _check(self, tiles: Tensor) -> None:
        c, t = self.config.channels, self.config.tile
        if not isinstance(tiles, Tensor) or tiles.dim() != 4 or tuple(tiles.shape[1:]) != (c, t, t):
            shape = tuple(tiles.shape) if isinstance(tiles, Tensor) else type(tiles).__name__
            raise ValueError(f"tiles must have shape (B, {c}, {t}, {t}), got {shape}")

    def forward(self, tiles: Tensor) -> tuple[Tensor, QuantizerOutput]:
        """Reconstruction (unclamped) and the quantizer's output (training: the estimator's).

        Shape:
            ``tiles`` ``(B, C, T, T)`` in [0, 1]; the reconstruction has the same shape.

        Raises:
            ValueError: ``tiles`` is not a ``(B, channels, tile, tile)`` tensor.
        """
        self._check(tiles)
        out = self.quantizer(self.encoder(tiles - 0.5))
        return self.decoder(out.quantized) + 0.5, out

    @torch.no_grad()
    def encode(self, tiles: Tensor) -> Tensor:
        """Indices of each latent vector (hard nearest-codeword search).

        Shape:
            ``tiles`` ``(B, C, T, T)`` in [0, 1]; returns int64 ``(B, G, G)`` (one codebook) or
            ``(B, G, G, M)``.

        Raises:
            ValueError: ``tiles`` is not a ``(B, channels, tile, tile)`` tensor.
        """
        self._check(tiles)
        return self.quantizer.encode(self.encoder(tiles - 0.5))

    @torch.no_grad()
    def decode(self, indices: Tensor) -> Tensor:
        """Tiles in [0, 1] from indices.

        Shape:
            ``indices`` ``(B, G, G)`` or ``(B, G, G, M)``; returns ``(B, C, T, T)``.

        Raises:
            TypeError / ValueError: ``indices`` are not valid for the quantizer (its
                ``decode``'s checks).
        """
        return (self.decoder(self.quantizer.decode(indices)) + 0.5).clamp_(0.0, 1.0)

    @torch.no_grad()
    def reconstruct(self, tiles: Tensor) -> Tensor:
        """``decode(encode(tiles))``: what the codec's decoder will output, in [0, 1]."""
        return self.decode(self.encode(tiles))


def save_checkpoint(
    model: ImageCodecModel, path: str | os.PathLike[str], train_config: dict[str, Any] | None = None
) -> None:
    """Write ``model`` atomically to ``path``."""
    record = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "config": model.config.asdict(),
        "train_config": dict(train_config or {}),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    atomic_torch_save(record, path)


def load_checkpoint(path: str | os.PathLike[str]) -> ImageCodecModel:
    """Read a model written by :func:`save_checkpoint`, in eval mode.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a readable image-codec checkpoint of this version.
    """
    record = read_torch_file(path, "image-codec checkpoint")
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an image-codec checkpoint (format {CHECKPOINT_FORMAT!r})")
    if record.get("format_version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{path} has format_version {record.get('format_version')!r}; "
            f"this vqkit reads version {CHECKPOINT_VERSION}"
        )
    model = ImageCodecModel(CodecConfig.from_dict(record["config"]))
    try:
        model.load_state_dict(record["state_dict"])
    except RuntimeError as err:
        raise ValueError(f"{path}: state_dict does not match its config: {err}") from err
    return model.eval()


#: The small model shipped with the package (see docs/image_codec.md for the command that
#: trains it).
DEFAULT_MODEL = Path(__file__).with_name("default_model.pt")


def load_default_model() -> ImageCodecModel:
    """The shipped default model, or FileNotFoundError saying how to train one.

    Raises:
        FileNotFoundError: the package holds no default model (the message gives the command
            that trains one).
        ValueError: the shipped file is not a readable checkpoint (as :func:`load_checkpoint`).
    """
    if not DEFAULT_MODEL.is_file():
        raise FileNotFoundError(
            f"no default image-codec model at {DEFAULT_MODEL}; train one with "
            "`vqkit image train --out model.pt` and pass --model model.pt"
        )
    return load_checkpoint(DEFAULT_MODEL)
