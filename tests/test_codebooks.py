"""Codebook learning: EMA converges to cluster means; usage counts batches; losses per estimator
(on the device of ``--device``; random draws stay on the CPU and are moved)."""

from __future__ import annotations

import pytest
import torch

from vqkit import EMA, Codebook, Gradient, RotationTrick, StraightThrough, VectorQuantizer


def test_ema_codewords_converge_to_the_cluster_means(generator, device):
    centres = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0], [-5.0, -5.0, -5.0]],
                           device=device)
    vq = VectorQuantizer(3, 4, estimator=StraightThrough(), learning=EMA(decay=0.9)).to(device)
    with torch.no_grad():  # start each codeword near (not at) its own centre
        vq.codebook.codewords.copy_(centres + torch.randn(4, 3, generator=generator).to(device))
    labels = torch.arange(4, device=device).repeat_interleave(256)
    seen = torch.zeros(4, 3, dtype=torch.float64, device=device)
    for _ in range(300):
        noise = torch.randn(len(labels), 3, generator=generator).to(device)
        x = centres[labels] + 0.5 * noise
        seen += x.double().reshape(4, 256, 3).mean(1)
        vq(x)
    torch.testing.assert_close(vq.codebook.codewords.double(), seen / 300, atol=0.02, rtol=0)


def test_ema_update_follows_the_formula(generator, device):
    decay, eps = 0.8, 1e-5
    cb = Codebook(3, 2, learning=EMA(decay=decay, eps=eps)).to(device)
    w0 = cb.codewords.clone()
    x = torch.randn(5, 2, generator=generator).to(device)
    idx = torch.tensor([0, 0, 2, 2, 2], device=device)
    cb.observe_(x, idx)
    counts = decay * torch.ones(3, device=device) + (1 - decay) * torch.tensor(
        [2.0, 0.0, 3.0], device=device)
    sums = decay * w0 + (1 - decay) * torch.stack(
        [x[:2].sum(0), torch.zeros(2, device=device), x[2:].sum(0)])
    n = counts.sum()
    smoothed = (counts + eps) / (n + 3 * eps) * n
    torch.testing.assert_close(cb.codewords, sums / smoothed[:, None])


def test_usage_counts_batches_not_samples(device):
    cb = Codebook(4, 2).to(device)
    cb.observe_(torch.zeros(5, 2, device=device), torch.tensor([1, 1, 1, 3, 3], device=device))
    cb.observe_(torch.zeros(2, 2, device=device), torch.tensor([1, 0], device=device))
    assert cb.usage.tolist() == [1, 2, 0, 1]
    assert int(cb.usage_batches) == 2


def test_gradient_codebook_is_a_parameter_ema_codebook_a_buffer():
    assert isinstance(Codebook(4, 2, learning=Gradient()).codewords, torch.nn.Parameter)
    ema = Codebook(4, 2, learning=EMA())
    assert not isinstance(ema.codewords, torch.nn.Parameter)
    buffers = {"codewords", "ema_counts", "ema_sums", "usage", "usage_batches"}
    assert buffers <= set(ema.state_dict())


@pytest.mark.parametrize("estimator", [StraightThrough(beta=0.5), RotationTrick(beta=0.5)])
def test_commitment_losses(estimator, generator, device):
    x = torch.randn(10, 4, generator=generator).to(device)
    grad_vq = VectorQuantizer(4, 8, estimator=estimator).to(device)
    out = grad_vq(x)
    q = grad_vq.codewords[out.indices].detach()
    commitment = ((x - q) ** 2).mean()
    torch.testing.assert_close(out.losses["commitment"], commitment)
    torch.testing.assert_close(out.losses["codebook"], commitment)
    torch.testing.assert_close(out.loss, 1.5 * commitment)
    ema_vq = VectorQuantizer(4, 8, estimator=estimator, learning=EMA()).to(device)
    out = ema_vq(x)
    assert set(out.losses) == {"commitment"}  # an EMA codebook needs no codebook loss
    torch.testing.assert_close(out.loss, 0.5 * out.losses["commitment"])


def test_codebook_argument_errors():
    with pytest.raises(ValueError, match="decay"):
        EMA(decay=1.0)
    with pytest.raises(ValueError, match="init"):
        Codebook(4, 2, init="zeros")
    with pytest.raises(TypeError, match="learning"):
        Codebook(4, 2, learning="ema")
    with pytest.raises(TypeError, match="estimator"):
        VectorQuantizer(4, 8, estimator="nsvq")
    with pytest.raises(ValueError, match="beta"):
        StraightThrough(beta=-1)
