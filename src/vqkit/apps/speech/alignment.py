"""Time alignment of decoded speech to its reference before scoring.

A lag estimator is a strategy ``(reference, decoded, max_lag) -> lag``, with ``lag`` the
number of samples by which ``decoded`` lags ``reference``:

- :func:`waveform_lag`, the peak of the waveform cross-correlation, for waveform-matching coders
  (Opus, the MDCT resynthesis);
- :func:`spectral_lag`, the peak of the cross-correlation of log power spectrogram frames, for
  vocoders (WORLD, codec2). A vocoder keeps the spectral envelope's course in time but not the
  phase of the waveform: on vocoded speech the waveform cross-correlation peaks up to tens of
  milliseconds off, which costs STOI (it compares 25.6 ms frames).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

LagEstimator = Callable[[np.ndarray, np.ndarray, int], int]
#: Spectrogram of :func:`spectral_lag`: 32 ms Hann frames every 0.25 ms at 8 kHz, floor -60 dB.
FRAME, HOP, FLOOR_DB = 256, 2, 60.0


def _cross_correlation(reference: np.ndarray, decoded: np.ndarray, max_lag: int) -> np.ndarray:
    """``out[max_lag + k] = sum_i decoded[i + k] reference[i]`` for ``|k| <= max_lag`` (FFT;
    ``decoded`` is taken as zero outside its samples and beyond ``len(reference) + max_lag``)."""
    n = len(reference)
    d = np.zeros(n + 2 * max_lag)
    d[max_lag : max_lag + min(len(decoded), n + max_lag)] = decoded[: n + max_lag]
    size = 1 << (len(d) + n - 1).bit_length()
    spec = np.fft.rfft(d, size) * np.conj(np.fft.rfft(reference, size))
    return np.fft.irfft(spec, size)[: 2 * max_lag + 1]


def waveform_lag(reference: np.ndarray, decoded: np.ndarray, max_lag: int) -> int:
    """Lag in ``[-max_lag, max_lag]`` samples where the waveform cross-correlation peaks.

    Example:
        >>> r = np.sin(np.arange(1000) * 0.05) * np.hanning(1000)
        >>> waveform_lag(r, np.concatenate([np.zeros(30), r]), 400)
        30
    """
    return int(np.argmax(_cross_correlation(reference, decoded, max_lag))) - max_lag


def log_spectrogram(audio: np.ndarray) -> np.ndarray:
    """Log power spectrogram ``(frames, FRAME // 2 + 1)`` in dB, floored :data:`FLOOR_DB` below
    its peak, each bin's mean over time removed; frame ``t`` starts at sample ``HOP * t``."""
    x = np.concatenate([np.asarray(audio, dtype=np.float64), np.zeros(FRAME)])
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP]
    frames = frames[: 1 + max(0, len(audio) - FRAME) // HOP]
    power = np.empty((len(frames), FRAME // 2 + 1), dtype=np.float32)
    window = np.hanning(FRAME)
    for start in range(0, len(frames), 4096):  # in blocks: long files stay small in memory
        block = np.fft.rfft(frames[start : start + 4096] * window, axis=1)
        power[start : start + 4096] = np.abs(block) ** 2
    db = 10 * np.log10(power + power.max() * 10 ** (-FLOOR_DB / 10) + 1e-30)
    return db - db.mean(axis=0)


def spectral_lag(reference: np.ndarray, decoded: np.ndarray, max_lag: int) -> int:
    """Lag in ``[-max_lag, max_lag]`` samples where the log spectrograms match best.

    The cross-correlation of :func:`log_spectrogram` frames (summed over bins) is taken at lags
    of :data:`HOP` samples, its peak refined by a parabola through its neighbours.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> r = rng.standard_normal(4000) * np.repeat(rng.uniform(0, 1, 40), 100)
        >>> spectral_lag(r, np.concatenate([np.zeros(50), r]), 400)
        50
    """
    hops = -(-max_lag // HOP) + 1  # one hop beyond max_lag, to refine a peak at the edge
    a, b = log_spectrogram(reference), log_spectrogram(decoded)
    scores = sum(_cross_correlation(a[:, k], b[:, k], hops) for k in range(a.shape[1]))
    i = int(np.argmax(scores))
    step = 0.0
    if 0 < i < len(scores) - 1:
        curve = scores[i - 1] - 2 * scores[i] + scores[i + 1]
        step = 0.5 * (scores[i - 1] - scores[i + 1]) / curve if curve < 0 else 0.0
    return int(np.clip(round((i + step - hops) * HOP), -max_lag, max_lag))


def align(reference: np.ndarray, decoded: np.ndarray, max_lag: int = 400,
          lag: LagEstimator = spectral_lag) -> np.ndarray:
    """``decoded`` advanced by ``lag(reference, decoded, max_lag)`` samples, cut or zero-padded
    to the reference's length.

    Example:
        >>> r = np.sin(np.arange(1000) * 0.05) * np.hanning(1000)
        >>> d = np.concatenate([np.zeros(30), r])
        >>> float(np.abs(align(r, d, lag=waveform_lag) - r).max()) < 1e-9
        True
    """
    n = len(reference)
    shift = lag(reference, decoded, max_lag)
    out = np.zeros(n)
    src = decoded[max(shift, 0) :]
    dst = out[max(-shift, 0) :]
    m = min(len(src), len(dst))
    dst[:m] = src[:m]
    return out
