"""Every estimator stays finite, with a bounded gradient, on the inputs real training makes.

Degenerate cases: ``x = 0`` (a ReLU output, unmasked padding), ``x = q`` exactly, ``x = -q``,
``||x - q||`` below 1e-30, ``||x||`` above 1e15; in fp32, bf16 and fp16 (a case whose input is
not finite in a dtype, 1e16 in fp16, is skipped: the layers refuse non-finite input). The
bound, stated in :mod:`vqkit.functional.estimators`: the gradient reaching ``x`` is at most
``C ||g||`` row by row, where ``g`` is the gradient reaching the output (C = 1 for STE, 2 for
NSVQ and the DiVeQ family, ``max_gain`` for the rotation trick), and the gradient reaching a
codeword is at most ``||g||``.
"""

from __future__ import annotations

import pytest
import torch

from vqkit import (
    DiVeQ,
    DiVeQDetach,
    MSEFit,
    NoiseSubstitution,
    RotationTrick,
    SFDiVeQ,
    StraightThrough,
    VectorQuantizer,
)
from vqkit.functional import estimators as fe

Q = [1.0, 2.0, 0.5, -1.0]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def degenerate_x(case: str) -> torch.Tensor:
    q = torch.tensor(Q, dtype=torch.float64)
    direction = torch.tensor([0.3, -0.2, 0.9, 0.1], dtype=torch.float64)
    return {
        "zero": torch.zeros(4, dtype=torch.float64),
        "equal": q.clone(),
        "opposite": -q,
        "within-1e-30": q + 1e-31 * direction,
        "tiny": 1e-8 * direction,
        "huge": 1e16 * direction,
    }[case]


CASES = ["zero", "equal", "opposite", "within-1e-30", "tiny", "huge"]
# (estimator, bound on ||dL/dx|| / ||g||, bound on ||dL/dq|| / ||g||)
ESTIMATORS = [
    (StraightThrough(), 1.0, 0.0),
    (NoiseSubstitution(generator=torch.Generator().manual_seed(0)), 2.0, 1.0),
    (RotationTrick(), fe.ROTATION_MAX_GAIN, 0.0),
    (RotationTrick(max_gain=5.0), 5.0, 0.0),
    (DiVeQ(generator=torch.Generator().manual_seed(0)), 2.0, 1.0),
    (DiVeQDetach(), 2.0, 1.0),
    (SFDiVeQ(generator=torch.Generator().manual_seed(0)), 2.0, 1.0),
    (MSEFit(), 0.0, 1.0),
]
SLACK = 1.02  # rounding of a gradient cast back to bf16 (2^-8)


def inputs(case: str, dtype: torch.dtype, device: torch.device):
    x = degenerate_x(case).to(dtype)
    if not torch.isfinite(x).all():
        pytest.skip(f"{case} is not finite in {dtype}")
    q = torch.tensor(Q, dtype=torch.float64).to(dtype)
    return x[None].to(device), q[None].to(device)


def assert_bounded(grad, g, bound, what):
    if grad is None:
        assert bound == 0.0 or what == "q", what
        return
    assert torch.isfinite(grad).all(), (what, grad)
    limit = bound * g.float().norm(dim=-1) * SLACK + 1e-30
    assert (grad.float().norm(dim=-1) <= limit).all(), (what, grad.float().norm(dim=-1), limit)


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("entry", ESTIMATORS, ids=lambda e: repr(e[0]))
def test_estimator_output_and_gradient_stay_bounded(entry, case, dtype, device):
    estimator, x_bound, q_bound = entry
    x, q = inputs(case, dtype, device)
    x.requires_grad_()
    q.requires_grad_()
    out = estimator(x, q, True)
    assert torch.isfinite(out.quantized).all()
    assert torch.isfinite(out.loss)
    g = torch.tensor([[0.7, -0.4, 0.2, 1.1]], device=device)
    out.quantized.backward(g.to(out.quantized.dtype))
    assert_bounded(x.grad, g, x_bound, "x")
    assert_bounded(q.grad, g, q_bound, "q")


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("case", CASES)
def test_sf_diveq_segment_stays_bounded(case, dtype, device):
    x, start = inputs(case, dtype, device)
    end = (start.double() * -0.5).to(dtype).requires_grad_()
    start.requires_grad_()
    x.requires_grad_()
    lam = torch.tensor([0.3], device=device)
    out = SFDiVeQ(generator=torch.Generator().manual_seed(0)).segment(x, start, end, lam)
    assert torch.isfinite(out.quantized).all()
    g = torch.tensor([[0.7, -0.4, 0.2, 1.1]], device=device)
    out.quantized.backward(g.to(out.quantized.dtype))
    assert_bounded(x.grad, g, 2.0, "x")
    assert_bounded(start.grad, g, 1.0, "start")
    assert_bounded(end.grad, g, 1.0, "end")


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("entry", ESTIMATORS[:6], ids=lambda e: repr(e[0]))
def test_through_the_layer(entry, case, dtype, device):
    # The degenerate row sits in a batch of ordinary rows, as in a real layer.
    estimator, x_bound, _ = entry
    x_row, q = inputs(case, dtype, device)
    vq = VectorQuantizer(4, 2, estimator=estimator).to(device, dtype)
    with torch.no_grad():
        vq.codebook.codewords.copy_(torch.cat([q, -3 * q.abs() - 40]))
    g = torch.Generator().manual_seed(0)
    ordinary = (q.float().cpu() + 0.3 * torch.randn(5, 4, generator=g)).to(device, dtype)
    x = torch.cat([x_row, ordinary]).requires_grad_()
    out = vq.train()(x)
    assert torch.isfinite(out.quantized).all() and torch.isfinite(out.loss)
    up = torch.randn(6, 4, generator=g).to(device)
    out.quantized.backward(up.to(out.quantized.dtype))
    assert_bounded(x.grad, up, x_bound, "x")
    grad = vq.codebook.codewords.grad
    if grad is not None:
        assert torch.isfinite(grad).all()


def test_rotation_gives_a_zero_row_at_most_max_gain_times_its_gradient():
    # The reported case: one all-zero row in a batch got a gradient of 1e10.
    vq = VectorQuantizer(4, 8, estimator=RotationTrick())
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    x[3] = 0.0
    x.requires_grad_()
    vq.train()(x).quantized.sum().backward()
    assert x.grad[3].norm() <= fe.ROTATION_MAX_GAIN * 2.0 * SLACK  # ||g|| = 2 for .sum()
    assert torch.isfinite(x.grad).all()


def test_rotation_is_exactly_orthogonal_at_the_antipode():
    # x = -q: e + q^ vanishes; the two-reflection form stays orthogonal (gain 1 here).
    q = torch.tensor([Q])
    x = (-q).requires_grad_()
    g = torch.tensor([[0.7, -0.4, 0.2, 1.1]])
    fe.rotate_to(x, q).backward(g)
    torch.testing.assert_close(x.grad.norm(), g.norm())
