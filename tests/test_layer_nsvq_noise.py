"""The noise NSVQ draws, observed through the layers users call ([vali2022nsvq]).

In training mode NSVQ outputs ``x + ||x - q|| u`` with ``u = v/||v||``, ``v ~ N(0, I)`` drawn
fresh for every vector and every forward call, so ``u`` is uniform on the unit sphere. From the
output alone, ``u = (out - x)/||x - q||`` can be recovered, and these tests check what that
distribution implies:

- the simulated error has exactly the norm of the real one, ``||out - x|| = ||x - q||``;
- the mean of ``u`` over many vectors is near 0 (``E[u] = 0``) and its second moment is near
  ``I/D`` (``E[u u^T] = I/D``: isotropic, not along a fixed axis);
- different vectors get independent directions (mean cosine of pairs near 0, no pair equal);
- a second forward call draws new directions, and a seeded generator reproduces its draws.

A constant direction (say ``ones/sqrt(D)``) keeps the norm right and passes a smoke test, but
has ``||mean u|| = 1`` and cosine 1 between every pair. The bounds below are about six standard
deviations of the statistics under the correct distribution (N = 4096, D = 8).
"""

from __future__ import annotations

import math

import pytest
import torch

from vqkit import AdditiveVQ, NoiseSubstitution, ProductVQ, ResidualVQ, VectorQuantizer

N, DIM = 4096, 8


def _layer(kind: str, estimator: NoiseSubstitution | None = None):
    estimator = NoiseSubstitution() if estimator is None else estimator
    torch.manual_seed(0)  # the codewords (init "normal" keeps q away from the inputs' scale)
    if kind == "vq":
        return VectorQuantizer(DIM, 32, estimator=estimator, init="normal").train()
    cls = {"rvq": ResidualVQ, "pvq": ProductVQ, "avq": AdditiveVQ}[kind]
    return cls(DIM, 8, 2, estimator=estimator, init="normal").train()


def _directions(layer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(u, r)``: the unit directions of the simulated error and the real error norms."""
    with torch.no_grad():
        out = layer(x)
        q = layer.decode(out.indices)  # the (composite) codeword the estimator was given
        r = (x - q).double().norm(dim=1, keepdim=True)
        sim = (out.quantized - x).double()
    assert r.min() > 1e-2  # away from x == q, where the direction is undefined
    return sim / r, r


@pytest.mark.parametrize("kind", ["vq", "rvq", "pvq", "avq"])
def test_simulated_error_is_uniform_on_the_sphere_and_independent(kind):
    layer = _layer(kind)
    torch.manual_seed(1)
    x = 2.0 * torch.randn(N, DIM)
    u, _ = _directions(layer, x)

    # ||out - x|| equals ||x - q|| exactly (up to fp32): only the direction is random.
    torch.testing.assert_close(u.norm(dim=1), torch.ones(N, dtype=torch.float64), rtol=0, atol=1e-5)
    # E[u] = 0: each coordinate of the mean has standard deviation 1/sqrt(D N).
    mean_norm = float(u.mean(0).norm())
    assert mean_norm < 6 / math.sqrt(N), f"||mean direction|| = {mean_norm:.4f}"
    # E[u u^T] = I/D: diagonal entries have sd ~0.0023, off-diagonal ~0.0018 here.
    second = u.T @ u / N
    eye = torch.eye(DIM, dtype=torch.float64) / DIM
    worst = float((second - eye).abs().max())
    assert worst < 0.015, f"max |E[u u^T] - I/D| = {worst:.4f}"
    # Independent across vectors: cosines of disjoint pairs have mean 0, sd 1/sqrt(D).
    cos = (u[0::2] * u[1::2]).sum(1)
    assert abs(float(cos.mean())) < 6 / math.sqrt(DIM * N / 2), f"mean cosine {cos.mean():.4f}"
    assert cos.abs().max() < 1 - 1e-6  # no two rows share their direction
    # About half the pairs point into the same half-space, as for independent directions.
    assert abs(float((cos > 0).double().mean()) - 0.5) < 6 * 0.5 / math.sqrt(N / 2)


@pytest.mark.parametrize("kind", ["vq", "rvq", "pvq", "avq"])
def test_every_forward_call_draws_new_directions(kind):
    layer = _layer(kind)
    torch.manual_seed(2)
    x = 2.0 * torch.randn(N, DIM)
    u1, r1 = _directions(layer, x)
    u2, r2 = _directions(layer, x)
    torch.testing.assert_close(r1, r2)  # same codewords chosen: only the noise changed
    cos = (u1 * u2).sum(1)
    assert abs(float(cos.mean())) < 6 / math.sqrt(DIM * N), f"mean cosine {cos.mean():.4f}"
    assert cos.abs().max() < 1 - 1e-6


def test_a_seeded_generator_reproduces_the_draws_and_different_seeds_differ():
    x = 2.0 * torch.randn(256, DIM, generator=torch.Generator().manual_seed(3))

    def draw(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return _directions(_layer("vq", NoiseSubstitution(generator=g)), x)[0]

    assert torch.equal(draw(7), draw(7))
    cos = (draw(7) * draw(8)).sum(1)
    assert cos.abs().max() < 1 - 1e-6 and cos.mean().abs() < 6 / math.sqrt(DIM * 256)
