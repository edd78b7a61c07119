"""k-means++ and Lloyd: recover separated clusters; a fixed point; seeded reproducibility
(on the device of ``--device``; the data and the generators stay on the CPU's draws)."""

from __future__ import annotations

import pytest
import torch

from vqkit.functional import kmeans, kmeans_plus_plus, nearest_neighbor


def _blobs(generator, device, k=6, per=200, d=4):
    centres = 10 * torch.randn(k, d, generator=generator)
    x = centres.repeat_interleave(per, 0) + 0.1 * torch.randn(k * per, d, generator=generator)
    return x.to(device), centres.to(device)


def test_kmeans_recovers_separated_clusters(generator, device):
    x, centres = _blobs(generator, device)
    found = kmeans(x, 6, generator=generator)
    d, _ = nearest_neighbor(centres, found)
    assert d.max() < 0.05


def test_kmeans_result_is_a_lloyd_fixed_point(generator, device):
    x = torch.randn(2000, 3, generator=generator).to(device)
    c = kmeans(x, 16, iters=300, generator=generator)
    _, idx = nearest_neighbor(x, c)
    for k in range(16):
        members = x[idx[:, 0] == k]
        torch.testing.assert_close(members.mean(0), c[k], atol=1e-5, rtol=0)


def test_seeding_is_reproducible_and_draws_data_points(generator, device):
    x = torch.randn(500, 3, generator=generator).to(device)
    a = kmeans_plus_plus(x, 10, generator=torch.Generator().manual_seed(3))
    b = kmeans_plus_plus(x, 10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    d, _ = nearest_neighbor(a, x)
    assert d.max() == 0  # every seed is one of the data points


def test_seeding_with_duplicate_points_does_not_fail(device):
    x = torch.zeros(10, 2, device=device)
    c = kmeans(x, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(c, torch.zeros(4, 2, device=device))


def test_a_generator_on_the_device_is_accepted(device):
    # A CUDA generator must be usable with CUDA data (draws happen on the generator's device).
    x = torch.randn(300, 3, generator=torch.Generator().manual_seed(5)).to(device)
    a = kmeans_plus_plus(x, 8, generator=torch.Generator(device=device).manual_seed(3))
    b = kmeans_plus_plus(x, 8, generator=torch.Generator(device=device).manual_seed(3))
    assert a.device == x.device and torch.equal(a, b)
    c = kmeans(x, 8, iters=5, generator=torch.Generator(device=device).manual_seed(3))
    assert c.shape == (8, 3) and bool(torch.isfinite(c).all())


def test_progress_reports_seeding_then_lloyd_and_changes_nothing():
    import torch

    from vqkit.functional.kmeans import kmeans

    x = torch.randn(500, 3, generator=torch.Generator().manual_seed(0))
    calls = []
    got = kmeans(x, 8, iters=30, generator=torch.Generator().manual_seed(1),
                 progress=lambda d, t, i: calls.append((d, t, dict(i))))
    plain = kmeans(x, 8, iters=30, generator=torch.Generator().manual_seed(1))
    assert torch.equal(got, plain)
    assert [c[0] for c in calls[:8]] == list(range(1, 9)) and {c[1] for c in calls} == {38}
    lloyd = calls[8:]
    assert lloyd[-1][0] == 38 and lloyd[-1][2]["moved"] == 0  # stopped early: reported done
    assert [c[0] for c in lloyd[:-1]] == list(range(9, 9 + len(lloyd) - 1))
    assert all(c[2]["moved"] > 0 for c in lloyd[:-1])


def test_quantizers_pass_progress_to_kmeans_over_all_codebooks():
    import torch

    from vqkit import ResidualVQ, VectorQuantizer

    x = torch.randn(400, 4, generator=torch.Generator().manual_seed(0))
    seen = []
    VectorQuantizer(4, 16).init_codebook_(x, iters=5, progress=lambda d, t, i: seen.append(t))
    assert set(seen) == {21}
    seen.clear()
    rvq = ResidualVQ(4, 16, 3)
    rvq.init_codebook_(x, iters=5, generator=torch.Generator().manual_seed(2),
                       progress=lambda d, t, i: seen.append((d, t, i["codebook"])))
    assert {t for _, t, _ in seen} == {63} and seen[-1][0] == 63
    assert [m for *_, m in seen] == sorted(m for *_, m in seen)  # codebook by codebook
    assert all(b[0] > a[0] for a, b in zip(seen, seen[1:], strict=False))  # done only grows
    ref = ResidualVQ(4, 16, 3)
    ref.init_codebook_(x, iters=5, generator=torch.Generator().manual_seed(2))
    pairs = zip(ref.codebooks, rvq.codebooks, strict=True)
    assert all(torch.equal(a.codewords, b.codewords) for a, b in pairs)


def test_max_points_per_centroid_runs_kmeans_on_a_subsample():
    from vqkit.functional.kmeans import subsample

    x = torch.randn(900, 3, generator=torch.Generator().manual_seed(0))
    picked = subsample(x, 40, torch.Generator().manual_seed(5))
    rows = [int((x == r).all(dim=1).nonzero()) for r in picked]
    assert len(set(rows)) == 40 and rows == sorted(rows)  # distinct rows of x, in order
    assert subsample(x, 900, None) is x and subsample(x, None, None) is x
    # k-means on 10 rows per centre = k-means on those 40 rows, drawn from the same generator.
    got = kmeans(x, 4, iters=5, generator=torch.Generator().manual_seed(5),
                 max_points_per_centroid=10)
    g = torch.Generator().manual_seed(5)
    expected = kmeans(subsample(x, 40, g), 4, iters=5, generator=g)
    assert torch.equal(got, expected)
    assert not torch.equal(got, kmeans(x, 4, iters=5, generator=torch.Generator().manual_seed(5)))
    with pytest.raises(ValueError, match="max_points_per_centroid"):
        kmeans(x, 4, max_points_per_centroid=0)


def test_seeding_distances_in_blocks_equal_the_whole_computation(monkeypatch):
    """k-means++ computes its distances in cache-sized row blocks: bit-identical values, and
    the same centres whatever the block size (blocks of 3 rows, not a multiple of N)."""
    import importlib

    km = importlib.import_module("vqkit.functional.kmeans")  # the module, not the function

    x = torch.randn(301, 7, generator=torch.Generator().manual_seed(3)) * 50 + 1000
    centre = x[17].clone()
    monkeypatch.setattr(km, "SEED_CHUNK_ELEMENTS", 21)
    assert torch.equal(km._squared_distances(x, centre), (x - centre).pow(2).sum(dim=1))
    small = km.kmeans_plus_plus(x, 9, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(km, "SEED_CHUNK_ELEMENTS", 1 << 18)
    assert torch.equal(small, km.kmeans_plus_plus(x, 9, generator=torch.Generator().manual_seed(0)))
