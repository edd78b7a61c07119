"""SpaceFillingVQ: dithered training forward, gradients vs the formulas, positions, save/load
(on the device of ``--device``; random draws stay on the CPU and are moved)."""

from __future__ import annotations

import pytest
import torch

import vqkit
from vqkit import (
    EMA,
    ExactProjection,
    MSEFit,
    NoiseSubstitution,
    SFDiVeQ,
    SpaceFillingVQ,
    StraightThrough,
    fit_space_filling,
)
from vqkit.space_filling.curve import project_exact

torch.set_num_threads(1)


def _sf(estimator, device, k=8, d=4, seed=0):
    # The dither generator stays on the CPU: its draws are moved to the device.
    sf = SpaceFillingVQ(d, k, estimator=estimator, generator=torch.Generator().manual_seed(seed))
    sf = sf.to(device)
    with torch.no_grad():
        sf.codebook.corners.copy_(torch.randn(k, d, generator=torch.Generator().manual_seed(1)))
    return sf


def test_training_forward_is_the_nearest_dithered_point(device):
    sf = _sf(MSEFit(), device, k=8, seed=5)
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(2)).to(device)
    out = sf(x)
    lam = torch.rand(7, generator=torch.Generator().manual_seed(5)).to(device)  # the same draw
    c = sf.codewords.detach()
    d = (1 - lam)[:, None] * c[:-1] + lam[:, None] * c[1:]
    j = torch.cdist(x.double(), d.double()).argmin(1)
    torch.testing.assert_close(out.quantized.detach(), d[j])
    torch.testing.assert_close(out.indices, j.double() + lam[j].double())
    torch.testing.assert_close(out.loss, ((x - d[j]) ** 2).mean())


def _one_input_grads(estimator, w):
    sf = _sf(estimator, w.device, seed=3)
    x = torch.randn(1, 4, generator=torch.Generator().manual_seed(4)).to(w.device)
    out = sf(x)
    (out.quantized * w).sum().backward()
    pos = out.indices.item()
    seg, lam = int(pos), pos - int(pos)
    return sf, x, out, seg, lam, sf.codebook.corners.grad


def _w(device):
    return torch.randn(1, 4, generator=torch.Generator().manual_seed(9)).to(device)


def test_mse_fit_gradient_reaches_both_ends_with_weights(device):
    w = _w(device)
    sf, _, _, seg, lam, grad = _one_input_grads(MSEFit(), w)
    torch.testing.assert_close(grad[seg], (1 - lam) * w[0])
    torch.testing.assert_close(grad[seg + 1], lam * w[0])
    others = [i for i in range(8) if i not in (seg, seg + 1)]
    assert float(grad[others].abs().max()) == 0.0


def test_nsvq_gradient_on_the_dithered_point(device):
    w = _w(device)
    sf, x, out, seg, lam, grad = _one_input_grads(NoiseSubstitution(), w)
    c = sf.codewords.detach()
    q = (1 - lam) * c[seg] + lam * c[seg + 1]
    r = (x[0] - q).norm()
    u = (out.quantized.detach()[0] - x[0]) / r
    dq = -((w[0] @ u) / r) * (x[0] - q)  # NSVQ's gradient ([vali2022nsvq])
    torch.testing.assert_close(grad[seg], (1 - lam) * dq, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grad[seg + 1], lam * dq, rtol=1e-4, atol=1e-6)


def test_sf_diveq_forward_and_gradient(device):
    w = _w(device)
    sf, x, out, seg, lam, grad = _one_input_grads(SFDiVeQ(sigma=0.0), w)
    c = sf.codewords.detach()
    torch.testing.assert_close(out.quantized.detach()[0], (1 - lam) * c[seg] + lam * c[seg + 1])
    for corner, weight in ((seg, 1 - lam), (seg + 1, lam)):
        n = (c[corner] - x[0]) / (c[corner] - x[0]).norm()
        torch.testing.assert_close(grad[corner], weight * (w[0] @ n) * n, rtol=1e-4, atol=1e-6)


def test_eval_positions_decode_exactly_and_fractional_decode_interpolates(device):
    sf = _sf(NoiseSubstitution(), device).eval()
    x = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(0)).to(device)
    idx = sf.encode(x)
    assert idx.dtype == torch.float64 and idx.shape == (3, 5)
    assert torch.equal(sf(x).quantized, sf.decode(idx))
    c = sf.codewords.detach()
    torch.testing.assert_close(sf.decode(torch.tensor([2.25, 7.0, 0.0], device=device)),
                               torch.stack([0.75 * c[2] + 0.25 * c[3], c[7], c[0]]))
    # Inputs on the curve come back exactly (up to fp32 rounding) with the exact projection.
    sf.projection = ExactProjection()
    pos = torch.tensor([0.5, 3.0, 6.9], dtype=torch.float64, device=device)
    torch.testing.assert_close(sf(sf.decode(pos)).quantized, sf.decode(pos), atol=1e-5, rtol=0)


def test_project_returns_segment_lambda_point(device):
    sf = _sf(NoiseSubstitution(), device).eval()
    sf.projection = ExactProjection()
    x = torch.randn(20, 4, generator=torch.Generator().manual_seed(1)).to(device)
    seg, lam, point = sf.project(x)
    s2, l2 = project_exact(x, sf.codewords)
    assert torch.equal(seg, s2) and torch.equal(lam, l2)
    torch.testing.assert_close(point, sf(x).quantized)


