"""MDCT framing and the trainable band envelope of the speech codec ([vali2021msvq])."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vqkit.apps.speech.envelope import ENERGY_FLOOR, BandEnvelope
from vqkit.apps.speech.mdct import MDCT, flat_top_sine_window
from vqkit.apps.speech.model import gaussian_bits, log_spectral_distortion

torch.set_num_threads(1)


def test_window_is_30ms_flat_top_half_sine_with_princen_bradley():
    w = flat_top_sine_window(160, 80)  # 8 kHz: 20 ms hop, 10 ms slopes
    nonzero = torch.nonzero(w > 0).squeeze(1)
    assert nonzero.numel() == 240  # 30 ms at 8 kHz
    assert torch.all(w[120:200] == 1.0)  # flat top between the slopes
    assert torch.allclose(w, w.flip(0))  # symmetric (needed for TDAC)
    assert torch.allclose(w[:160] ** 2 + w[160:] ** 2, torch.ones(160, dtype=w.dtype))
    assert math.isclose(float(w[40]), math.sin(math.pi * 0.5 / 160), rel_tol=1e-12)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_mdct_perfect_reconstruction(rate):
    mdct = MDCT(rate)
    g = torch.Generator().manual_seed(0)
    for length in (1, mdct.hop, 3 * mdct.hop + 7, 5000):
        x = torch.randn(length, generator=g, dtype=torch.float64)
        c = mdct.forward(x)
        assert c.shape == (mdct.num_frames(length), mdct.hop)
        assert torch.allclose(mdct.inverse(c, length), x, atol=1e-10)


def test_mdct_reconstructs_real_speech_and_is_energy_preserving():
    from vqkit.data.speech import load_wav

    audio, _ = load_wav("/usr/share/codec2/wav/hts1a.wav", 8000)
    x = torch.from_numpy(audio).double()
    mdct = MDCT(8000)
    c = mdct.forward(x)
    assert torch.allclose(mdct.inverse(c, len(x)), x, atol=1e-9)
    # Tight frame with orthonormal scaling: sum of squared coefficients = signal energy.
    assert math.isclose(float(c.pow(2).sum()), float(x.pow(2).sum()), rel_tol=1e-9)


def test_mdct_rejects_bad_shapes():
    mdct = MDCT(8000)
    with pytest.raises(ValueError, match="1-D"):
        mdct.forward(torch.zeros(2, 100))
    with pytest.raises(ValueError, match=r"\(frames, 160\)"):
        mdct.inverse(torch.zeros(3, 10), 100)


def test_band_envelope_matches_dense_matrices():
    env = BandEnvelope(160, 16)
    with torch.no_grad():
        env.log_a.normal_(generator=torch.Generator().manual_seed(1))
        env.log_b.normal_(generator=torch.Generator().manual_seed(2))
    x = torch.rand(5, 160, generator=torch.Generator().manual_seed(3))
    y = env.log_bands(x)
    assert torch.allclose(y, torch.log(x @ env.matrix_a().T + ENERGY_FLOOR), atol=1e-6)
    s = env.envelope(y)
    assert torch.allclose(s, y.exp() @ env.matrix_b().T + ENERGY_FLOOR, rtol=1e-5)
    assert env.matrix_a().shape == (16, 160) and env.matrix_b().shape == (160, 16)


def test_initial_envelope_is_band_mean_energy():
    env = BandEnvelope(160, 16)
    x = torch.rand(4, 160, generator=torch.Generator().manual_seed(0))
    means = x.reshape(4, 16, 10).mean(-1)
    assert torch.allclose(env.log_bands(x), torch.log(means + ENERGY_FLOOR), atol=1e-6)


def test_gaussian_bits_gradient_matches_formula_and_vanishes_at_band_energy():
    x = torch.randn(3, 160, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    s = torch.rand(3, 160, dtype=torch.float64) + 0.5
    s.requires_grad_(True)
    gaussian_bits(x, s).sum().backward()
    formula = (0.5 / s - x.pow(2) / (2 * s.pow(2))) / math.log(2)
    assert torch.allclose(s.grad, formula.detach())
    # With a flat band envelope the bits are minimised at the band's mean energy.
    q = torch.log(x.pow(2).reshape(3, 16, 10).mean(-1)).requires_grad_(True)
    env = q.exp().repeat_interleave(10, dim=-1)
    gaussian_bits(x, env).sum().backward()
    assert float(q.grad.abs().max()) < 1e-9


def test_log_spectral_distortion_oracle():
    a = torch.zeros(2, 16)
    b = a.clone()
    b[0, 0] = math.log(10.0)  # one band 10 dB off
    lsd = log_spectral_distortion(a, b)
    assert np.allclose(lsd.numpy(), [math.sqrt(100 / 16), 0.0], atol=1e-5)
