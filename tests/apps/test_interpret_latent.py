"""vqkit.apps.latent: log-mel, phone groups, alignment, contiguity metrics, the two models."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from vqkit.apps.latent import purity
from vqkit.apps.latent.alignment import (
    PHONE_GROUPS,
    Segment,
    frame_labels,
    normalise_text,
    phone_group,
)
from vqkit.apps.latent.generative import MappedVAE, train_mapped_vae, vae_loss
from vqkit.apps.latent.logmel import hz_to_mel, log_mel, mel_filterbank, mel_to_hz
from vqkit.apps.latent.speech_vqvae import TrainConfig, train_speech_vqvae

torch.set_num_threads(1)


# ---------------------------------------------------------------- log-mel
def test_mel_scale_round_trip_and_filter_peaks():
    f = torch.tensor([0.0, 440.0, 1000.0, 7999.0], dtype=torch.float64)
    assert torch.allclose(mel_to_hz(hz_to_mel(f)), f, atol=1e-9)
    fb = mel_filterbank(80, 512, 16000, fmin=50.0)
    edges = mel_to_hz(torch.linspace(float(hz_to_mel(50.0)), float(hz_to_mel(8000.0)), 82))
    freqs = torch.linspace(0, 8000, 257, dtype=torch.float64)
    for band in (5, 40, 79):
        # The bin nearest the band's centre frequency is where the triangle peaks.
        assert int(fb[band].argmax()) == int((freqs - edges[band + 1]).abs().argmin())
    with pytest.raises(ValueError, match="fmin"):
        mel_filterbank(80, 512, 16000, fmin=9000.0)


def test_log_mel_matches_a_direct_dft_of_one_frame():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, generator=g) * 0.1
    m = log_mel(x, preemphasis=0.0)
    assert m.shape == (1 + 4000 // 160, 80)
    t = 10  # frame centred at sample 1600, window 400, FFT 512 (centre padding 256)
    frame = x[1600 - 256 : 1600 + 256].numpy().astype(np.float64)
    win = np.zeros(512)
    n = np.arange(400)
    win[56:456] = 0.5 - 0.5 * np.cos(2 * np.pi * n / 400)  # periodic Hann, centred
    power = np.abs(np.fft.rfft(frame * win)) ** 2
    ref = np.log(np.maximum(mel_filterbank(80, 512, 16000).double().numpy() @ power, 1e-5))
    assert np.allclose(m[t].double().numpy(), ref, atol=1e-3)


def test_log_mel_of_a_tone_peaks_at_its_band():
    x = torch.sin(2 * math.pi * 1000 * torch.arange(16000) / 16000)
    peak = int(log_mel(x, preemphasis=0.0)[50].argmax())
    centres = mel_to_hz(torch.linspace(float(hz_to_mel(50.0)), float(hz_to_mel(8000.0)), 82))[1:-1]
    assert abs(float(centres[peak]) - 1000.0) < 60.0
    with pytest.raises(ValueError, match="audio"):
        log_mel(torch.zeros(2, 10))


# ---------------------------------------------------------------- phone groups and alignment
def test_phone_groups_cover_the_cmu_phone_set_once():
    cmu = ["AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F",
           "G", "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S",
           "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH"]
    assert len(cmu) == 39
    assert sorted(p for ps in PHONE_GROUPS.values() for p in ps) == sorted(cmu + ["SIL"])
    assert phone_group("er1") == "approximants" and phone_group("+SPN+") is None


def test_frame_labels_and_text_normalisation():
    segs = [Segment("SIL", 0, 3), Segment("S", 3, 4), Segment("IY", 4, 9)]
    assert frame_labels(segs, 5, stride=2) == ["silence", "silence", "vowels", "vowels",
                                               "vowels"]
    assert frame_labels(segs, 3) == ["silence"] * 3
    vocab = {"press", "two", "zero", "for", "operator", "party's"}
    assert normalise_text("For an operator, press 20.", vocab) is None  # 'an' unknown
    assert normalise_text("Press 20 for operator!", vocab) == "press two zero for operator"
    assert normalise_text("[beep]", vocab) is None


def test_pocketsphinx_alignment_of_a_librivox_clip():
    pytest.importorskip("pocketsphinx")
    from vqkit.apps.latent.alignment import LIBRIVOX, Aligner, known_texts
    from vqkit.data.speech import load_wav

    path = LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0880.wav"
    if not path.is_file():
        pytest.skip("pocketsphinx-testdata is not installed")
    texts = known_texts()
    assert texts[path] == "he was not an ill disposed young man"
    aligner = Aligner()
    audio, _ = load_wav(path, 16000)
    segs = aligner.align(audio, normalise_text(texts[path], aligner.vocabulary))
    speech = [s.phone for s in segs if s.phone != "SIL"]
    assert speech[:2] == ["HH", "IY"] and speech[-3:] == ["M", "AE", "N"]
    assert all(a.end == b.start for a, b in itertools.pairwise(segs))  # contiguous
    assert abs(segs[-1].end - len(audio) / 160) <= 3  # 10 ms frames cover the clip
    assert all(phone_group(s.phone) is not None for s in segs)


# ---------------------------------------------------------------- contiguity metrics
def test_purity_metrics_against_brute_force():
    g = torch.Generator().manual_seed(1)
    k, width = 12, 3
    idx = torch.randint(k, (200,), generator=g)
    lab = torch.randint(3, (200,), generator=g)
    share, start = purity.best_range(idx, k, width)
    brute = max(float(((idx >= s) & (idx < s + width)).double().mean())
                for s in range(k - width + 1))
    assert share == pytest.approx(brute) and purity.best_range(idx, k, width)[1] == start
    p = purity.range_purity(idx, lab, k, width)
    majority = sum(int(torch.bincount(lab[idx // width == r], minlength=3).max())
                   for r in range(k // width))
    assert p == pytest.approx(majority / 200)
    acc, t = purity.best_threshold_split(idx, lab == 0)
    a, b = idx[lab == 0], idx[lab != 0]
    best = max(max(0.5 * ((a < s).double().mean() + (b >= s).double().mean()),
                   0.5 * ((a >= s).double().mean() + (b < s).double().mean()))
               for s in range(k + 1))
    assert acc == pytest.approx(float(best))
    perm = purity.permuted(idx, k, g)
    cells = purity.range_purity(idx, lab, k, 1)
    assert purity.range_purity(perm, lab, k, 1) == pytest.approx(cells)
    with pytest.raises(ValueError, match="width"):
        purity.best_range(idx, k, 0)
    with pytest.raises(ValueError, match="indices"):
        purity.range_purity(torch.tensor([k]), torch.tensor([0]), k, 1)


# ---------------------------------------------------------------- models
def test_speech_vqvae_learns_synthetic_log_mels():
    torch.manual_seed(0)  # the layers' initialisation
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 80, generator=g)
    mels = [base[torch.randint(4, (80,), generator=g)].repeat_interleave(2, 0) for _ in range(6)]
    cfg = TrainConfig(steps=150, batch=8, segment=32, lr=3e-3, channels=16, codebook_size=16)
    model, hist = train_speech_vqvae(mels, torch.tensor([0, 1] * 3), 2, cfg, g, progress=False)
    variance = float(torch.cat(mels).var(0).mean())
    # Well below the frames' variance, the MSE of always outputting the mean frame.
    assert hist[-1] < 0.6 * variance and hist[-1] < hist[0]
    z = model.encode(mels[0][None])
    assert z.shape == (1, 80, 64)
    with pytest.raises(ValueError, match="speakers"):
        train_speech_vqvae(mels, torch.tensor([0]), 1, cfg, g, progress=False)


def test_vae_loss_formula_and_training():
    torch.manual_seed(0)
    x = torch.tensor([[[1.0, 0.0]]]).expand(1, 1, 2)
    logits = torch.tensor([[[0.0, 0.0]]])
    mu, logvar = torch.tensor([[1.0]]), torch.tensor([[0.0]])
    # BCE(0 logits) = 2 ln 2; KL(N(1, 1) || N(0, 1)) = 0.5.
    assert float(vae_loss(logits, x, mu, logvar)) == pytest.approx(2 * math.log(2) + 0.5)
    g = torch.Generator().manual_seed(0)
    imgs = (torch.rand(256, 28, 28, generator=g) > 0.7).float()
    imgs[:128, :14] = 0.0
    vae, hist = train_mapped_vae(imgs, epochs=4, batch_size=64, generator=g, progress=False,
                                 z_dim=4, w_dim=8, mapping_layers=2, hidden=64)
    assert hist[-1] < hist[0]
    assert vae.sample_w(5, g, truncation=0.5).shape == (5, 8)
    assert isinstance(vae, MappedVAE)
    with pytest.raises(ValueError, match="images"):
        train_mapped_vae(imgs[:, :10], epochs=1, generator=g)
