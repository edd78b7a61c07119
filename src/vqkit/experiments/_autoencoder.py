"""The small convolutional autoencoder of the Fashion-MNIST and photo-patch experiments: the
network stays fixed and the quantizer in its bottleneck is what an experiment varies."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..apps.image_codec.layers import ResidualBlock


class ConvAutoencoder(nn.Module):
    """``(B, C, H, W)`` images -> ``(B, H/4, W/4, D)`` latents -> quantizer -> images;
    ``forward`` returns (images, the quantizer's output). 28x28 gives a 7x7 grid, 32x32 8x8.

    Encoder: two stride-2 4x4 convolutions, each followed by a residual block
    (:class:`~vqkit.apps.image_codec.layers.ResidualBlock`, the block of
    [vandenoord2017vqvae]'s VQ-VAE), then a 1x1 convolution to ``dim``. Decoder: a 3x3
    convolution from ``dim`` and a residual block, a stride-2 transposed convolution and a
    residual block, then a stride-2 transposed convolution to ``channels``. ``hidden``
    channels throughout.

    Args:
        quantizer: any module with a vqkit quantizer's call: channel-last ``(..., dim)`` in,
            an output with ``quantized``, ``indices`` and ``loss`` out.
        hidden: channels of the convolutions.
        dim: D, the channels of the latent grid.
        channels: image channels (1 grey, 3 RGB).
    """

    def __init__(self, quantizer: nn.Module, hidden: int, dim: int, channels: int = 1) -> None:
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(channels, hidden, 4, 2, 1), ResidualBlock(hidden),
            nn.Conv2d(hidden, hidden, 4, 2, 1), ResidualBlock(hidden), nn.ReLU(),
            nn.Conv2d(hidden, dim, 1))
        self.vq = quantizer
        self.dec = nn.Sequential(
            nn.Conv2d(dim, hidden, 3, 1, 1), ResidualBlock(hidden),
            nn.ConvTranspose2d(hidden, hidden, 4, 2, 1), ResidualBlock(hidden), nn.ReLU(),
            nn.ConvTranspose2d(hidden, channels, 4, 2, 1))

    def forward(self, images: Tensor) -> tuple[Tensor, Any]:
        z = self.enc(images).movedim(1, -1)  # (B, H/4, W/4, D), channel-last
        out = self.vq(z)
        return self.dec(out.quantized.movedim(-1, 1)), out
