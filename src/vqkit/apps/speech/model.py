"""The envelope codec model: band envelope (A, B) -> quantizer -> power envelope -> bits.

Training minimises the bits needed to code the MDCT spectrum given the *quantized*
envelope, as in [vali2021msvq] eq. (3), with a Gaussian instead of the paper's logistic
mixture (the PyAWNeS baseline's choice):
``bits = sum_n 0.5 log2(2 pi s_n) + X_n^2 / (2 s_n ln 2)`` per frame, for unit quantization
step of the spectrum. A, B and the codebooks are trained together through the quantizer's
gradient estimator. The quantizer sees the log envelope standardised by a fixed mean and
scale (buffers set from training data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...quantizers.base import Quantizer
from .envelope import BandEnvelope

#: dB per natural-log unit of power: 10 / ln 10.
DB_PER_NEPER = 10.0 / math.log(10.0)


@dataclass
class EnvelopeOutput:
    """What one pass of :class:`EnvelopeModel` computes (per frame, means over the batch)."""

    loss: Tensor
    bits: Tensor
    log_bands: Tensor
    quantized_log_bands: Tensor
    indices: Tensor


def gaussian_bits(coefficients: Tensor, envelope: Tensor) -> Tensor:
    """Bits per frame of ``coefficients`` under zero-mean Gaussians of variance ``envelope``.

    Example:
        >>> round(gaussian_bits(torch.zeros(1, 2), torch.ones(1, 2)).item(), 4)
        2.6515
    """
    nats = 0.5 * torch.log(2 * math.pi * envelope) + coefficients.pow(2) / (2 * envelope)
    return nats.sum(-1) / math.log(2.0)


def log_spectral_distortion(log_bands: Tensor, quantized: Tensor) -> Tensor:
    """Per-frame RMS dB difference of two band envelopes (equal-width bands).

    Because ``s = B y`` scales each band's bins by ``y_k``, the RMS over bins of
    ``10 log10(s / s_hat)`` equals the RMS over bands of ``10 log10(y / y_hat)``.

    Example:
        >>> lsd = log_spectral_distortion(torch.zeros(1, 16), torch.full((1, 16), math.log(10)))
        >>> round(lsd.item(), 4)
        10.0
    """
    return DB_PER_NEPER * (log_bands - quantized).pow(2).mean(-1).sqrt()


class EnvelopeModel(nn.Module):
    """Band envelope + envelope quantizer, trained on spectral bits.

    Args:
        quantizer: any :class:`~vqkit.quantizers.base.Quantizer` of dimension ``num_bands``.
        num_bins: MDCT bins per frame (160 at 8 kHz with a 20 ms hop).
        num_bands: envelope parameters per frame (16).

    Raises:
        ValueError: ``quantizer.dim != num_bands``, or ``num_bins`` is not a positive multiple
            of ``num_bands`` (:class:`BandEnvelope`).

    Example:
        >>> from vqkit import VectorQuantizer
        >>> model = EnvelopeModel(VectorQuantizer(16, 8), num_bins=160)
        >>> out = model(torch.randn(4, 160))
        >>> out.bits.shape, out.indices.shape
        (torch.Size([]), torch.Size([4]))
    """

    def __init__(self, quantizer: Quantizer, *, num_bins: int = 160, num_bands: int = 16) -> None:
        super().__init__()
        if quantizer.dim != num_bands:
            raise ValueError(
                f"quantizer.dim must equal num_bands={num_bands}, got {quantizer.dim}"
            )
        self.envelope = BandEnvelope(num_bins, num_bands)
        self.quantizer = quantizer
        self.register_buffer("mean", torch.zeros(num_bands))
        self.register_buffer("scale", torch.ones(()))

    @torch.no_grad()
    def set_normalisation_(self, coefficients: Tensor) -> Tensor:
        """Set mean and scale from data; returns the standardised envelopes (for init)."""
        log_bands = self.envelope.log_bands(coefficients.pow(2))
        self.mean.copy_(log_bands.mean(0))
        self.scale.copy_((log_bands - self.mean).std().clamp_min(1e-6))
        return (log_bands - self.mean) / self.scale

    def standardise(self, log_bands: Tensor) -> Tensor:
        return (log_bands - self.mean) / self.scale

    def destandardise(self, z: Tensor) -> Tensor:
        return z * self.scale + self.mean

    def forward(self, coefficients: Tensor) -> EnvelopeOutput:
        """Quantize the envelope of MDCT frames ``(F, N)`` and score the spectrum's bits."""
        log_bands = self.envelope.log_bands(coefficients.pow(2))
        out = self.quantizer(self.standardise(log_bands))
        quantized = self.destandardise(out.quantized)
        bits = gaussian_bits(coefficients, self.envelope.envelope(quantized)).mean()
        return EnvelopeOutput(bits + out.loss, bits, log_bands, quantized, out.indices)

    @torch.no_grad()
    def encode(self, coefficients: Tensor) -> Tensor:
        """Indices of each frame's envelope."""
        z = self.standardise(self.envelope.log_bands(coefficients.pow(2)))
        return self.quantizer.encode(z)

    @torch.no_grad()
    def decode(self, indices: Tensor) -> Tensor:
        """Quantized log band energies ``(F, M)`` from indices."""
        return self.destandardise(self.quantizer.decode(indices))
