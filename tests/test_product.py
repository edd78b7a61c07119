"""ProductVQ: exact per-sub-space search, one estimator over the whole vector, EMA targets
(on the device of ``--device``; random draws stay on the CPU and are moved)."""

from __future__ import annotations

import pytest
import torch

import vqkit
from vqkit import EMA, NoiseSubstitution, ProductVQ, StraightThrough
from vqkit.quantizers.application import PerStage

torch.set_num_threads(1)


def _pvq(device, **kw):
    pvq = ProductVQ(6, 8, 3, **kw).to(device)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for cb in pvq.codebooks:
            cb.overwrite_(torch.arange(8, device=device), torch.randn(8, 2, generator=g).to(device))
    return pvq


def test_encode_is_the_nearest_codeword_of_each_sub_vector(device):
    pvq = _pvq(device)
    x = torch.randn(200, 6).to(device)
    idx = pvq.encode(x)
    for m, cb in enumerate(pvq.codebooks):
        sub = x[:, 2 * m : 2 * m + 2].double()
        d = ((sub[:, None] - cb.codewords.detach().double()[None]) ** 2).sum(-1)
        assert torch.equal(idx[:, m], d.argmin(1))
    books = [cb.codewords.detach() for cb in pvq.codebooks]
    expected = torch.cat([b[idx[:, m]] for m, b in enumerate(books)], 1)
    assert torch.equal(pvq.decode(idx), expected)


def test_one_noise_substitution_over_the_whole_vector(device):
    pvq = _pvq(device, estimator=NoiseSubstitution(generator=torch.Generator().manual_seed(1)))
    x = torch.randn(50, 6).to(device)
    out = pvq(x)
    err = (x - pvq.decode(out.indices)).norm(dim=1)
    # ||x_tilde - x|| = ||x - x_hat|| over all D dims (not per sub-vector)
    torch.testing.assert_close((out.quantized - x).norm(dim=1), err, rtol=1e-5, atol=1e-6)
    g = torch.randn(50, 6).to(device)
    (out.quantized * g).sum().backward()
    u = (out.quantized.detach() - x) / err[:, None]
    coeff = -(g * u).sum(1, keepdim=True) / err[:, None]
    xerr = x - pvq.decode(out.indices).detach()
    for m, cb in enumerate(pvq.codebooks):
        part = (coeff * xerr)[:, 2 * m : 2 * m + 2]
        exp = torch.zeros(8, 2, device=device).index_add_(0, out.indices[:, m], part)
        torch.testing.assert_close(cb.codewords.grad, exp, rtol=1e-4, atol=1e-5)


def test_ema_moves_codewords_to_the_mean_of_their_sub_vectors(device):
    pvq = _pvq(device, estimator=StraightThrough(), learning=EMA(decay=0.0, eps=1e-9))
    x = torch.randn(80, 6).to(device)
    idx = pvq(x).indices
    for m, cb in enumerate(pvq.codebooks):
        for k in idx[:, m].unique():
            sel = idx[:, m] == k
            torch.testing.assert_close(cb.codewords[k], x[sel, 2 * m : 2 * m + 2].mean(0))


def test_per_stage_losses_are_summed_over_sub_vectors(device):
    pvq = _pvq(device, estimator=PerStage(StraightThrough(beta=1.0)))
    x = torch.randn(40, 6).to(device).requires_grad_()
    out = pvq(x)
    q = pvq.decode(out.indices).detach()
    per = [((x.detach() - q)[:, 2 * m : 2 * m + 2] ** 2).mean() for m in range(3)]
    torch.testing.assert_close(out.losses["commitment"], sum(per))
    out.quantized.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones(40, 6, device=device))


def test_seeded_nsvq_training_reaches_quality(device):
    data = torch.randn(4096, 4, generator=torch.Generator().manual_seed(0)).to(device)
    nsvq = NoiseSubstitution(generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    pvq = ProductVQ(4, 16, 2, estimator=nsvq).to(device)
    opt = torch.optim.Adam(pvq.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(2)
    for _ in range(600):
        batch = data[torch.randint(0, 4096, (128,), generator=g).to(device)]
        loss = ((pvq(batch).quantized - batch) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    mse = float(((pvq.eval()(data).quantized.detach() - data) ** 2).sum(-1).mean())
    # 4 bits per 2-D unit Gaussian sub-vector: Lloyd-Max gives ~0.23 per sub-vector (2 x 0.115)
    assert mse < 0.6, mse


def test_save_load_and_bad_dim(tmp_path, device):
    pvq = _pvq(device, learning=EMA())
    vqkit.save(pvq, tmp_path / "p.pt")
    back = vqkit.load(tmp_path / "p.pt", map_location=device)
    x = torch.randn(7, 6).to(device)
    assert torch.equal(back.eval()(x).quantized, pvq.eval()(x).quantized)
    with pytest.raises(ValueError, match="multiple of num_codebooks"):
        ProductVQ(7, 8, 2)