def test_masks_and_bad_indices(device):
    sf = _sf(NoiseSubstitution(), device)
    x = torch.randn(2, 3, 4).to(device)
    mask = torch.tensor([[True, False, True], [False, True, True]], device=device)
    out = sf(x, mask=mask)
    assert bool((out.indices[~mask] == -1).all()) and bool((out.quantized[~mask] == 0).all())
    assert torch.equal(sf.decode(torch.tensor([-1.0], device=device)),
                       torch.zeros(1, 4, device=device))
    # all masked: still float positions
    none = sf(x, mask=torch.zeros(2, 3, dtype=torch.bool, device=device))
    assert none.indices.dtype == torch.float64 and bool((none.indices == -1).all())
    with pytest.raises(ValueError, match=r"\[0, 7\]"):
        sf.decode(torch.tensor([7.5], device=device))
    with pytest.raises(ValueError, match=r"\[0, 7\]"):
        sf.decode(torch.tensor([-0.5], device=device))
    with pytest.raises(ValueError, match="NaN"):
        sf.decode(torch.tensor([float("nan")], device=device))
    with pytest.raises(TypeError, match="indices"):
        sf.decode([1.0])


def test_rejected_combinations():
    with pytest.raises(ValueError, match="Gradient"):
        SpaceFillingVQ(4, 8, learning=EMA())
    with pytest.raises(TypeError, match="estimator"):
        SpaceFillingVQ(4, 8, estimator="nsvq")
    with pytest.raises(TypeError, match="projection"):
        SpaceFillingVQ(4, 8, projection="exact")


@pytest.mark.parametrize("est", [NoiseSubstitution(), SFDiVeQ(sigma=0.01), MSEFit(),
                                 StraightThrough(beta=0.5)])
def test_save_load_round_trip_after_expansion(tmp_path, est, device):
    sf = SpaceFillingVQ(4, 16, estimator=est, initial_size=4, projection=ExactProjection(123))
    sf = sf.to(device)
    sf.init_codebook_(torch.randn(64, 4, generator=torch.Generator().manual_seed(0)).to(device))
    sf.expand_()
    vqkit.save(sf, tmp_path / "sf.pt")
    back = vqkit.load(tmp_path / "sf.pt", map_location=device)
    assert isinstance(back, SpaceFillingVQ) and back.codebook_size == 8
    assert back.estimator == est and back.projection == ExactProjection(123)
    x = torch.randn(30, 4).to(device)
    assert torch.equal(back.eval()(x).quantized, sf.eval()(x).quantized)


def test_fit_space_filling_orders_the_curve_and_beats_its_vertices(device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4096, 6, generator=g).to(device)  # fit_space_filling trains on x's device
    sf = fit_space_filling(x, 4, epochs_per_stage=4, lr=1e-2, generator=g)
    c = sf.codewords.detach()
    consecutive = (c[1:] - c[:-1]).norm(dim=1).mean()
    pairs = torch.pdist(c).mean()
    # Ordered: neighbours along the curve are closer than random pairs (ratio ~1 if unordered).
    assert consecutive < 0.8 * pairs
    mse_curve = ((sf(x).quantized - x) ** 2).mean()
    mse_vertices = ((c[torch.cdist(x, c).argmin(1)] - x) ** 2).mean()
    assert mse_curve < 0.95 * mse_vertices  # the segments, not only the corners, carry data
    assert mse_curve < 0.6  # k-means with 16 centres reaches 0.495 here


def test_on_stage_end_gives_the_curve_of_every_bitrate(device, deterministic):
    x = torch.randn(512, 4, generator=torch.Generator().manual_seed(0)).to(device)
    seen = {}

    def keep(bits, q):
        assert not q.training
        seen[bits] = q.codewords.detach().clone()

    fit_space_filling(x, 4, epochs_per_stage=1, lr=1e-2,
                      generator=torch.Generator().manual_seed(1), on_stage_end=keep)
    assert {b: c.shape[0] for b, c in seen.items()} == {2: 4, 3: 8, 4: 16}
    direct = fit_space_filling(x, 3, epochs_per_stage=1, lr=1e-2,
                               generator=torch.Generator().manual_seed(1))
    assert torch.equal(direct.codewords.detach(), seen[3])


def test_fit_space_filling_reports_progress_through_its_callback():
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(0))
    calls = []
    fit_space_filling(x, 3, epochs_per_stage=2, batch_size=64,
                      progress=lambda done, total, info: calls.append((done, total, dict(info))))
    total = 2 * 2 * 4  # (bits - 1) stages x epochs x ceil(200 / 64) batches
    assert [c[0] for c in calls] == list(range(1, total + 1))
    assert {c[1] for c in calls} == {total}
    epoch_ends = [c for c in calls if "loss" in c[2]]
    assert [c[0] for c in epoch_ends] == [4, 8, 12, 16]
    assert [c[2]["K"] for c in epoch_ends] == [4, 4, 8, 8]


def test_bar_callback_draws_a_closed_bar():
    from vqkit.progress import bar_callback

    cb = bar_callback("t", enabled=False)
    for done in range(1, 5):
        cb(done, 4, {"loss": 0.5})
    assert cb.done == 4 and cb._bar.disable
    shown = bar_callback("t", enabled=True)
    shown(3, 4)
    shown(4, 4, {"K": 8})
    assert shown.done == 4  # (not a TTY under pytest, so tqdm draws nothing)
