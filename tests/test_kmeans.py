"""k-means++ and Lloyd: recover separated clusters; a fixed point; seeded reproducibility
(on the device of ``--device``; the data and the generators stay on the CPU's draws)."""

from __future__ import annotations

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
