"""The quantizer contract (README "A tour"), checked for every Case x estimator x codebook learning,
on the device of ``--device``."""

from __future__ import annotations

import itertools

import pytest
import torch

import vqkit
from vqkit import (
    EMA,
    DiVeQ,
    DiVeQDetach,
    Gradient,
    NoiseSubstitution,
    RotationTrick,
    StraightThrough,
)

from .contract_cases import CASES, DIM

ESTIMATORS = [NoiseSubstitution, StraightThrough, RotationTrick, DiVeQ, DiVeQDetach]
LEARNINGS = [Gradient, lambda: EMA(decay=0.9)]
COMBOS = list(itertools.product(CASES, ESTIMATORS, LEARNINGS))
IDS = [f"{c.name}-{e.__name__}-{'EMA' if i else 'Gradient'}"
       for (c, e, _), i in zip(COMBOS, [LEARNINGS.index(x[2]) for x in COMBOS], strict=True)]


@pytest.fixture(params=COMBOS, ids=IDS)
def quantizer(request, device):
    case, est, learn = request.param
    torch.manual_seed(0)
    q = case.build(est(), learn())
    if q is None:
        pytest.skip(case.skip or "combination rejected by design")
    q = q.to(device)
    q.case = case
    return q


def _x(generator, device, *lead):
    """CPU draws from ``generator`` (the same numbers on every device), moved to ``device``."""
    return torch.randn(*lead, DIM, generator=generator).to(device)


def test_shapes_and_dtypes(quantizer, generator, device):
    x = _x(generator, device, 3, 7).requires_grad_()
    out = quantizer.train()(x)
    assert out.quantized.shape == x.shape and out.quantized.dtype == x.dtype
    assert out.indices.shape[:2] == (3, 7)
    assert out.indices.shape[2:] == quantizer.index_shape
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    for value in out.losses.values():
        assert value.dim() == 0
    (out.quantized.sum() + out.loss).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_eval_is_deterministic_and_equals_decode_encode(quantizer, generator, device):
    quantizer.train()(_x(generator, device, 16))  # one training step first: state must not matter
    quantizer.eval()
    x = _x(generator, device, 4, 5)
    first, second = quantizer(x), quantizer(x)
    assert torch.equal(first.quantized, second.quantized)
    assert torch.equal(first.indices, second.indices)
    assert torch.equal(quantizer.decode(quantizer.encode(x)), first.quantized)
    assert torch.equal(quantizer.encode(x), first.indices)
    assert first.loss.item() == 0.0


def test_inputs_built_from_codewords_come_back_exactly(quantizer, generator):
    if quantizer.case.exact_inputs is None:
        pytest.skip(f"not idempotent by design: {quantizer.case.not_idempotent}")
    quantizer.eval()
    x = quantizer.case.exact_inputs(quantizer, generator)
    assert torch.equal(quantizer(x).quantized, x)


def test_mask_gives_minus_one_zero_output_and_no_loss(quantizer, generator, device):
    x = _x(generator, device, 2, 6)
    mask = torch.tensor([[True, False, True, True, False, True], [False] * 6], device=device)
    torch.manual_seed(1)
    masked = quantizer.train()(x, mask=mask)
    assert (masked.indices[~mask] == -1).all()
    assert (masked.indices[mask] >= 0).all()
    assert torch.equal(masked.quantized[~mask], torch.zeros_like(masked.quantized[~mask]))
    # Masked positions change nothing: garbage there gives the same loss and outputs.
    y = x.clone()
    y[~mask] = 1e3
    quantizer.load_state_dict(quantizer.state_dict())
    eval_x, eval_y = quantizer.eval()(x, mask=mask), quantizer(y, mask=mask)
    assert torch.equal(eval_x.quantized, eval_y.quantized)
    assert torch.equal(eval_x.indices, eval_y.indices)
    all_masked = quantizer.train()(x, mask=torch.zeros(2, 6, dtype=torch.bool, device=device))
    assert all_masked.loss.item() == 0.0 and (all_masked.indices == -1).all()


def test_decode_of_minus_one_is_zero(quantizer, device):
    idx = torch.full((3, *quantizer.index_shape), -1, dtype=torch.long, device=device)
    assert torch.equal(quantizer.decode(idx), torch.zeros(3, DIM, device=device))


def test_state_dict_and_save_load_round_trip(quantizer, generator, device, tmp_path):
    quantizer.train()(_x(generator, device, 32))
    x = _x(generator, device, 9)
    expected = quantizer.eval()(x)
    path = tmp_path / "q.pt"
    vqkit.save(quantizer, path)
    loaded = vqkit.load(path, map_location=device).eval()
    assert type(loaded) is type(quantizer)
    assert loaded.config() == quantizer.config()
    for (k1, v1), (k2, v2) in zip(
        quantizer.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert k1 == k2 and torch.equal(v1, v2)
    again = loaded(x)
    assert torch.equal(again.quantized, expected.quantized)
    assert torch.equal(again.indices, expected.indices)


def test_bad_inputs_raise_clear_errors(quantizer, device):
    with pytest.raises(ValueError, match=r"\(\.\.\., 8\)"):
        quantizer(torch.randn(4, DIM + 1, device=device))
    bad = torch.randn(4, DIM, device=device)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        quantizer(bad)
    bad[1, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        quantizer.encode(bad)
    with pytest.raises(TypeError, match="floating dtype"):
        quantizer(torch.ones(4, DIM, dtype=torch.long, device=device))
    with pytest.raises(TypeError, match="torch.Tensor"):
        quantizer([[0.0] * DIM])
    with pytest.raises(ValueError, match="mask must have shape"):
        quantizer(torch.randn(4, DIM, device=device),
                  mask=torch.ones(5, dtype=torch.bool, device=device))
    with pytest.raises(TypeError, match="bool"):
        quantizer(torch.randn(4, DIM, device=device), mask=torch.ones(4, device=device))


def test_bf16_inputs_and_autocast_keep_the_fp32_search(quantizer, generator, device):
    # bf16 in, bf16 out, finite gradients; under bf16 autocast the search still runs in fp32,
    # so eval mode picks the indices of the autocast-free call.
    x = _x(generator, device, 4, 5)
    xb = x.bfloat16().requires_grad_()
    out = quantizer.train()(xb)
    assert out.quantized.dtype == torch.bfloat16 and bool(torch.isfinite(out.loss))
    (out.quantized.float().sum() + out.loss).backward()
    assert bool(torch.isfinite(xb.grad).all())
    quantizer.eval()
    ref = quantizer(x)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        auto = quantizer(x)
    assert torch.equal(auto.indices, ref.indices)
    assert torch.equal(auto.quantized, ref.quantized)
