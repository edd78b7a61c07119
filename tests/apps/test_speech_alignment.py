"""Aligning decoded speech to its reference: the waveform lag for waveform coders, the
spectrogram lag for vocoders (whose output keeps the envelope's course but not the phase)."""

from __future__ import annotations

import numpy as np
import pytest

from vqkit.apps.speech.alignment import (
    HOP,
    align,
    log_spectrogram,
    spectral_lag,
    waveform_lag,
)
from vqkit.data.speech import load_wav


def delayed(signal: np.ndarray, samples: int) -> np.ndarray:
    """``signal`` delayed by ``samples`` (advanced when negative)."""
    return np.concatenate([np.zeros(samples), signal]) if samples >= 0 else signal[-samples:]


@pytest.fixture(scope="module")
def vocoded():
    """WORLD analysis-synthesis of two codec2 test clips: same time axis, phase not kept."""
    pytest.importorskip("pyworld")
    from vqkit.apps.speech import world

    out = []
    for name in ("hts1a", "cross"):
        x = load_wav(f"/usr/share/codec2/wav/{name}.wav", 8000)[0].astype(np.float64)
        frames = world.quantize_side(world.analyse(x, 8000))
        out.append((x, world.synthesise(frames, 8000, len(x)).astype(np.float64)))
    return out


@pytest.mark.parametrize("shift", [0, 37, -53, 120, 399])
def test_spectral_lag_recovers_a_known_delay_of_vocoded_speech(vocoded, shift):
    for reference, decoded in vocoded:
        assert abs(spectral_lag(reference, delayed(decoded, shift), 400) - shift) <= 2


def test_waveform_lag_misses_the_delay_of_vocoded_speech(vocoded):
    """The case the spectral lag is for: the waveform peak is 12-16 samples off here."""
    for reference, decoded in vocoded:
        assert abs(waveform_lag(reference, delayed(decoded, 37), 400) - 37) > 8


@pytest.mark.parametrize("lag", [waveform_lag, spectral_lag])
def test_both_estimators_find_an_exact_copy_and_stay_within_max_lag(lag):
    rng = np.random.default_rng(1)
    loudness = np.repeat(rng.uniform(0.0, 1.0, 60), 100)  # 12.5 ms syllable-like steps
    reference = rng.standard_normal(6000) * loudness
    for shift in (-150, -1, 0, 1, 90):
        assert lag(reference, delayed(reference, shift), 200) == shift
    assert abs(lag(reference, delayed(reference, 300), 200)) <= 200


def test_align_shifts_and_cuts_to_the_reference_length():
    rng = np.random.default_rng(2)
    reference = rng.standard_normal(3000) * np.repeat(rng.uniform(0, 1, 30), 100)
    for shift in (-40, 0, 25):
        out = align(reference, delayed(reference, shift), 100, lag=spectral_lag)
        assert out.shape == reference.shape
        if shift >= 0:
            assert np.array_equal(out, reference)
        else:  # advanced: the first samples are lost, the tail is zero-padded
            assert np.array_equal(out[-shift:], reference[-shift:]) and not out[:-shift].any()
    constant = align(reference, reference[:2000], 100, lag=lambda r, d, m: -7)
    assert np.array_equal(constant[7:2007], reference[:2000]) and not constant[2007:].any()


def test_log_spectrogram_frames_floor_and_mean():
    x = np.sin(np.arange(4000) * 2 * np.pi * 1000 / 8000)
    spec = log_spectrogram(x)
    assert spec.shape == (1 + (4000 - 256) // HOP, 129)
    assert np.allclose(spec.mean(axis=0), 0.0, atol=1e-3)
    silent = log_spectrogram(np.concatenate([x, np.zeros(4000)]))
    assert np.ptp(silent, axis=0).max() <= 60.0 + 1e-3  # floored 60 dB below the peak
