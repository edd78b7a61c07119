"""Every estimator's gradients, taken through the layers users call, against closed forms.

The pure estimator functions are tested in test_estimators.py; these tests go through
``VectorQuantizer``, ``ResidualVQ``, ``ProductVQ`` and ``AdditiveVQ`` in training mode, so a
layer that detaches its codewords, swaps the estimator, or applies it to the wrong vector is
caught. The multi-codebook quantizers apply ONE estimator call to the composite vector by
default (NSVQ over the whole vector, as the thesis trains them), so the closed form is taken
on the composite ``q`` (the sum of the selected codewords, or their concatenation for product
VQ) and its gradient reaches each selected codeword (the matching slice for product VQ).

The oracle is written here, independently of vqkit, in float64 from the papers' equations
(the layers compute in fp32, hence the tolerances):

- NSVQ [vali2022nsvq]: ``out = x + r u``, ``r = ||x - q||``, ``u = v/||v||``;
  ``dL/dx = g + ((g.u)/r)(x - q)`` and ``dL/dq = -((g.u)/r)(x - q)``.
- Straight-through with codebook and commitment losses [vandenoord2017vqvae]: forward
  ``q``; ``loss = beta mean((x - sg q)^2) + mean((q - sg x)^2)``.
- Rotation trick ([fifty2024rotation] eq. (4)): forward ``q``;
  ``dL/dx = lambda R^T g`` with ``R = I - 2 r r^T + 2 q^ e^T``, ``e = x/||x||``,
  ``q^ = q/||q||``, ``r = (e + q^)/||e + q^||``, ``lambda = ||q||/||x||``; the same losses.
- DiVeQ [vali2026diveq]: ``out = x + ||q - x|| w`` with the constant
  direction ``w = unit((q - x) + sigma n)``; DiVeQ-Detach has ``sigma = 0``. Hence
  ``dL/dq = (g.w)(q - x)/||q - x|| = -dL/dx + g``.

The upstream gradient ``g`` is random and the objective is ``sum(g * out) + out.loss``.
"""

from __future__ import annotations

import pytest
import torch

from vqkit import (
    AdditiveVQ,
    DiVeQ,
    DiVeQDetach,
    NoiseSubstitution,
    ProductVQ,
    ResidualVQ,
    RotationTrick,
    StraightThrough,
    VectorQuantizer,
)

DIM, SIZE, BOOKS = 6, 16, 3
LEAD = (4, 8)  # 32 vectors, given with two leading axes so the layers' reshapes are covered
BETA = 0.4  # not the default 0.25, so a layer that drops the argument is seen
SIGMA = 0.5  # DiVeQ noise large enough that a wrong direction changes the gradient visibly
NOISE_SEED = 99
ESTIMATORS = ["nsvq", "ste", "rotation", "diveq", "diveq-detach"]
LAYERS = ["vq", "rvq", "pvq", "avq"]


def _estimator(name: str):
    g = torch.Generator().manual_seed(NOISE_SEED)
    return {
        "nsvq": lambda: NoiseSubstitution(generator=g),
        "ste": lambda: StraightThrough(beta=BETA),
        "rotation": lambda: RotationTrick(beta=BETA),
        "diveq": lambda: DiVeQ(sigma=SIGMA, generator=g),
        "diveq-detach": lambda: DiVeQDetach(),
    }[name]()


def _layer(kind: str, estimator, device: torch.device):
    """A layer whose codewords are spread like the data (not the tiny uniform default), so the
    selected composite is neither at the origin nor on top of the input."""
    if kind == "vq":
        layer = VectorQuantizer(DIM, SIZE, estimator=estimator)
        books = [layer.codebook]
    else:
        cls = {"rvq": ResidualVQ, "pvq": ProductVQ, "avq": AdditiveVQ}[kind]
        layer = cls(DIM, SIZE, BOOKS, estimator=estimator)
        books = list(layer.codebooks)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m, cb in enumerate(books):
            # Residual/additive stages shrink so later codebooks refine; the first is data-sized.
            scale = 1.5 * (0.5**m if kind in ("rvq", "avq") else 1.0)
            cb.codewords.copy_(scale * torch.randn(cb.codewords.shape, generator=g))
    return layer.to(device).train(), books


def _composite64(kind: str, books, indices: torch.Tensor) -> torch.Tensor:
    """``q`` of every vector in float64 from the layer's indices ``(N,)`` or ``(N, M)``."""
    words = [cb.codewords.detach().double().cpu() for cb in books]
    if kind == "vq":
        return words[0][indices]
    parts = [w[indices[:, m]] for m, w in enumerate(words)]
    return torch.cat(parts, dim=1) if kind == "pvq" else sum(parts)


def _labelled(label: str):
    """An ``assert_close`` message that keeps torch's mismatch summary after ``label``."""
    return lambda detail: f"{label}: {detail}"


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=1, keepdim=True)


