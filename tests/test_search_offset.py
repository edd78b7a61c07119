"""The search stays exact when the data share a large offset (issue: cancellation in
``||x||^2 - 2 x.c + ||c||^2``).

The oracle is a float64 brute force over the direct squared differences of the same fp32
values; the search must return its indices (up to ties within fp32 resolution of the direct
distance) and the real distances, for any common offset up to 1e6 times the spread, through
the functional search and through the layers.
"""

from __future__ import annotations

import pytest
import torch

from vqkit import ResidualVQ, VectorQuantizer
from vqkit.functional import search
from vqkit.functional.search import nearest_neighbor


def oracle(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Every direct squared distance in float64 (of the fp32 values), ``(N, K)``."""
    return ((x.double()[:, None, :] - c.double()[None, :, :]) ** 2).sum(-1)


def assert_true_neighbours(x, c, d, i, k):
    """``i`` holds k codewords as near as the true k nearest, in order, and ``d`` their real
    distances: ties only within fp32 resolution of the direct distance."""
    full = oracle(x.cpu(), c.cpu())
    best = torch.sort(full, dim=1).values[:, :k]
    got = full.gather(1, i.cpu())
    resolution = 4 * 2.0**-24 * best.clamp_min(1e-30) * x.shape[1]
    assert (got - best).abs().le(resolution).all(), (got - best).abs().max()
    torch.testing.assert_close(d.cpu().double(), got, rtol=1e-6, atol=1e-30)


def geographic(device):
    """300 codewords spread 1,000 around an ECEF point; codeword 17 at 7.6 from the query."""
    g = torch.Generator().manual_seed(0)
    centre = torch.tensor([4208848.0, 2334863.5, 4171170.2], dtype=torch.float64)
    c = (centre + 1000.0 * torch.randn(300, 3, generator=g, dtype=torch.float64)).float()
    q = (c[17].double() + torch.tensor([4.0, 5.0, 4.0], dtype=torch.float64)).float()
    return q[None].to(device), c.to(device)


def test_geographic_offset_returns_the_near_codeword(device):
    q, c = geographic(device)
    d, i = nearest_neighbor(q, c)
    assert i.item() == 17
    true = oracle(q.cpu(), c.cpu())[0, 17].item()
    assert 50.0 < true < 60.0  # 7.6 away in float64; fp32 coordinates move it slightly
    assert d.item() == pytest.approx(true, rel=1e-6)


@pytest.mark.parametrize("offset", [0.0, 100.0, 1e4, 1e6])
@pytest.mark.parametrize("k", [1, 3])
def test_common_offset_does_not_change_the_answer(offset, k, device):
    g = torch.Generator().manual_seed(int(offset) % 997 + k)
    x = (torch.randn(600, 16, generator=g) + offset).to(device)
    c = (torch.randn(256, 16, generator=g) + offset).to(device)
    d, i = nearest_neighbor(x, c, k)
    assert_true_neighbours(x, c, d, i, k)


def test_offset_search_through_the_layers(device):
    g = torch.Generator().manual_seed(5)
    offset = 1e5
    codewords = torch.randn(64, 8, generator=g) + offset
    x = (codewords[torch.randint(0, 64, (300,), generator=g)] + 0.05 * torch.randn(300, 8,
         generator=g)).to(device)
    vq = VectorQuantizer(8, 64).to(device)
    with torch.no_grad():
        vq.codebook.codewords.copy_(codewords)
    idx = vq.encode(x)
    full = oracle(x.cpu(), codewords)
    assert torch.equal(full.gather(1, idx.cpu()[:, None])[:, 0], full.min(dim=1).values)

    rvq = ResidualVQ(8, 64, 2).to(device)
    with torch.no_grad():
        rvq.codebooks[0].codewords.copy_(codewords)
    first = rvq.encode(x)[:, 0]
    assert torch.equal(first, idx)


def test_centred_data_choose_as_the_uncentred_expansion_did(device):
    # On centred data the re-rank is a no-op except within the rounding bound: the answer
    # equals a float64 brute force wherever the best two are not within 1e-4.
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2000, 32, generator=g).to(device)
    c = torch.randn(1024, 32, generator=g).to(device)
    d, i = nearest_neighbor(x, c)
    assert_true_neighbours(x, c, d, i, 1)


def test_duplicate_codewords_far_from_the_origin_tie_to_the_lowest_index(device):
    c = torch.tensor([[1e6, 1e6], [1e6 + 1.0, 1e6], [1e6 + 1.0, 1e6]], device=device)
    x = torch.tensor([[1e6 + 0.75, 1e6], [1e6 + 0.5, 1e6]], device=device)
    d, i = nearest_neighbor(x, c, k=2)
    assert i.tolist() == [[1, 2], [0, 1]]
    assert d.tolist() == [[0.0625, 0.0625], [0.25, 0.25]]


def test_slack_bounds_the_expansion_error():
    # Independent check of the bound: float64 expansion vs fp32 expansion, worst case over
    # random data with an offset (after centring, as the search does).
    g = torch.Generator().manual_seed(3)
    x = torch.randn(500, 64, generator=g) * 30 + 7
    c = torch.randn(300, 64, generator=g) * 30 + 7
    mu = c.mean(0)
    xs, cs = x - mu, c - mu
    d32 = torch.addmm(cs.pow(2).sum(1), xs, cs.t(), beta=1.0, alpha=-2.0).double()
    d64 = cs.double().pow(2).sum(1) - 2 * xs.double() @ cs.double().t()
    slack = search.expansion_slack(xs.norm(dim=1, keepdim=True), cs.norm(dim=1).max(), 64)
    # The slack covers twice the error of one entry (two entries can move toward each other).
    assert ((d32 - d64).abs() * 2 <= slack.double()).all()


@pytest.mark.parametrize("k", [1, 3])
def test_the_fixed_shape_compiled_path_agrees(k, device, monkeypatch):
    # torch.compile / export take the fixed-shape re-rank; run it eagerly and compare.
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    g = torch.Generator().manual_seed(k)
    x = (torch.randn(400, 8, generator=g) + 1e5).to(device)
    c = (torch.randn(128, 8, generator=g) + 1e5).to(device)
    d, i = nearest_neighbor(x, c, k)
    assert_true_neighbours(x, c, d, i, k)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("k", [1, 2])
def test_near_ties_inside_a_wide_codebook_are_reranked(k, compiled, device, monkeypatch):
    if compiled:
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    # Pairs of codewords 1e-3 apart inside a codebook of spread 100: the expansion's rounding
    # (about 1e-2 here) cannot order them, the direct distance (about 1e-6 each) can.
    g = torch.Generator().manual_seed(7 + k)
    wide = torch.randn(200, 16, generator=g) * 100
    near = wide[:50] + 1e-3 * torch.randn(50, 16, generator=g)
    c = torch.cat([wide, near]).to(device)
    x = (wide[:50] + 0.5 * (near - wide[:50]) + 2e-4 * torch.randn(50, 16, generator=g))
    x = x.to(device)
    d, i = nearest_neighbor(x, c, k)
    assert_true_neighbours(x, c, d, i, k)


@pytest.mark.parametrize("width", [1, 4])
def test_residual_beam_search_far_from_the_origin_matches_the_centred_search(width, device):
    # The same problem at offset 0 and at offset 1e5 (shifted in float64): the beam's first
    # stage must rank the same way, so the chosen tuples agree (the shifted coordinates are
    # rounded to fp32, so a near-tie may flip: allow 1 %).
    from vqkit.functional.beam import residual_beam_search

    g = torch.Generator().manual_seed(2)
    c0 = torch.randn(64, 8, generator=g, dtype=torch.float64)
    c1 = 0.3 * torch.randn(64, 8, generator=g, dtype=torch.float64)
    pick = torch.randint(0, 64, (400, 2), generator=g)
    x = c0[pick[:, 0]] + c1[pick[:, 1]] + 0.2 * torch.randn(400, 8, generator=g,
                                                           dtype=torch.float64)
    found = []
    for offset in (0.0, 1e5):
        books = [(c0 + offset).float().to(device), c1.float().to(device)]
        found.append(residual_beam_search((x + offset).float().to(device), books, width).cpu())
    agree = (found[0] == found[1]).all(dim=1).double().mean().item()
    assert agree >= 0.99, agree


def test_lower_matmul_precision_widens_the_bound(device, monkeypatch):
    # With TF32 ("high") or bf16 ("medium") products allowed, the bound must follow: a search
    # that trusted fp32's roundoff would skip re-ranks it needs on a GPU.
    from vqkit.functional.search import matmul_roundoff

    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "high")
    assert matmul_roundoff() == 2.0**-11
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "medium")
    assert matmul_roundoff() == 2.0**-8
    x = torch.randn(300, 16, generator=torch.Generator().manual_seed(1)).to(device) + 1e3
    c = torch.randn(64, 16, generator=torch.Generator().manual_seed(2)).to(device) + 1e3
    d, i = nearest_neighbor(x, c)
    assert_true_neighbours(x, c, d, i, 1)


def test_exact_curve_projection_far_from_the_origin_matches_the_centred_one(device):
    # The space-filling curve's exhaustive projection expands ||x - c_j||^2 like the search.
    # Adjacent segments tie exactly at their shared corner, so compare distances, not ids.
    from vqkit.space_filling.curve import project_exact

    g = torch.Generator().manual_seed(4)
    corners = torch.cumsum(torch.randn(32, 4, generator=g, dtype=torch.float64), dim=0)
    x = corners[torch.randint(0, 32, (500,), generator=g)] + 0.7 * torch.randn(
        500, 4, generator=g, dtype=torch.float64)
    dist = []
    for offset in (0.0, 1e5):
        seg, lam = project_exact((x + offset).float().to(device), (corners + offset).float()
                                 .to(device))
        seg, lam = seg.cpu(), lam.cpu().double()[:, None]
        point = (1 - lam) * corners[seg] + lam * corners[seg + 1]
        dist.append((x - point).pow(2).sum(1))
    # fp32 spacing at 1e5 is 0.0078: the projections agree to that resolution.
    assert (dist[1] - dist[0]).abs().max() < 0.05, (dist[1] - dist[0]).abs().max()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_codeword_is_refused(bad, device):
    # It would poison the centre and capture every query with finite-looking distances.
    c = torch.randn(64, 8, generator=torch.Generator().manual_seed(0)).to(device)
    c[5, 2] = bad
    with pytest.raises(ValueError, match="row 5"):
        nearest_neighbor(torch.randn(6, 8).to(device), c)
    vq = VectorQuantizer(8, 64).to(device)
    with torch.no_grad():
        vq.codebook.codewords.copy_(c)
    with pytest.raises(ValueError, match="NaN or Inf"):
        vq.encode(torch.randn(3, 8).to(device))


def test_float64_inputs_are_searched_in_float64(device):
    # Spread 3 around an ECEF point: fp32 cannot resolve it, fp64 can.
    g = torch.Generator().manual_seed(6)
    centre = torch.tensor([4208848.0, 2334863.5, 4171170.2], dtype=torch.float64)
    c = (centre + 3.0 * torch.randn(500, 3, generator=g, dtype=torch.float64)).to(device)
    x = (centre + 3.0 * torch.randn(300, 3, generator=g, dtype=torch.float64)).to(device)
    d, i = nearest_neighbor(x, c, 2)
    assert d.dtype == torch.float64
    full = ((x.cpu()[:, None, :] - c.cpu()[None]) ** 2).sum(-1)
    assert torch.equal(i.cpu(), torch.sort(full, dim=1, stable=True).indices[:, :2])
    torch.testing.assert_close(d.cpu(), full.gather(1, i.cpu()))


def test_early_training_codebook_is_reranked_by_each_codewords_own_bound(device, monkeypatch):
    # Codewords that moved to the data beside codewords still at their tiny initial values:
    # the global bound (largest norm) flags nearly every row, each codeword's own bound
    # clears almost all of them. Exactness against the brute force, and the number of rows
    # that needed a direct re-rank stays small (counted through the dense/pair paths).
    from vqkit.codebooks import initial_codewords
    from vqkit.functional import search

    torch.manual_seed(0)
    c = initial_codewords(1024, 16, "uniform")
    c[:32] = torch.randn(32, 16)
    x = torch.randn(512, 16)
    calls = []
    original = search._smallest

    def counting(d, k):
        calls.append(d.shape[0])
        return original(d, k)

    monkeypatch.setattr(search, "_smallest", counting)
    d, i = nearest_neighbor(x.to(device), c.to(device))
    assert_true_neighbours(x, c, d.cpu(), i.cpu(), 1)
    assert sum(calls) <= 0.05 * x.shape[0], sum(calls)
