"""Estimators against the formulas of NSVQ [vali2022nsvq], the rotation trick, DiVeQ [vali2026diveq]
(on the device of ``--device``; random draws stay on the CPU and are moved)."""

from __future__ import annotations

import pytest
import torch

from vqkit.functional import estimators as fe


def _draw(generator, *shape, device):
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(device)


def _pair(generator, device, n=64, d=16):
    x = _draw(generator, n, d, device=device)
    q = _draw(generator, n, d, device=device)
    return x, q


def test_nsvq_error_norm_equals_the_real_error(generator, device):
    x, q = _pair(generator, device)
    noise = _draw(generator, *x.shape, device=device)
    out = fe.noise_substitution(x, q, noise)
    torch.testing.assert_close((out - x).norm(dim=1), (x - q).norm(dim=1), rtol=1e-12, atol=0)


def test_nsvq_mean_over_draws_tends_to_x(generator, device):
    x, q = _pair(generator, device, n=4, d=8)
    draws = 40000
    noise = _draw(generator, draws, 4, 8, device=device)
    outs = fe.noise_substitution(x.expand(draws, 4, 8), q.expand(draws, 4, 8), noise)
    err = (outs.mean(0) - x).norm(dim=1) / (x - q).norm(dim=1)
    # The relative error of a mean of 40000 unit directions is about 1/sqrt(40000 * 8).
    assert err.max() < 0.02


def test_nsvq_gradients_equal_the_closed_form(generator, device):
    x, q = _pair(generator, device)
    noise = _draw(generator, *x.shape, device=device)
    g = _draw(generator, *x.shape, device=device)
    x.requires_grad_()
    q.requires_grad_()
    fe.noise_substitution(x, q, noise).backward(g)
    u = noise / noise.norm(dim=1, keepdim=True)
    r = (x - q).detach().norm(dim=1, keepdim=True)
    gu = (g * u).sum(1, keepdim=True)
    expected_q = -(gu / r) * (x - q).detach()
    expected_x = g + (gu / r) * (x - q).detach()
    torch.testing.assert_close(q.grad, expected_q, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(x.grad, expected_x, rtol=1e-10, atol=1e-12)


def test_nsvq_gradient_is_finite_at_zero_error(device):
    x = torch.ones(2, 4, device=device, requires_grad=True)
    q = torch.ones(2, 4, device=device, requires_grad=True)
    fe.noise_substitution(x, q, torch.randn(2, 4).to(device)).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(q.grad).all()


def test_rotation_trick_forward_is_q_and_gradient_is_the_rotation(generator, device):
    x, q = _pair(generator, device, n=32, d=6)
    g = _draw(generator, *x.shape, device=device)
    x.requires_grad_()
    q.requires_grad_()
    out = fe.rotate_to(x, q)
    assert torch.equal(out, q)  # forward is exactly q
    out.backward(g)
    assert q.grad is None or torch.count_nonzero(q.grad) == 0
    for i in range(x.shape[0]):
        xi, qi = x[i].detach(), q[i].detach()
        e, qh = xi / xi.norm(), qi / qi.norm()
        r = (e + qh) / (e + qh).norm()
        eye = torch.eye(len(xi), dtype=torch.float64, device=device)
        rot = eye - 2 * torch.outer(r, r) + 2 * torch.outer(qh, e)
        lam = qi.norm() / xi.norm()
        # R maps x to q up to the scale, and the gradient is lambda R^T g
        # ([fifty2024rotation] eq. (4)).
        torch.testing.assert_close(lam * rot @ xi, qi, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(x.grad[i], lam * rot.T @ g[i], rtol=1e-10, atol=1e-10)


def test_rotation_trick_preserves_angle_and_norm_ratio(generator, device):
    x, q = _pair(generator, device, n=16, d=5)
    g = _draw(generator, *x.shape, device=device)
    x.requires_grad_()
    fe.rotate_to(x, q).backward(g)
    # A rotation keeps norms: ||grad_x|| = (||q||/||x||) ||g||.
    ratio = x.grad.norm(dim=1) / g.norm(dim=1)
    torch.testing.assert_close(ratio, q.norm(dim=1) / x.detach().norm(dim=1))


def test_straight_through_forward_q_gradient_identity(generator, device):
    x, q = _pair(generator, device)
    x.requires_grad_()
    out = fe.straight_through(x, q)
    assert torch.equal(out, q)
    g = _draw(generator, *x.shape, device=device)
    out.backward(g)
    assert torch.equal(x.grad, g)


@pytest.mark.parametrize("sigma", [1e-1, 1e-3, 1e-6])
def test_diveq_forward_tends_to_q_as_sigma_goes_to_zero(sigma, generator, device):
    x, q = _pair(generator, device)
    noise = sigma * _draw(generator, *x.shape, device=device)
    out = fe.diveq(x, q, noise)
    gap = ((out - q).norm(dim=1) / (x - q).norm(dim=1)).max()
    assert gap < 10 * sigma


def test_diveq_gradients_flow_through_the_distance(generator, device):
    x, q = _pair(generator, device)
    x.requires_grad_()
    q.requires_grad_()
    noise = torch.zeros_like(x)
    fe.diveq(x, q, noise).backward(torch.ones_like(x))
    # With zero noise the direction n = unit(q - x) is constant and out = x + ||q - x|| n:
    n = (q - x).detach() / (q - x).detach().norm(dim=1, keepdim=True)
    s = n.sum(1, keepdim=True)
    torch.testing.assert_close(q.grad, s * n)
    torch.testing.assert_close(x.grad, torch.ones_like(x) - s * n)


def test_diveq_detach_forward_is_q(generator, device):
    x, q = _pair(generator, device)
    torch.testing.assert_close(fe.diveq_detach(x, q), q, rtol=1e-12, atol=1e-12)
