"""WORLD vocoder [morise2016world] front end (``pyworld``): f0, envelope, aperiodicity, synthesis.

Every 20 ms frame is described by

- the spectral envelope as WORLD's 16-dimensional coded envelope
  (``pyworld.code_spectral_envelope``, a mel-cepstral coding): this is what the VQ codes;
- f0 with 7 bits, 0 = unvoiced, else log-uniform on [60, 400] Hz;
- band aperiodicity in 4 equal bands of 1 kHz, 3 bits each, uniform on [-30, 0] dB.

pyworld's own aperiodicity coding has no bands at 8 kHz
(``get_num_aperiodicities(8000) == 0``), hence the band scheme here. Side information costs
``7 + 4 * 3 = 19`` bits per frame (950 bit/s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...data._errors import require_module

FRAME_MS = 20.0
ENVELOPE_DIMS = 16
F0_BITS, F0_MIN, F0_MAX = 7, 60.0, 400.0
AP_BANDS, AP_BITS, AP_FLOOR_DB = 4, 3, -30.0
SIDE_BITS = F0_BITS + AP_BANDS * AP_BITS
#: D4C's voicing threshold: every frame Harvest calls voiced stays voiced. D4C's own test
#: (``aperiodicity0 <= threshold`` marks a frame fully aperiodic; default 0.85) marks nearly
#: every frame aperiodic at 8 kHz, and below 15.8 kHz it is not even deterministic: D4CLoveTrain
#: sums its power spectrum up to the bin of 7.9 kHz, past the ``fft_size / 2 + 1`` bins it
#: computed, into uninitialised heap memory, so the ratio it tests depends on what the process
#: freed before (WORLD d4c.cpp as bundled with pyworld 0.3.5). With ``threshold=0`` that made
#: whole clips whispered now and then. No value, NaN and infinities included, is ``<= -inf``,
#: so with this threshold the garbage cannot reach the output.
D4C_NO_VOICING_TEST = -np.inf


def _pyworld():
    import warnings

    with warnings.catch_warnings():  # pyworld imports the deprecated pkg_resources
        warnings.simplefilter("ignore")
        return require_module("pyworld", "pip install 'setuptools<81' pyworld")


@dataclass
class WorldFrames:
    """Per-frame vocoder parameters: ``f0 (T,)`` Hz, ``coded (T, 16)``, ``band_ap (T, 4)`` dB."""

    f0: np.ndarray
    coded: np.ndarray
    band_ap: np.ndarray


def quantize_f0(f0: np.ndarray) -> np.ndarray:
    """7-bit f0 indices: 0 unvoiced, 1..127 log-uniform on [60, 400] Hz.

    Example:
        >>> idx = quantize_f0(np.array([0.0, 60.0, 400.0, 1000.0]))
        >>> idx.tolist(), np.round(dequantize_f0(idx), 1).tolist()
        ([0, 1, 127, 127], [0.0, 60.0, 400.0, 400.0])
    """
    levels = 2**F0_BITS - 1
    pos = np.log(np.clip(f0, F0_MIN, F0_MAX) / F0_MIN) / np.log(F0_MAX / F0_MIN)
    return np.where(f0 > 0, 1 + np.round(pos * (levels - 1)), 0).astype(np.int64)


def dequantize_f0(indices: np.ndarray) -> np.ndarray:
    levels = 2**F0_BITS - 1
    f0 = F0_MIN * (F0_MAX / F0_MIN) ** ((indices - 1) / (levels - 1))
    return np.where(indices > 0, f0, 0.0)


def quantize_ap(band_ap_db: np.ndarray) -> np.ndarray:
    """3-bit band aperiodicity indices, uniform on [-30, 0] dB."""
    levels = 2**AP_BITS - 1
    pos = (np.clip(band_ap_db, AP_FLOOR_DB, 0.0) - AP_FLOOR_DB) / -AP_FLOOR_DB
    return np.round(pos * levels).astype(np.int64)


def dequantize_ap(indices: np.ndarray) -> np.ndarray:
    return AP_FLOOR_DB + indices / (2**AP_BITS - 1) * -AP_FLOOR_DB


def fft_size(sample_rate: int) -> int:
    return int(_pyworld().get_cheaptrick_fft_size(sample_rate))


def analyse(audio: np.ndarray, sample_rate: int) -> WorldFrames:
    """WORLD analysis (Harvest f0, CheapTrick envelope, D4C aperiodicity) every 20 ms.

    Harvest decides voicing (see :data:`D4C_NO_VOICING_TEST`); the result depends on the input
    only, not on what ran before in the process.
    """
    pw = _pyworld()
    x = np.ascontiguousarray(audio, dtype=np.float64)
    f0, t = pw.harvest(x, sample_rate, frame_period=FRAME_MS, f0_floor=F0_MIN, f0_ceil=F0_MAX)
    sp = pw.cheaptrick(x, f0, t, sample_rate)
    ap = pw.d4c(x, f0, t, sample_rate, threshold=D4C_NO_VOICING_TEST)
    coded = pw.code_spectral_envelope(sp, sample_rate, ENVELOPE_DIMS)
    bands = np.array_split(np.arange(ap.shape[1]), AP_BANDS)
    band_ap = np.stack([10 * np.log10(np.maximum(ap[:, b].mean(1), 1e-6)) for b in bands], 1)
    return WorldFrames(f0, coded, band_ap)


def envelope(coded: np.ndarray, sample_rate: int) -> np.ndarray:
    """Power spectral envelope ``(T, fft/2 + 1)`` from coded envelopes."""
    pw = _pyworld()
    return pw.decode_spectral_envelope(
        np.ascontiguousarray(coded, dtype=np.float64), sample_rate, fft_size(sample_rate))


def synthesise(frames: WorldFrames, sample_rate: int, num_samples: int) -> np.ndarray:
    """WORLD synthesis, cut or padded to ``num_samples``."""
    pw = _pyworld()
    n_fft = fft_size(sample_rate)
    sp = envelope(frames.coded, sample_rate)
    bins = n_fft // 2 + 1
    centres = (np.arange(AP_BANDS) + 0.5) * bins / AP_BANDS
    ap_db = np.stack([np.interp(np.arange(bins), centres, row) for row in frames.band_ap])
    ap = np.ascontiguousarray(10 ** (ap_db / 10))
    y = pw.synthesize(np.ascontiguousarray(frames.f0, dtype=np.float64), sp, ap, sample_rate,
                      frame_period=FRAME_MS)
    out = np.zeros(num_samples)
    out[: min(num_samples, len(y))] = y[:num_samples]
    return out.astype(np.float32)


def quantize_side(frames: WorldFrames) -> WorldFrames:
    """The frames with f0 and band aperiodicity replaced by their quantized values."""
    return WorldFrames(dequantize_f0(quantize_f0(frames.f0)), frames.coded,
                       dequantize_ap(quantize_ap(frames.band_ap)))


def log_spectral_distortion(coded: np.ndarray, quantized: np.ndarray, sample_rate: int,
                            ) -> np.ndarray:
    """Per-frame RMS dB difference of the two decoded WORLD envelopes over all bins."""
    a = envelope(coded, sample_rate)
    b = envelope(quantized, sample_rate)
    return np.sqrt(np.mean((10 * np.log10(a / b)) ** 2, axis=1))
