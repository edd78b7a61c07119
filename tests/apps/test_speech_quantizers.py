"""The envelope quantizers of [vali2021msvq]: scalar baseline, soft VQ, scaled-error quantizer."""

from __future__ import annotations

import math

import pytest
import torch

from vqkit import ResidualVQ, StraightThrough, VectorQuantizer
from vqkit.apps.speech.quantizers import ScaledError, SoftResidualVQ, UniformScalarQuantizer

torch.set_num_threads(1)


def test_scalar_quantizer_grid_exact_and_straight_through():
    sq = UniformScalarQuantizer(3, bits=3)
    sq.init_range_(torch.tensor([[0.0, -2.0, 1.0], [7.0, 5.0, 1.5]]), quantile=0.0)
    grid = sq.decode(torch.tensor([[0, 3, 7], [7, 0, 2]]))
    assert torch.allclose(grid, torch.tensor([[0.0, 1.0, 1.5], [7.0, -2.0, 1.0 + 2 / 14]]))
    assert torch.equal(sq.encode(grid), torch.tensor([[0, 3, 7], [7, 0, 2]]))
    x = torch.tensor([[0.4, 100.0, 1.2]], requires_grad=True)
    out = sq.train()(x)
    assert torch.allclose(out.quantized, torch.tensor([[0.0, 5.0, 1.2142857]]))  # clamped
    out.quantized.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    with pytest.raises(ValueError, match="indices"):
        sq.decode(torch.tensor([[0, 8, 0]]))


def test_soft_vq_training_output_is_the_softmin_average():
    vq = SoftResidualVQ(4, 8, 2, beta=0.1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        vq.codewords.mul_(100)
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1)) * 3
    out = vq.train()(x)
    r, expect = x, torch.zeros_like(x)
    for m in range(2):
        d = torch.cdist(r, vq.codewords[m]).pow(2)
        soft = torch.softmax(-0.1 * d, -1) @ vq.codewords[m]
        expect, r = expect + soft, r - soft
    assert torch.allclose(out.quantized, expect, atol=1e-4)
    out.quantized.sum().backward()
    assert vq.codewords.grad is not None and float(vq.codewords.grad.abs().sum()) > 0


def test_soft_vq_approaches_hard_vq_for_large_beta_and_eval_is_hard():
    vq = SoftResidualVQ(4, 16, 1, beta=1e7, generator=torch.Generator().manual_seed(0))
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(2)) / 16
    soft = vq.train()(x).quantized
    hard = vq.eval()(x).quantized
    assert torch.allclose(soft, hard, atol=1e-3)
    assert torch.equal(hard, vq.decode(vq.encode(x)))
    with pytest.raises(ValueError, match="beta"):
        SoftResidualVQ(4, 8, 1, beta=0.0)


def test_soft_vq_kmeans_init_matches_greedy_residual_search():
    g = torch.Generator().manual_seed(0)
    data = torch.randn(400, 4, generator=g)
    vq = SoftResidualVQ(4, 8, 2)
    vq.init_codebook_(data, generator=g)
    idx = vq.encode(data)
    first = torch.cdist(data, vq.codewords[0]).argmin(-1)
    assert torch.equal(idx[:, 0], first)
    mse = (vq.decode(idx) - data).pow(2).sum(-1).mean().detach()
    assert float(mse) < float(data.pow(2).sum(-1).mean()) * 0.6


@pytest.mark.parametrize("inner", [
    lambda: VectorQuantizer(4, 8, estimator=StraightThrough()),
    lambda: ResidualVQ(4, 8, 2),
])
def test_scaled_error_output_penalty_and_gradient(inner):
    q = ScaledError(inner(), penalty_dim=16)
    with torch.no_grad():
        q.log_gamma.fill_(math.log(0.5))
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    out = q.train()(x)
    torch.manual_seed(0)
    inner_out = q.inner(x)
    assert torch.allclose(out.quantized, x - 0.5 * (x - inner_out.quantized), atol=1e-6)
    penalty = float(out.losses["bitrate_penalty"].detach())
    assert math.isclose(penalty, 16.0, rel_tol=1e-6)  # -16 log2 0.5
    q.log_gamma.grad = None
    q.bitrate_penalty().backward()
    assert math.isclose(float(q.log_gamma.grad), -16 / math.log(2), rel_tol=1e-6)
    # Eval mode is the inner quantizer's: the codec itself is unchanged.
    assert torch.equal(q.eval()(x).quantized, q.inner.eval()(x).quantized)
    with pytest.raises(TypeError, match="inner"):
        ScaledError(torch.nn.Linear(2, 2))


def test_soft_rvq_init_reports_progress_over_all_stages_and_keeps_its_codewords():
    x = torch.randn(300, 4, generator=torch.Generator().manual_seed(1))
    seen = []
    vq = SoftResidualVQ(4, 8, 2, generator=torch.Generator().manual_seed(0))
    vq.init_codebook_(x, generator=torch.Generator().manual_seed(2),
                      progress=lambda d, t, i: seen.append((d, t, i["codebook"])))
    assert {t for _, t, _ in seen} == {56} and seen[-1][:2] == (56, 56)  # 2 x (8 + 20)
    assert [m for *_, m in seen] == sorted(m for *_, m in seen)
    ref = SoftResidualVQ(4, 8, 2, generator=torch.Generator().manual_seed(0))
    ref.init_codebook_(x, generator=torch.Generator().manual_seed(2))
    assert torch.equal(ref.codewords, vq.codewords)
    UniformScalarQuantizer(4, bits=3).init_codebook_(x, progress=lambda *a: seen.append(a))
