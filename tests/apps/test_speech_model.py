"""End-to-end training of the envelope codec model on real speech (seeded, small)."""

from __future__ import annotations

import pytest
import torch

from vqkit import NoiseSubstitution, ResidualVQ, StraightThrough
from vqkit.apps.speech import data as speech_data
from vqkit.apps.speech.model import EnvelopeModel, gaussian_bits, log_spectral_distortion
from vqkit.apps.speech.train import TrainConfig, train

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def frames():
    g = torch.Generator().manual_seed(0)
    files = speech_data.select_files(("asterisk-en", "fillets-cs"), 4, g)
    return speech_data.frame_files(files).coefficients


@torch.no_grad()
def _eval_bits(model, frames):
    q = model.decode(model.encode(frames))
    return float(gaussian_bits(frames, model.envelope.envelope(q)).mean())


def test_frames_are_active_mdct_frames_of_the_training_corpora(frames):
    assert frames.shape[1] == 160 and frames.shape[0] > 300
    assert torch.isfinite(frames).all()
    energy = frames.pow(2).mean(-1)
    assert float(energy.min()) > 0


@pytest.mark.parametrize("estimator", [NoiseSubstitution, StraightThrough])
def test_gradients_reach_a_b_and_codebooks(frames, estimator):
    model = EnvelopeModel(ResidualVQ(16, 8, 2, estimator=estimator()))
    model.set_normalisation_(frames)
    out = model.train()(frames[:64])
    out.loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_training_lowers_spectral_bits_and_more_stages_lower_lsd(frames):
    g = torch.Generator().manual_seed(0)
    lsd = {}
    for stages in (1, 2):
        model = EnvelopeModel(ResidualVQ(16, 16, stages, estimator=NoiseSubstitution(
            generator=torch.Generator().manual_seed(1))))
        train(model, frames, TrainConfig(steps=0), generator=g)  # k-means initialisation only
        before = _eval_bits(model, frames)
        train(model, frames, TrainConfig(steps=150, batch_size=128, lr=3e-3,
                                         kmeans_init=False), generator=g)
        after = _eval_bits(model, frames)
        # End to end (A, B and codebooks) the coding cost of the spectrum falls (measured:
        # by about 70 bits/frame with one stage and 24 with two).
        assert after < before - 10.0, (stages, before, after)
        with torch.no_grad():
            lb = model.envelope.log_bands(frames.pow(2))
            lsd[stages] = float(log_spectral_distortion(lb, model.decode(model.encode(frames)))
                                .mean())
    assert lsd[2] < lsd[1] < 15.0
