"""CurveCodebook: projections against a brute-force oracle, expansion, interpolation
(on the device of ``--device``; random draws stay on the CPU and are moved)."""

from __future__ import annotations

import pytest
import torch

from vqkit import CurveCodebook, ExactProjection, TwoSegmentProjection
from vqkit.space_filling.curve import interpolate, project_exact, project_two_segment

torch.set_num_threads(1)


def _oracle(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared distance from each x to the nearest point of the curve, float64, one segment
    at a time (the formula written out independently of vqkit.space_filling.curve)."""
    x, c = x.double(), c.double()
    best = torch.full((x.shape[0],), float("inf"), dtype=torch.float64, device=x.device)
    for j in range(c.shape[0] - 1):
        a, b = c[j], c[j + 1]
        e = b - a
        lam = ((x - a) @ e / (e @ e)).clamp(0, 1) if float(e @ e) > 0 else x.new_zeros(len(x))
        p = a + lam[:, None] * e
        best = torch.minimum(best, ((x - p) ** 2).sum(1))
    return best


def _curve(k: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # A random walk: a tangled curve where the two-segment rule often misses.
    return torch.randn(k, d, generator=g).cumsum(0) * 0.5


def _dist(x, c, seg, lam):
    p = (1 - lam)[:, None] * c[seg] + lam[:, None] * c[seg + 1]
    return ((x - p) ** 2).sum(1).double(), p


@pytest.mark.parametrize("k,d,seed", [(2, 3, 0), (3, 2, 1), (16, 2, 2), (64, 8, 3), (33, 5, 4)])
def test_exact_projection_matches_oracle_and_beats_two_segment(k, d, seed, device):
    c = _curve(k, d, seed)
    g = torch.Generator().manual_seed(100 + seed)
    x = (torch.randn(500, d, generator=g) * 2 + c.mean(0)).to(device)
    c = c.to(device)
    seg, lam = project_exact(x, c, chunk_elements=97)  # many tiny chunks
    exact, _ = _dist(x, c, seg, lam)
    torch.testing.assert_close(exact, _oracle(x, c), rtol=1e-4, atol=1e-4)
    seg2, lam2 = project_two_segment(x, c)
    two, _ = _dist(x, c, seg2, lam2)
    assert bool((exact <= two + 1e-4).all())
    if k >= 16:  # on a tangled curve the paper's local rule must be strictly worse somewhere
        assert bool((exact < two - 1e-3).any())


def test_projected_points_lie_on_the_curve(device):
    c = _curve(20, 4, 7).to(device)
    x = (torch.randn(300, 4, generator=torch.Generator().manual_seed(8)) * 3).to(device)
    for proj in (ExactProjection(), TwoSegmentProjection()):
        seg, lam = proj(x, c)
        assert seg.dtype == torch.long and bool(((seg >= 0) & (seg <= 18)).all())
        assert bool(((lam >= 0) & (lam <= 1)).all())
        _, p = _dist(x, c, seg, lam)
        # The point's distance to the curve (by the oracle) is zero.
        assert float(_oracle(p, c).max()) < 1e-9
        # And lambda is the orthogonal projection onto its own segment (or clipped to an end).
        e = c[seg + 1] - c[seg]
        resid = ((x - p) * e).sum(1)
        interior = (lam > 1e-4) & (lam < 1 - 1e-4)
        assert float(resid[interior].abs().max()) < 1e-3


def test_two_segment_rule_examines_neighbours_of_nearest_vertex(device):
    # x is nearest to vertex 1 but nearest to the middle of the far segment (3, 4).
    c = torch.tensor([[10.0, 0.0], [1.0, 0.0], [1.0, 10.0], [-10.0, 1.0], [10.0, 1.0]],
                     device=device)
    x = torch.tensor([[1.5, 0.6]], device=device)
    seg2, lam2 = project_two_segment(x, c)
    seg, lam = project_exact(x, c)
    assert (seg2.item(), lam2.item()) == (1, pytest.approx(0.06))
    assert seg.item() == 3
    torch.testing.assert_close(lam, torch.tensor([11.5 / 20.0], device=device))


def test_expand_leaves_every_point_of_the_curve_where_it_was(device):
    cb = CurveCodebook(32, 3, size=4).to(device)
    cb.init_from_data_(torch.randn(1000, 3, generator=torch.Generator().manual_seed(0)).to(device))
    with torch.no_grad():  # move the corners apart so the curve has a shape to keep
        cb.corners[:4] = _curve(4, 3, 9).to(device)
    for size in (8, 16, 32):
        old = cb.codewords.detach().clone()
        old_pos = cb.expand_()
        assert cb.codebook_size == size and old_pos.shape == (size,)
        new = cb.codewords.detach()
        # Every new corner sits at its old-curve position; every old corner is a new corner.
        torch.testing.assert_close(new, interpolate(old, old_pos), rtol=0, atol=1e-6)
        assert set(range(size // 2)) <= {round(p) for p in old_pos.tolist() if p == round(p)}
        # Dense points of the new curve map to the same points of the old curve.
        t = torch.linspace(0, size - 1, 2001, dtype=torch.float64, device=device)
        seg = t.floor().clamp(max=size - 2).long()
        frac = t - seg
        old_t = old_pos[seg] + frac * (old_pos[seg + 1] - old_pos[seg])
        torch.testing.assert_close(
            interpolate(new, t), interpolate(old, old_t), rtol=0, atol=1e-5
        )
        # And dense points of the old curve are on the new one (distance 0).
        s = torch.linspace(0, size // 2 - 1, 999, dtype=torch.float64, device=device)
        assert float(_oracle(interpolate(old, s).float(), new).max()) < 1e-9
    with pytest.raises(ValueError, match="max_size"):
        cb.expand_()


def test_expand_positions_follow_the_paper(device):
    cb = CurveCodebook(16, 2, size=4).to(device)
    expected = [0, 0.01, 1, 1.01, 1.99, 2, 2.99, 3]
    # positions come back on the corners' device
    torch.testing.assert_close(
        cb.expand_(), torch.tensor(expected, dtype=torch.float64, device=device)
    )
    assert int(cb.active) == 8 and "active" in cb.state_dict()


def test_init_from_data_is_norm_sorted_chunk_means(device):
    x = torch.tensor([[3.0], [-1.0], [0.5], [2.0], [-4.0], [0.1], [1.5], [0.2]], device=device)
    cb = CurveCodebook(4, 1).to(device)
    cb.init_from_data_(x)
    # Sorted by |x|: 0.1 0.2 0.5 -1 1.5 2 3 -4 -> pairs.
    expected = torch.tensor([0.15, -0.25, 1.75, -0.5], device=device)
    torch.testing.assert_close(cb.codewords.detach().flatten(), expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        CurveCodebook(4, 2, size=8)
    with pytest.raises(ValueError, match="size"):
        CurveCodebook(4, 2, size=1)
    with pytest.raises(ValueError, match="chunk_elements"):
        ExactProjection(0)
    with pytest.raises(ValueError, match="samples"):
        CurveCodebook(4, 2).init_from_data_(torch.randn(3, 2))
