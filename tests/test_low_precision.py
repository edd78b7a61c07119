"""Every quantizer x estimator x codebook learning trains and evaluates in a module cast to
bf16 and to fp16, and under bf16 autocast; statistics stay fp32 whatever the module's dtype.

The dtype rule (documented in :mod:`vqkit.quantizers.base`): ``quantized`` has the dtype of the
input in training and eval mode; ``decode`` returns the codebook's dtype; so
``eval()(x).quantized == decode(encode(x)).to(x.dtype)`` exactly, for every pair of dtypes.
"""

from __future__ import annotations

import pytest
import torch

from vqkit import EMA, Codebook, ResidualVQ, StraightThrough, VectorQuantizer

from .contract_cases import DIM
from .test_contract import COMBOS, IDS

LOW = [torch.bfloat16, torch.float16]


def build(combo, device):
    case, est, learn = combo
    torch.manual_seed(0)
    q = case.build(est(), learn())
    if q is None:
        pytest.skip(case.skip or "combination rejected by design")
    return q.to(device)


def statistics(q):
    """Every (name, buffer) that a codebook-learning strategy declares as statistics."""
    found = []
    for module in q.modules():
        if isinstance(module, Codebook):
            found += [(name, module._buffers[name]) for name in module.learning.statistics]
    return found


def check_step(q, x):
    """One training step and one eval pass of ``q`` on ``x``; the contract's dtype rule."""
    x = x.detach().requires_grad_()
    out = q.train()(x)
    assert out.quantized.dtype == x.dtype
    loss = out.quantized.float().pow(2).mean() + out.loss
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for p in q.parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all()
    for name, value in statistics(q):
        assert value.dtype == torch.float32, name
        assert torch.isfinite(value).all(), name
    q.eval()
    with torch.no_grad():
        y = q(x).quantized
        decoded = q.decode(q.encode(x))
    assert y.dtype == x.dtype
    assert torch.equal(y, decoded.to(x.dtype))


@pytest.mark.parametrize("dtype", LOW, ids=["bf16", "fp16"])
@pytest.mark.parametrize("combo", COMBOS, ids=IDS)
def test_trains_and_evaluates_in_a_low_precision_module(combo, dtype, device):
    q = build(combo, device).to(dtype)
    g = torch.Generator().manual_seed(1)
    check_step(q, torch.randn(4, 6, DIM, generator=g).to(device, dtype))


@pytest.mark.parametrize("combo", COMBOS, ids=IDS)
def test_trains_and_evaluates_under_bf16_autocast(combo, device):
    q = build(combo, device)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 6, DIM, generator=g).to(device)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        check_step(q, x)
        check_step(q, x.bfloat16())


@pytest.mark.parametrize("cast", ["to", "half", "bfloat16", "double"])
def test_casting_keeps_statistics_fp32_and_unrounded(cast, device):
    vq = VectorQuantizer(4, 8, estimator=StraightThrough(), learning=EMA(0.9)).to(device)
    with torch.no_grad():  # values that bf16 and fp16 would round
        vq.codebook.ema_sums.fill_(1.0 + 2.0**-20)
        vq.codebook.ema_counts.fill_(1000.0 + 2.0**-10)
    before = {n: b.clone() for n, b in statistics(vq)}
    if cast == "to":
        vq.to(device=device, dtype=torch.bfloat16)
    else:
        getattr(vq, cast)()
    for name, value in statistics(vq):
        assert value.dtype == torch.float32 and value.device.type == device.type
        assert torch.equal(value, before[name])
    assert vq.codebook.usage.dtype == torch.long
    # and a state_dict round trip into a bf16 module keeps them too
    other = VectorQuantizer(4, 8, estimator=StraightThrough(), learning=EMA(0.9)).bfloat16()
    other.load_state_dict(vq.state_dict())
    assert torch.equal(other.codebook.ema_sums, before["ema_sums"].cpu())


def clustered(n, g):
    centres = torch.randn(8, DIM, generator=g) * 4
    return centres[torch.randint(0, 8, (n,), generator=g)] + 0.1 * torch.randn(n, DIM, generator=g)


@pytest.mark.parametrize("dtype", LOW, ids=["bf16", "fp16"])
def test_ema_training_in_low_precision_follows_the_fp32_run(dtype, device):
    # 300 steps of 64 vectors. Each step moves the statistics by 1 % (decay 0.99), about the
    # resolution of bf16 (2^-8): bf16 statistics would stall or drift.
    g = torch.Generator().manual_seed(4)
    data = clustered(300 * 64, g).to(device)
    runs = {}
    for run_dtype in (torch.float32, dtype):
        torch.manual_seed(0)
        vq = ResidualVQ(DIM, 8, 2, estimator=StraightThrough(), learning=EMA(0.99)).to(device)
        vq.init_codebook_(data[:512], generator=torch.Generator().manual_seed(0))
        vq.to(run_dtype).train()
        for step in range(300):
            vq(data[step * 64 : (step + 1) * 64].to(run_dtype))
        runs[run_dtype] = vq
    ref, low = runs[torch.float32].codebooks[0], runs[dtype].codebooks[0]
    # Counts start at one per codeword and move toward the batch's counts (64 in all).
    assert ref.ema_counts.sum() == pytest.approx(64 * (1 - 0.99**300) + 8 * 0.99**300, rel=1e-4)
    torch.testing.assert_close(low.ema_counts, ref.ema_counts, rtol=0.02, atol=0.5)
    torch.testing.assert_close(low.codewords.float(), ref.codewords, rtol=0.02, atol=0.05)


@pytest.mark.parametrize("module_dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("input_dtype", [torch.float32, torch.float64, torch.bfloat16,
                                         torch.float16])
def test_dtype_rule(module_dtype, input_dtype, device):
    vq = VectorQuantizer(DIM, 16).to(device, module_dtype).eval()
    x = torch.randn(5, DIM, generator=torch.Generator().manual_seed(3)).to(device, input_dtype)
    decoded = vq.decode(vq.encode(x))
    assert decoded.dtype == module_dtype
    y = vq(x).quantized
    assert y.dtype == input_dtype
    assert torch.equal(y, decoded.to(input_dtype))
    if input_dtype == module_dtype:
        assert torch.equal(y, decoded)
    assert vq.train()(x).quantized.dtype == input_dtype


def test_deferred_initialisation_on_the_meta_device_still_works():
    # to_empty() (the deferred-initialisation / FSDP route) must not copy out of meta tensors.
    with torch.device("meta"):
        vq = VectorQuantizer(4, 8, estimator=StraightThrough(), learning=EMA(0.9))
    vq.to_empty(device="cpu")
    for name, value in statistics(vq):
        assert value.device.type == "cpu" and value.dtype == torch.float32, name
