"""k-means++ and Lloyd: recover separated clusters; a fixed point; seeded reproducibility."""

from __future__ import annotations

import torch

from vqkit.functional import kmeans, kmeans_plus_plus, nearest_neighbor


def _blobs(generator, k=6, per=200, d=4):
    centres = 10 * torch.randn(k, d, generator=generator)
    x = centres.repeat_interleave(per, 0) + 0.1 * torch.randn(k * per, d, generator=generator)
    return x, centres


def test_kmeans_recovers_separated_clusters(generator):
    x, centres = _blobs(generator)
    found = kmeans(x, 6, generator=generator)
    d, _ = nearest_neighbor(centres, found)
    assert d.max() < 0.05


def test_kmeans_result_is_a_lloyd_fixed_point(generator):
    x = torch.randn(2000, 3, generator=generator)
    c = kmeans(x, 16, iters=300, generator=generator)
    _, idx = nearest_neighbor(x, c)
    for k in range(16):
        members = x[idx[:, 0] == k]
        torch.testing.assert_close(members.mean(0), c[k], atol=1e-5, rtol=0)


def test_seeding_is_reproducible_and_draws_data_points(generator):
    x = torch.randn(500, 3, generator=generator)
    a = kmeans_plus_plus(x, 10, generator=torch.Generator().manual_seed(3))
    b = kmeans_plus_plus(x, 10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    d, _ = nearest_neighbor(a, x)
    assert d.max() == 0  # every seed is one of the data points


def test_seeding_with_duplicate_points_does_not_fail():
    x = torch.zeros(10, 2)
    c = kmeans(x, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(c, torch.zeros(4, 2))
