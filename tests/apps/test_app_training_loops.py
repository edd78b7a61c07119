"""The apps' training runs through the one Trainer against the hand-written loops it replaced
(the oracles below): the same parameters, curves and replacement counts, bit for bit."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vqkit import VectorQuantizer
from vqkit.apps.image_codec.config import CodecConfig, QuantizerSpec, TrainConfig
from vqkit.apps.image_codec.data import PhotoCrops
from vqkit.apps.image_codec.model import ImageCodecModel
from vqkit.apps.image_codec.train import train as train_codec
from vqkit.apps.latent.generative import MappedVAE, train_mapped_vae, vae_loss
from vqkit.apps.latent.speech_vqvae import SpeechVQVAE, _crops, train_speech_vqvae
from vqkit.apps.latent.speech_vqvae import TrainConfig as VAEConfig
from vqkit.apps.speech.model import EnvelopeModel
from vqkit.apps.speech.train import TrainConfig as EnvelopeConfig
from vqkit.apps.speech.train import train as train_envelope


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_image_codec_equals_its_hand_written_loop():
    rng = np.random.default_rng(0)
    source = PhotoCrops([rng.random((40, 40, 3), np.float32) for _ in range(2)], 16)
    config = CodecConfig(tile=16, hidden=8, latent_dim=4, quantizer=QuantizerSpec(bits=5))
    tc = TrainConfig(steps=13, batch_size=4, replace_every=3, seed=2)
    got = train_codec(config, tc, source, log_every=4)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        model = ImageCodecModel(config, generator=torch.Generator().manual_seed(3))
    data, replace = torch.Generator().manual_seed(4), torch.Generator().manual_seed(5)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    losses, replaced, window = [], [], []
    model.train()
    for step in range(1, tc.steps + 1):
        x = source.sample(tc.batch_size, data)
        y, out = model(x)
        mse = F.mse_loss(y, x)
        opt.zero_grad(set_to_none=True)
        (mse + out.loss).backward()
        opt.step()
        window.append(float(mse.detach()))
        if step % 3 == 0 and step <= tc.steps - 6:
            replaced.append(int(model.quantizer.replace_dead_codes_(0.01, generator=replace)))
        if step % 4 == 0 or step == tc.steps:
            losses.append(sum(window) / len(window))
            window = []
    assert got.losses == losses and len(losses) == 4
    assert got.replaced == replaced and len(replaced) == 2 and replaced[0] > 0
    _same_state(got.model, model)
    assert not got.model.training


def test_envelope_training_equals_its_hand_written_loop():
    g = torch.Generator().manual_seed(0)
    frames = torch.randn(400, 160, generator=g) * torch.linspace(1, 0.01, 160)
    config = EnvelopeConfig(steps=24, batch_size=16, replace_every=5)

    torch.manual_seed(1)
    got = EnvelopeModel(VectorQuantizer(16, 8))
    log = train_envelope(got, frames, config, generator=torch.Generator().manual_seed(2))

    torch.manual_seed(1)
    model = EnvelopeModel(VectorQuantizer(16, 8))
    gen = torch.Generator().manual_seed(2)
    z = model.set_normalisation_(frames)
    model.quantizer.init_codebook_(z[torch.randperm(400, generator=gen)[:20000]], generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    bits, running, every = [], 0.0, 1
    model.train()
    for step in range(1, config.steps + 1):
        out = model(frames[torch.randint(0, 400, (16,), generator=gen)])
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        running += float(out.bits.detach())
        if step % every == 0:
            bits.append(running / every)
            running = 0.0
        if step % 5 == 0 and step <= 0.8 * config.steps:
            model.quantizer.replace_dead_codes_(generator=gen)
    assert log.every == every and log.bits == bits
    _same_state(got, model)


def test_mapped_vae_equals_its_hand_written_loop():
    images = torch.rand(37, 28, 28, generator=torch.Generator().manual_seed(0))
    kw = {"z_dim": 4, "w_dim": 8, "hidden": 32, "mapping_layers": 2}
    torch.manual_seed(1)
    got, history = train_mapped_vae(images, epochs=2, batch_size=16, progress=False,
                                    generator=torch.Generator().manual_seed(2), **kw)

    torch.manual_seed(1)
    model, gen = MappedVAE(**kw), torch.Generator().manual_seed(2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    expected = []
    model.train()
    for _ in range(2):
        perm, total = torch.randperm(37, generator=gen), 0.0
        for start in range(0, 37, 16):
            x = images[perm[start : start + 16]]
            logits, mu, logvar = model(x, gen)
            loss = vae_loss(logits, x, mu, logvar)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * x.shape[0]
        expected.append(total / 37)
    assert history == expected
    _same_state(got, model)


def test_speech_vqvae_equals_its_hand_written_loop():
    g = torch.Generator().manual_seed(0)
    mels = [torch.randn(n, 80, generator=g) for n in (30, 12, 41)]
    speakers = torch.tensor([0, 1, 0])
    cfg = VAEConfig(steps=205, batch=3, segment=8, channels=8, codebook_size=16)
    torch.manual_seed(1)
    got, history = train_speech_vqvae(mels, speakers, 2, cfg, torch.Generator().manual_seed(2),
                                      progress=False)

    torch.manual_seed(1)
    model, gen = SpeechVQVAE(80, 8, codebook_size=16, n_speakers=2), torch.Generator()
    gen.manual_seed(2)
    model.set_normalisation_(mels)
    with torch.no_grad():
        x, _ = _crops(mels, speakers, 128, 8, gen)
        model.vq.init_codebook_(model.encode(x).reshape(-1, model.vq.dim), generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    expected, running, replaced = [], 0.0, []
    model.train()
    for step in range(1, cfg.steps + 1):
        x, s = _crops(mels, speakers, 3, 8, gen)
        recon, out = model(x, s)
        mse = (recon - x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        (mse + out.loss).backward()
        opt.step()
        running += float(mse.detach())
        if step % 200 == 0:
            replaced.append(model.vq.replace_dead_codes_(0.01, generator=gen))
        if step % 100 == 0 or step == cfg.steps:
            expected.append(running / (100 if step % 100 == 0 else step % 100))
            running = 0.0
    assert history == expected and len(expected) == 3
    _same_state(got, model)
