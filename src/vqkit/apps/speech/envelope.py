"""The 16-band log envelope with trainable band matrices A and B ([vali2021msvq] §3).

Band energies ``y = A x`` summarise the spectral energies ``x`` (squared MDCT
coefficients) of a frame; the power envelope ``s = B y`` spreads them back over the bins.
Both matrices are block-diagonal over M equal-width bands: ``y_k = a_k^T x_k`` and
``s_k = y_k b_k``, with positive weights kept as ``exp`` of free parameters. ``log y`` is
what the quantizers code; it carries the frame energy too.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

#: Floor added to band energies, so that silent frames have a finite log envelope.
ENERGY_FLOOR = 1e-7


class BandEnvelope(nn.Module):
    """Trainable band-energy analysis ``A`` and envelope synthesis ``B``.

    Initialised as the band mean (``a_k = 1/width``) and a flat band envelope (``b_k = 1``).

    Args:
        num_bins: N, bins per frame (must be divisible by ``num_bands``).
        num_bands: M (16 in [vali2021msvq]).

    Shape:
        ``log_bands``: energies ``(..., N)`` -> ``(..., M)``; ``envelope``: ``(..., M)`` log
        band energies -> ``(..., N)`` power envelope.

    Raises:
        ValueError: ``num_bands <= 0`` or ``num_bins`` is not a multiple of ``num_bands``.

    Example:
        >>> env = BandEnvelope(160, 16)
        >>> x = torch.ones(3, 160)
        >>> y = env.log_bands(x)
        >>> y.shape, bool(torch.allclose(env.envelope(y), torch.ones(3, 160) + 1e-7))
        (torch.Size([3, 16]), True)
    """

    def __init__(self, num_bins: int, num_bands: int = 16) -> None:
        super().__init__()
        if num_bands <= 0 or num_bins % num_bands:
            raise ValueError(
                f"num_bins={num_bins} must be a positive multiple of num_bands={num_bands}"
            )
        self.num_bins = int(num_bins)
        self.num_bands = int(num_bands)
        width = num_bins // num_bands
        self.log_a = nn.Parameter(torch.full((num_bands, width), -float(torch.log(
            torch.tensor(float(width))))))
        self.log_b = nn.Parameter(torch.zeros(num_bands, width))

    @property
    def width(self) -> int:
        return self.num_bins // self.num_bands

    def matrix_a(self) -> Tensor:
        """A as a dense ``(M, N)`` matrix (for plots and tests)."""
        return torch.block_diag(*self.log_a.exp().unbind(0))

    def matrix_b(self) -> Tensor:
        """B as a dense ``(N, M)`` matrix."""
        return torch.block_diag(*self.log_b.exp().unbind(0)).T

    def log_bands(self, energies: Tensor) -> Tensor:
        """``log(A x + floor)``: the M envelope parameters of each frame.

        Raises:
            ValueError: ``energies`` is not ``(..., N)``.
        """
        if energies.shape[-1] != self.num_bins:
            raise ValueError(
                f"energies must have shape (..., {self.num_bins}), got {tuple(energies.shape)}"
            )
        split = energies.reshape(*energies.shape[:-1], self.num_bands, self.width)
        y = (split * self.log_a.exp()).sum(-1)
        return torch.log(y + ENERGY_FLOOR)

    def envelope(self, log_bands: Tensor) -> Tensor:
        """``B exp(log y)`` plus the floor: the power envelope over the N bins.

        Raises:
            ValueError: ``log_bands`` is not ``(..., M)``.
        """
        if log_bands.shape[-1] != self.num_bands:
            raise ValueError(
                f"log_bands must have shape (..., {self.num_bands}), got {tuple(log_bands.shape)}"
            )
        s = log_bands.exp().unsqueeze(-1) * self.log_b.exp()
        return s.reshape(*log_bands.shape[:-1], self.num_bins) + ENERGY_FLOOR