def _closed_form(name: str, x: torch.Tensor, q: torch.Tensor, g: torch.Tensor):
    """Expected (output, loss, dL/dx, dL/dq) in float64 for inputs ``x`` and composites ``q``.

    The noise of NSVQ and DiVeQ is redrawn from a generator seeded like the estimator's:
    one ``N(0, I)`` draw shaped like the flattened input per forward call.
    """
    n_el = x.numel()  # the losses are means over all N * D elements
    if name in ("nsvq", "diveq"):
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(NOISE_SEED))
        noise = noise.double()
    if name == "nsvq":
        u = _unit(noise)
        r = (x - q).norm(dim=1, keepdim=True)
        coef = (g * u).sum(1, keepdim=True) / r
        return x + r * u, 0.0, g + coef * (x - q), -coef * (x - q)
    if name in ("diveq", "diveq-detach"):
        w = _unit(q - x + (SIGMA * noise if name == "diveq" else 0.0))
        dist = (q - x).norm(dim=1, keepdim=True)
        dq = (g * w).sum(1, keepdim=True) * (q - x) / dist
        return x + dist * w, 0.0, g - dq, dq
    # STE and rotation trick: forward q, codebook loss + BETA * commitment loss.
    loss = (1.0 + BETA) * float(((x - q) ** 2).mean())
    dq_loss = 2.0 * (q - x) / n_el
    dx_loss = BETA * 2.0 * (x - q) / n_el
    if name == "ste":
        return q, loss, g + dx_loss, dq_loss
    dx = torch.empty_like(x)
    eye = torch.eye(x.shape[1], dtype=torch.float64)
    for i in range(x.shape[0]):  # a D x D rotation per vector ([fifty2024rotation] eq. (4))
        e, qh = x[i] / x[i].norm(), q[i] / q[i].norm()
        r = (e + qh) / (e + qh).norm()
        rot = eye - 2.0 * torch.outer(r, r) + 2.0 * torch.outer(qh, e)
        dx[i] = (q[i].norm() / x[i].norm()) * rot.T @ g[i]
    return q, loss, dx + dx_loss, dq_loss


def _expected_codeword_grads(kind: str, books, indices: torch.Tensor, dq: torch.Tensor):
    """Scatter ``dL/dq`` onto the selected rows of each codebook (zero elsewhere)."""
    out = []
    for m, cb in enumerate(books):
        idx = indices if kind == "vq" else indices[:, m]
        part = dq
        if kind == "pvq":
            width = cb.codewords.shape[1]
            part = dq[:, m * width : (m + 1) * width]
        out.append(torch.zeros(cb.codewords.shape, dtype=torch.float64).index_add_(0, idx, part))
    return out


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("name", ESTIMATORS)
def test_layer_gradients_equal_the_closed_form(kind, name, device):
    layer, books = _layer(kind, _estimator(name), device)
    gen = torch.Generator().manual_seed(11)
    x = (1.2 * torch.randn(*LEAD, DIM, generator=gen)).to(device).requires_grad_()
    g = torch.randn(*LEAD, DIM, generator=gen)
    out = layer(x)
    (out.quantized * g.to(device)).sum().add(out.loss).backward()

    flat_idx = out.indices.reshape(-1, *out.indices.shape[len(LEAD) :]).cpu()
    x64 = x.detach().double().cpu().reshape(-1, DIM)
    q64 = _composite64(kind, books, flat_idx)
    # Preconditions: the inputs are away from the degenerate cases of the formulas.
    assert (x64 - q64).norm(dim=1).min() > 0.1 and x64.norm(dim=1).min() > 0.2
    assert q64.norm(dim=1).min() > 0.2
    g64 = g.double().reshape(-1, DIM)
    want_out, want_loss, want_dx, want_dq = _closed_form(name, x64, q64, g64)

    tol = {"rtol": 1e-4, "atol": 2e-5}
    case = f"{kind}/{name}"
    got_out = out.quantized.detach().double().cpu().reshape(-1, DIM)
    torch.testing.assert_close(got_out, want_out, **tol, msg=_labelled(f"{case}: forward value"))
    assert float(out.loss.detach()) == pytest.approx(want_loss, rel=1e-4, abs=1e-7), case
    got_dx = x.grad.double().cpu().reshape(-1, DIM)
    torch.testing.assert_close(got_dx, want_dx, **tol, msg=_labelled(f"{case}: x.grad"))
    for m, (cb, want) in enumerate(
        zip(books, _expected_codeword_grads(kind, books, flat_idx, want_dq), strict=True)
    ):
        assert cb.codewords.grad is not None, f"{case}: codebook {m} got no gradient"
        got = cb.codewords.grad.double().cpu()
        torch.testing.assert_close(got, want, **tol, msg=_labelled(f"{case}: codebook {m} grad"))
    # The codebooks learn: the selected rows get a gradient that is not zero.
    assert want_dq.abs().max() > 1e-3


def test_vector_quantizer_indices_are_the_float64_nearest_codewords(device):
    """The closed forms above use the layer's own indices; this pins them for plain VQ."""
    layer, books = _layer("vq", _estimator("nsvq"), device)
    x = 1.2 * torch.randn(64, DIM, generator=torch.Generator().manual_seed(3))
    idx = layer(x.to(device)).indices.cpu()
    d = torch.cdist(x.double(), books[0].codewords.detach().double().cpu())
    assert torch.equal(idx, d.argmin(dim=1))
