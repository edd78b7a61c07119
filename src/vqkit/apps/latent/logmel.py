"""Log-mel spectrogram in torch (no torchaudio): 80 bands, 16 kHz, 10 ms hop.

The front end of the [vanniekerk2020zerospeech] VQ-VAE used in [vali2023sfvq]: pre-emphasis 0.97,
a 25 ms Hann window every 10 ms, an HTK-scale triangular mel filterbank from 50 Hz to
Nyquist, and the natural log of the mel energies floored at 1e-5.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def hz_to_mel(f: Tensor | float) -> Tensor:
    """HTK mel scale ``2595 log10(1 + f/700)``.

    Example:
        >>> round(float(hz_to_mel(1000.0)))
        1000
    """
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(f, dtype=torch.float64) / 700.0)


def mel_to_hz(m: Tensor | float) -> Tensor:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (torch.as_tensor(m, dtype=torch.float64) / 2595.0) - 1.0)


def mel_filterbank(
    n_mels: int = 80, n_fft: int = 512, sample_rate: int = 16000, fmin: float = 50.0,
    fmax: float | None = None,
) -> Tensor:
    """Triangular filters ``(n_mels, n_fft // 2 + 1)`` with centres equally spaced in mel.

    Each filter rises linearly from the centre of the band below it to its own centre and
    falls to the centre of the band above it (peak 1).

    Args:
        n_mels: number of filters.
        n_fft: FFT size in samples.
        sample_rate: Hz.
        fmin, fmax: band edges in Hz (``fmax`` None: Nyquist).

    Raises:
        ValueError: ``n_mels < 1``, ``n_fft < 2``, or not ``0 <= fmin < fmax <= sample_rate/2``.

    Example:
        >>> fb = mel_filterbank(80, 512, 16000)
        >>> tuple(fb.shape), float(fb.max()) <= 1.0, bool((fb.sum(1) > 0).all())
        ((80, 257), True, True)
    """
    fmax = sample_rate / 2 if fmax is None else fmax
    if n_mels < 1 or n_fft < 2 or not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(
            f"need n_mels >= 1, n_fft >= 2 and 0 <= fmin < fmax <= sample_rate/2, got "
            f"n_mels={n_mels}, n_fft={n_fft}, fmin={fmin}, fmax={fmax}, sample_rate={sample_rate}"
        )
    edges = mel_to_hz(torch.linspace(float(hz_to_mel(fmin)), float(hz_to_mel(fmax)), n_mels + 2))
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs - lo) / (mid - lo)
    down = (hi - freqs) / (hi - mid)
    return torch.clamp(torch.minimum(up, down), min=0.0).float()


def log_mel(
    audio: Tensor | np.ndarray,
    sample_rate: int = 16000,
    *,
    n_mels: int = 80,
    hop_ms: float = 10.0,
    win_ms: float = 25.0,
    preemphasis: float = 0.97,
    floor: float = 1e-5,
) -> Tensor:
    """Log-mel frames ``(T, n_mels)`` of a mono signal; frame t is centred at ``t * hop``.

    Args:
        audio: ``(N,)`` samples in [-1, 1].
        sample_rate: Hz (16 000 in the paper).
        n_mels: number of bands (80).
        hop_ms, win_ms: frame hop and Hann window length in ms (10, 25).
        preemphasis: first-order pre-emphasis coefficient (0 to disable).
        floor: energies are floored here before the log.

    Raises:
        ValueError: ``audio`` is not a non-empty 1-D signal.

    Example:
        >>> x = torch.sin(2 * math.pi * 1000 * torch.arange(16000) / 16000)
        >>> m = log_mel(x)
        >>> tuple(m.shape)
        (101, 80)
    """
    x = torch.as_tensor(np.asarray(audio) if not isinstance(audio, Tensor) else audio)
    if x.dim() != 1 or x.numel() == 0:
        raise ValueError(f"audio must be a non-empty 1-D signal, got shape {tuple(x.shape)}")
    x = x.float()
    if preemphasis:
        x = torch.cat([x[:1], x[1:] - preemphasis * x[:-1]])
    hop = int(round(sample_rate * hop_ms / 1000))
    win = int(round(sample_rate * win_ms / 1000))
    n_fft = 1 << math.ceil(math.log2(win))
    spec = torch.stft(
        x, n_fft, hop_length=hop, win_length=win, window=torch.hann_window(win),
        center=True, pad_mode="reflect" if x.numel() > n_fft // 2 else "constant",
        return_complex=True,
    )
    power = spec.abs().pow(2)  # (F, T)
    mel = mel_filterbank(n_mels, n_fft, sample_rate) @ power
    return torch.log(mel.clamp_min(floor)).T.contiguous()
