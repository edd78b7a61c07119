"""VectorQuantizer specifics: decode checks, k-means init, dead-code replacement, adapters
(on the device of ``--device``; random draws stay on the CPU and are moved)."""

from __future__ import annotations

import pytest
import torch

import vqkit
from vqkit import (
    EMA,
    ChannelsFirst,
    NoiseSubstitution,
    StraightThrough,
    TileUsed,
    UsageWeighted,
    VectorQuantizer,
)


def test_decode_rejects_bad_indices(device):
    vq = VectorQuantizer(4, 8).to(device)
    with pytest.raises(ValueError, match=r"\[-1, 7\]"):
        vq.decode(torch.tensor([0, 8], device=device))
    with pytest.raises(ValueError, match=r"\[-1, 7\]"):
        vq.decode(torch.tensor([-2], device=device))
    with pytest.raises(TypeError, match="integer dtype"):
        vq.decode(torch.tensor([0.0, 1.0], device=device))
    with pytest.raises(TypeError, match="torch.Tensor"):
        vq.decode([0, 1])


def test_init_codebook_runs_kmeans(generator, device):
    centres = 10 * torch.randn(8, 3, generator=generator)
    x = centres.repeat(50, 1) + 0.01 * torch.randn(400, 3, generator=generator)
    centres, x = centres.to(device), x.to(device)
    vq = VectorQuantizer(3, 8, learning=EMA()).to(device)
    vq.init_codebook_(x, generator=generator)
    d, _ = vqkit.functional.nearest_neighbor(centres, vq.codewords)
    assert d.max() < 1e-3
    torch.testing.assert_close(vq.codebook.ema_sums, vq.codewords)  # EMA statistics restart
    with pytest.raises(ValueError, match="at least codebook_size=8"):
        vq.init_codebook_(x[:5])


def _vq_with_codewords(rows, device, **kw):
    vq = VectorQuantizer(2, len(rows), **kw).to(device)
    rows = torch.tensor(rows, device=device)
    vq.codebook.overwrite_(torch.arange(len(rows), device=device), rows)  # resets EMA statistics
    return vq


def test_dead_code_replacement_follows_the_paper_rule(generator, device):
    vq = _vq_with_codewords([[0.0, 0.0], [1.0, 1.0], [9.0, 9.0], [8.0, 8.0], [5.0, -5.0]],
                            device)
    near = torch.tensor([[0.1, 0.0], [1.0, 0.9]], device=device)
    for _ in range(99):
        vq(near)
    # codeword 4 picked in 1 of 100 batches: 1 % is not dead
    vq(torch.tensor([[5.0, -5.0]], device=device))
    before = vq.codewords.detach().clone()
    assert vq.replace_dead_codes_(0.01, generator=generator) == 2
    after = vq.codewords.detach()
    assert torch.equal(after[[0, 1, 4]], before[[0, 1, 4]])
    for row in after[[2, 3]]:  # each dead codeword is now a jittered copy of a used one
        gap = (before[[0, 1, 4]] - row).norm(dim=1).min()
        assert 0 < gap < 1e-3
    assert int(vq.codebook.usage.sum()) == 0 and int(vq.codebook.usage_batches) == 0
    assert vq.replace_dead_codes_() == 0  # nothing observed since the last call


def test_usage_weighted_rule_draws_by_usage(generator, device):
    vq = _vq_with_codewords([[0.0, 0.0], [1.0, 1.0]] + [[50.0 + i, 50.0] for i in range(30)],
                            device)
    for i in range(100):
        vq(torch.tensor([[0.0, 0.0]] if i % 10 else [[1.0, 1.0]], device=device))
    vq.replace_dead_codes_(0.01, rule=UsageWeighted(), generator=generator)
    copies_of_0 = (vq.codewords.detach()[2:].norm(dim=1) < 1e-3).sum()
    assert copies_of_0 >= 20  # codeword 0 was used 9 times as often as codeword 1


def test_tile_rule_spreads_evenly(generator, device):
    vq = _vq_with_codewords([[0.0, 0.0], [1.0, 1.0]] + [[50.0 + i, 50.0] for i in range(6)],
                            device)
    vq(torch.tensor([[0.0, 0.0], [1.0, 1.0]], device=device))
    vq.replace_dead_codes_(0.5, rule=TileUsed(), generator=generator)
    new = vq.codewords.detach()[2:]
    assert (new.norm(dim=1) < 1e-3).sum() == 3
    assert ((new - 1.0).norm(dim=1) < 1e-3).sum() == 3


def test_ema_statistics_restart_for_replaced_codewords(generator, device):
    vq = _vq_with_codewords([[0.0, 0.0], [7.0, 7.0]], device, estimator=StraightThrough(),
                            learning=EMA(decay=0.5))
    for _ in range(5):
        vq(torch.tensor([[0.0, 0.0]], device=device))
    vq.replace_dead_codes_(0.5, generator=generator)
    assert vq.codebook.ema_counts[1] == 1.0
    torch.testing.assert_close(vq.codebook.ema_sums[1], vq.codewords[1])


def test_channels_first_matches_channel_last(generator, device):
    vq = VectorQuantizer(3, 16).to(device).eval()
    x = torch.randn(2, 3, 4, 5, generator=generator).to(device)
    adapter = ChannelsFirst(vq)
    out = adapter(x)
    ref = vq(x.movedim(1, -1))
    assert torch.equal(out.quantized, ref.quantized.movedim(-1, 1))
    assert torch.equal(adapter.decode(adapter.encode(x)), out.quantized)


def test_a_generator_on_the_device_is_accepted(device):
    # On a GPU a user may seed a CUDA generator: k-means++, the NSVQ noise and both replacement
    # rules must draw from it (a CUDA generator cannot fill a CPU tensor).
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(256, 4, generator=g, device=device)
    vq = VectorQuantizer(4, 8, estimator=NoiseSubstitution(generator=g)).to(device)
    vq.init_codebook_(x, generator=g, iters=3)
    assert bool(torch.isfinite(vq(x[:32]).quantized).all())
    for rule in (TileUsed(), UsageWeighted()):
        vq(x[:1])
        assert vq.replace_dead_codes_(1.0, rule=rule, generator=g) == 7  # all but x[0]'s
