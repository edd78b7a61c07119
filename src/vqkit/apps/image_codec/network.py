"""The whole-image codec's network: a fully convolutional transform, residual VQ, a prior.

The analysis transform maps an ``(B, C, H, W)`` image in [0, 1] (``H``, ``W`` multiples of
the stride ``s``) to an ``(B, D, H/s, W/s)`` latent grid with ``log2 s`` stride-2 5x5
convolutions and residual blocks; every latent vector is coded by a residual VQ of ``M``
stages ([vali2023rpavq], trained end to end with NSVQ by default, [vali2022nsvq]); the
synthesis transform mirrors it with sub-pixel (pixel-shuffle) upsampling. The whole image is
one convolution: there are no tiles, so there are no tile seams. Quantizer dropout with a
uniform depth per latent vector ([zeghidour2021soundstream]) trains every prefix of the
stages, so one model offers ``M`` rates: a file keeps the first ``m`` stages.

:class:`~.prior.IndexPrior` (a buffer of the model) holds the index distributions the file's
range coder uses. Checkpoints are ``{format, format_version, config, state_dict}`` read with
``weights_only``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vqkit.io.torch_file import atomic_torch_save, read_torch_file
from vqkit.io.validation import check_state
from vqkit.quantizers import ChannelsFirst, ResidualVQ
from vqkit.quantizers.build import build_estimator
from vqkit.quantizers.data_init import DataInit
from vqkit.quantizers.dropout import ExampleDepth
from vqkit.types import QuantizerOutput

from .config import ImageModelConfig
from .layers import ResidualBlock
from .prior import IndexPrior

CHECKPOINT_FORMAT = "vqkit-image-model"
CHECKPOINT_VERSION = 1


def _analysis(cfg: ImageModelConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = cfg.channels
    for i in range(cfg.downsample.bit_length() - 1):
        layers += [nn.Conv2d(width, cfg.hidden, 5, stride=2, padding=2)]
        layers += [ResidualBlock(cfg.hidden, 3, nn.GELU)] if i else [nn.GELU()]
        width = cfg.hidden
    layers += [ResidualBlock(cfg.hidden, 3, nn.GELU), nn.Conv2d(cfg.hidden, cfg.latent_dim, 1)]
    return nn.Sequential(*layers)


def _up(width_in: int, width_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(width_in, 4 * width_out, 3, padding=1), nn.PixelShuffle(2))


def _synthesis(cfg: ImageModelConfig) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cfg.latent_dim, cfg.hidden, 3, padding=1),
                               ResidualBlock(cfg.hidden, 3, nn.GELU)]
    ups = cfg.downsample.bit_length() - 1
    for i in range(ups):
        if i == ups - 1:
            layers.append(_up(cfg.hidden, cfg.channels))
        else:
            layers += [_up(cfg.hidden, cfg.hidden), nn.GELU(),
                       ResidualBlock(cfg.hidden, 3, nn.GELU)]
    return nn.Sequential(*layers)


class WholeImageModel(nn.Module):
    """Fully convolutional residual-VQ autoencoder for whole images, with its index prior.

    Args:
        config: the :class:`ImageModelConfig`.
        generator: noise source of the NSVQ / DiVeQ estimators and of quantizer dropout's
            draws in training (not saved).

    Shape:
        images ``(B, C, H, W)`` in [0, 1], any ``H, W >= 1`` (padded by edge replication to
        multiples of the stride, cropped back); indices ``(B, ceil(H/s), ceil(W/s), m)``,
        ``m <= M`` stages.

    Raises:
        TypeError: ``config`` is not an :class:`ImageModelConfig`.

    Example:
        >>> cfg = ImageModelConfig(hidden=8, latent_dim=4, codebook_size=4, stages=3)
        >>> model = WholeImageModel(cfg).eval()
        >>> x = torch.rand(1, 3, 20, 30)
        >>> idx = model.encode(x)
        >>> idx.shape
        torch.Size([1, 3, 4, 3])
        >>> torch.equal(model.decode(idx[..., :2], 20, 30), model.reconstruct(x, stages=2))
        True
    """

    def __init__(self, config: ImageModelConfig, *, generator: torch.Generator | None = None
                 ) -> None:
        super().__init__()
        if not isinstance(config, ImageModelConfig):
            raise TypeError(f"config must be an ImageModelConfig, got {type(config).__name__}")
        self.config = config
        self.analysis = _analysis(config)
        rvq = ResidualVQ(config.latent_dim, config.codebook_size, config.stages,
                         estimator=build_estimator(config.estimator, generator=generator),
                         dropout=ExampleDepth(1), init="normal", data_init=DataInit())
        self.quantizer = ChannelsFirst(rvq)
        self.synthesis = _synthesis(config)
        self.prior = IndexPrior(config.stages, config.codebook_size)

    def _check(self, images: Tensor, multiple: int = 1) -> None:
        c = self.config.channels
        ok = isinstance(images, Tensor) and images.dim() == 4 and images.shape[1] == c
        if not ok or images.shape[2] % multiple or images.shape[3] % multiple:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            sides = f" with H, W multiples of {multiple}" if multiple > 1 else ""
            raise ValueError(f"images must have shape (B, {c}, H, W){sides}, got {shape}")
        if not images.dtype.is_floating_point or not bool(torch.isfinite(images).all()):
            raise ValueError("images must be finite floating-point values in [0, 1]")

    def _pad(self, images: Tensor) -> Tensor:
        s = self.config.downsample
        h, w = images.shape[-2:]
        return F.pad(images, (0, -w % s, 0, -h % s), mode="replicate")

    def forward(self, images: Tensor) -> tuple[Tensor, QuantizerOutput]:
        """Reconstruction (unclamped) and the quantizer's output, for training.

        Shape:
            ``images`` ``(B, C, H, W)``, ``H`` and ``W`` multiples of the stride.

        Raises:
            ValueError: ``images`` is not such a finite float tensor.
        """
        self._check(images, self.config.downsample)
        out = self.quantizer(self.analysis(images - 0.5))
        return self.synthesis(out.quantized) + 0.5, out

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        """Indices of every stage at every latent position (hard residual search).

        Shape:
            ``images`` ``(B, C, H, W)`` in [0, 1]; returns int64 ``(B, ceil(H/s), ceil(W/s), M)``.

        Raises:
            ValueError: ``images`` is not a finite ``(B, C, H, W)`` float tensor.
        """
        self._check(images)
        return self.quantizer.encode(self.analysis(self._pad(images) - 0.5))

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """``(ceil(height / s), ceil(width / s))``: the latent grid of a ``height x width``
        image (``s`` the stride)."""
        s = self.config.downsample
        return -(-height // s), -(-width // s)

    @torch.no_grad()
    def decode(self, indices: Tensor, height: int, width: int) -> Tensor:
        """Images in [0, 1] from the first ``m`` stages of indices.

        Shape:
            ``indices`` ``(B, G_h, G_w, m)`` with ``G_h = ceil(height / s)``, ``G_w`` likewise,
            ``1 <= m <= M``; returns ``(B, C, height, width)``.

        Raises:
            ValueError: the grid does not match ``height x width``, or the indices are not
                valid for the quantizer (its ``decode``'s checks).
        """
        grid = self.grid(height, width)
        if indices.dim() != 4 or tuple(indices.shape[1:3]) != grid or indices.shape[3] < 1:
            raise ValueError(f"indices must be (B, {grid[0]}, {grid[1]}, m >= 1) for a "
                             f"{height}x{width} image, got {tuple(indices.shape)}")
        latents = self.quantizer.wrapped.decode(indices).movedim(-1, 1)
        images = self.synthesis(latents) + 0.5
        return images[..., :height, :width].clamp_(0.0, 1.0)

    @torch.no_grad()
    def reconstruct(self, images: Tensor, stages: int | None = None) -> Tensor:
        """``decode(encode(images)[..., :stages])``: what the decoder outputs at that rate."""
        idx = self.encode(images)
        return self.decode(idx[..., : stages or idx.shape[-1]], *images.shape[-2:])


def save_image_model(model: WholeImageModel, path: str | os.PathLike[str],
                     train_config: dict[str, Any] | None = None) -> None:
    """Write ``model`` (its weights, codebooks and prior) atomically to ``path``."""
    record = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "config": model.config.asdict(),
        "train_config": dict(train_config or {}),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    atomic_torch_save(record, path)


def _read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    record = read_torch_file(path, "image-codec model")
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a whole-image codec model (format {CHECKPOINT_FORMAT!r})")
    if record.get("format_version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path} has format_version {record.get('format_version')!r}; "
                         f"this vqkit reads version {CHECKPOINT_VERSION}")
    return record


def load_image_model(path: str | os.PathLike[str]) -> WholeImageModel:
    """Read a model written by :func:`save_image_model`, in eval mode.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a readable whole-image model of this version, or an entry
            of its state (a weight, a prior probability) is not finite or a counter is
            negative (:func:`vqkit.io.validation.check_state`).
    """
    record = _read_record(path)
    try:
        model = WholeImageModel(ImageModelConfig.from_dict(record["config"]))
        model.load_state_dict(record["state_dict"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise ValueError(f"{path}: config or state_dict is not valid: {err}") from err
    check_state(model.state_dict(), str(path))
    return model.eval()


def training_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """How the model at ``path`` was trained: the ``train_config`` :func:`save_image_model`
    recorded (for the shipped model: settings, seconds, threads and the command and commit).

    Raises:
        FileNotFoundError / ValueError: as :func:`load_image_model`.
    """
    return dict(_read_record(path).get("train_config", {}))


#: The whole-image model shipped with the package (docs/image_codec.md gives the command
#: that trained it).
DEFAULT_IMAGE_MODEL = Path(__file__).with_name("image_model.pt")


def load_default_image_model() -> WholeImageModel:
    """The shipped whole-image model.

    Raises:
        FileNotFoundError: the package holds no such model (the message gives the command
            that trains one).
        ValueError: the shipped file is not readable (as :func:`load_image_model`).
    """
    if not DEFAULT_IMAGE_MODEL.is_file():
        raise FileNotFoundError(f"no shipped image model at {DEFAULT_IMAGE_MODEL}; train one "
                                "with `vqkit image train --out model.pt` and pass --model")
    return load_image_model(DEFAULT_IMAGE_MODEL)
