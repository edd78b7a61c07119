"""vqkit.interpret: directions, histograms, JSD, distances, transitions and their plots."""

from __future__ import annotations

import math

import pytest
import torch

from vqkit import ExactProjection, SpaceFillingVQ
from vqkit.interpret import (
    codeword_distances,
    curve_positions,
    index_histograms,
    jensen_shannon_distance,
    jensen_shannon_matrix,
    nearest_corner,
    smooth_histogram,
    transition_matrix,
    unit_directions,
)

torch.set_num_threads(1)


def test_unit_directions_are_normalised_consecutive_differences():
    c = torch.randn(10, 5, generator=torch.Generator().manual_seed(0))
    d = unit_directions(c)
    assert d.shape == (9, 5)
    torch.testing.assert_close(d.norm(dim=1), torch.ones(9))
    for j in range(9):  # parallel and same sense as c_{j+1} - c_j
        diff = c[j + 1] - c[j]
        assert float(d[j] @ diff) == pytest.approx(float(diff.norm()), rel=1e-5)


def test_curve_positions_order_points_along_the_curve():
    sf = SpaceFillingVQ(2, 4, projection=ExactProjection())
    with torch.no_grad():
        sf.codebook.corners.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [2.0, 1.0]]))
    x = torch.tensor([[0.25, 0.1], [1.1, 0.5], [1.75, 1.2], [-1.0, 0.0]])
    torch.testing.assert_close(curve_positions(sf, x),
                               torch.tensor([0.25, 1.5, 2.75, 0.0], dtype=torch.float64))
    assert nearest_corner(curve_positions(sf, x)).tolist() == [0, 2, 3, 0]


def test_smoothing_is_a_blackman_convolution():
    counts = torch.tensor([0, 0, 4, 0, 0, 0, 0, 0, 2, 0, 0, 0])
    h = smooth_histogram(counts, 7)
    n = torch.arange(7, dtype=torch.float64)
    w = 0.42 - 0.5 * torch.cos(2 * math.pi * n / 6) + 0.08 * torch.cos(4 * math.pi * n / 6)
    ref = torch.zeros(12, dtype=torch.float64)
    for pos, cnt in ((2, 4.0), (8, 2.0)):  # centre the window on each count, clip at the edge
        for t in range(7):
            if 0 <= pos - 3 + t < 12:
                ref[pos - 3 + t] += cnt * max(float(w[t]), 0.0)
    torch.testing.assert_close(h.double(), ref / ref.max(), atol=1e-6, rtol=0)
    assert float(h.max()) == 1.0
    with pytest.raises(ValueError, match="odd"):
        smooth_histogram(counts, 6)


def test_index_histograms_group_by_label_and_bin_positions():
    pos = torch.tensor([0.1, 0.4, 2.6, 3.0, -1.0], dtype=torch.float64)
    h = index_histograms(pos, ["s", "s", "v", "v", "v"], 4, window=1)
    assert h["s"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert h["v"].tolist() == [0.0, 0.0, 0.0, 1.0]  # the -1 entry is ignored
    with pytest.raises(ValueError, match="labels"):
        index_histograms(pos, ["s"], 4)


def test_jensen_shannon_distance_formula_and_matrix():
    p = torch.tensor([0.5, 0.5, 0.0])
    q = torch.tensor([0.0, 0.5, 0.5])
    # m = (1/4, 1/2, 1/4): KL(p||m) = 0.5 log2 2 + 0.5 log2 1 = 0.5, same for q -> JSD 0.5.
    assert jensen_shannon_distance(p, q) == pytest.approx(math.sqrt(0.5))
    assert jensen_shannon_distance(p, 3 * p) == pytest.approx(0.0, abs=1e-12)
    names, mat = jensen_shannon_matrix({"a": p, "b": q, "c": torch.tensor([0.0, 0.0, 1.0])})
    assert names == ["a", "b", "c"]
    assert torch.equal(mat, mat.T) and torch.equal(mat.diagonal(), torch.zeros(3, dtype=mat.dtype))
    assert float(mat[0, 2]) == pytest.approx(1.0)  # disjoint supports: the maximum, 1


def test_codeword_distances_and_transitions():
    c = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    d = codeword_distances(c)
    ref = torch.tensor([[float((a - b).norm()) for b in c] for a in c])
    torch.testing.assert_close(d, ref)
    t = transition_matrix([torch.tensor([0, 1, 1, 2]), torch.tensor([2.4, 0.0, -1.0, 1.0])], 3)
    assert t.tolist() == [[0, 1, 0], [0, 1, 1], [1, 0, 0]]
    assert int(t.sum()) == 4


def test_plots_write_png(tmp_path):
    pytest.importorskip("matplotlib")
    from vqkit import plotting

    h = {"a": torch.rand(16), "b": torch.rand(16)}
    p1 = plotting.label_histograms(h, tmp_path / "h.png", title="t")
    p2 = plotting.matrix(torch.rand(4, 4), tmp_path / "m.png", labels=list("abcd"), log2=True)
    for p in (p1, p2):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["h.png", "m.png"]  # no temp files left
