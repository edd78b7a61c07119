"""MDCT analysis and synthesis with a low-overlap window ([vali2021msvq] §3).

The codec frames speech with a 20 ms hop and a 30 ms window: a half-sine rise of 10 ms, a
flat top of 10 ms and a half-sine fall of 10 ms, padded with 5 ms of zeros on each side to
the MDCT's frame of two hops. The window meets the Princen-Bradley condition
``w[n]^2 + w[n + N]^2 = 1``, so overlap-add of the inverse transform reconstructs the input
exactly (time-domain aliasing cancellation).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def flat_top_sine_window(hop: int, overlap: int, *, dtype: torch.dtype = torch.float64) -> Tensor:
    """The ``2 * hop`` samples of a half-sine window with a flat top.

    Args:
        hop: N, the frame advance in samples (also the number of MDCT coefficients).
        overlap: L, the length of each half-sine slope in samples, ``0 < L <= N`` and
            ``N - L`` even. ``L = N`` gives the plain sine window.

    Raises:
        ValueError: ``overlap`` is not in ``(0, hop]`` or ``hop - overlap`` is odd.

    Example:
        >>> w = flat_top_sine_window(160, 80)
        >>> pb = w[:160] ** 2 + w[160:] ** 2
        >>> w.shape, bool(torch.allclose(pb, torch.ones(160, dtype=w.dtype)))
        (torch.Size([320]), True)
    """
    if not 0 < overlap <= hop or (hop - overlap) % 2:
        raise ValueError(
            f"overlap must lie in (0, hop={hop}] with hop - overlap even, got {overlap}"
        )
    pad = (hop - overlap) // 2
    n = torch.arange(overlap, dtype=dtype)
    rise = torch.sin(math.pi * (n + 0.5) / (2 * overlap))
    ones = torch.ones(hop - overlap, dtype=dtype)
    zeros = torch.zeros(pad, dtype=dtype)
    return torch.cat([zeros, rise, ones, rise.flip(0), zeros])


class MDCT:
    """Framed MDCT with perfect reconstruction.

    Args:
        sample_rate: samples per second.
        hop_ms: frame advance (20 ms in [vali2021msvq]).
        window_ms: non-zero window length (30 ms); the slopes are ``window_ms - hop_ms``.

    Shape:
        ``forward``: signal ``(T,)`` -> coefficients ``(frames, N)`` with
        ``frames = ceil(T / N) + 1``; ``inverse`` takes them and the length back to ``(T,)``.

    Raises:
        ValueError: ``sample_rate <= 0``, or the slope ``window_ms - hop_ms`` is not in
            ``(0, hop_ms]`` with an even difference in samples (see
            :func:`flat_top_sine_window`).

    Example:
        >>> mdct = MDCT(8000)
        >>> x = torch.randn(1000, dtype=torch.float64)
        >>> c = mdct.forward(x)
        >>> c.shape
        torch.Size([8, 160])
        >>> bool(torch.allclose(mdct.inverse(c, 1000), x))
        True
    """

    def __init__(self, sample_rate: int, *, hop_ms: float = 20.0, window_ms: float = 30.0) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate = int(sample_rate)
        self.hop = round(sample_rate * hop_ms / 1000)
        overlap = round(sample_rate * (window_ms - hop_ms) / 1000)
        self.window = flat_top_sine_window(self.hop, overlap)
        n = torch.arange(2 * self.hop, dtype=torch.float64)
        k = torch.arange(self.hop, dtype=torch.float64)
        phase = math.pi / self.hop * (n[:, None] + 0.5 + self.hop / 2) * (k[None, :] + 0.5)
        # Orthonormal scaling sqrt(2/N): the windowed transform is a tight frame.
        self.basis = math.sqrt(2.0 / self.hop) * torch.cos(phase) * self.window[:, None]

    @property
    def num_bins(self) -> int:
        return self.hop

    def num_frames(self, length: int) -> int:
        return -(-length // self.hop) + 1

    def forward(self, signal: Tensor) -> Tensor:
        """MDCT coefficients ``(frames, N)`` of a 1-D signal (same dtype as the input).

        Raises:
            ValueError: ``signal`` is not 1-D.
        """
        if signal.dim() != 1:
            raise ValueError(f"signal must be 1-D (mono samples), got shape {tuple(signal.shape)}")
        n = self.hop
        frames = self.num_frames(signal.shape[0])
        total = (frames + 1) * n
        padded = torch.zeros(total, dtype=signal.dtype, device=signal.device)
        padded[n : n + signal.shape[0]] = signal
        blocks = padded.unfold(0, 2 * n, n)
        return blocks @ self.basis.to(signal)

    def inverse(self, coefficients: Tensor, length: int) -> Tensor:
        """Overlap-add synthesis back to ``length`` samples.

        Raises:
            ValueError: ``coefficients`` is not ``(frames, N)``.
        """
        if coefficients.dim() != 2 or coefficients.shape[1] != self.hop:
            raise ValueError(
                f"coefficients must have shape (frames, {self.hop}), "
                f"got {tuple(coefficients.shape)}"
            )
        n = self.hop
        frames = coefficients.shape[0]
        blocks = coefficients @ self.basis.to(coefficients).T  # (frames, 2N)
        out = torch.zeros((frames + 1) * n, dtype=coefficients.dtype, device=coefficients.device)
        out[: frames * n] += blocks[:, :n].reshape(-1)
        out[n : (frames + 1) * n] += blocks[:, n:].reshape(-1)
        return out[n : n + length]
