"""nearest_neighbor against a brute-force oracle: ties, chunk boundaries, fp32 and bf16 autocast
(on the device of ``--device``; random draws stay on the CPU and are moved)."""

from __future__ import annotations

import pytest
import torch

from vqkit.functional import nearest_neighbor


def oracle(x: torch.Tensor, c: torch.Tensor, k: int = 1):
    """Slow and obvious: every distance in float64 as a sum of squared differences, then a
    stable sort (ties to the lowest index)."""
    d = ((x.double()[:, None, :] - c.double()[None, :, :]) ** 2).sum(-1)
    vals, idx = torch.sort(d, dim=1, stable=True)
    return vals[:, :k], idx[:, :k]


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("chunk_elements", [1, 7 * 33, 1 << 24])
def test_exact_ties_go_to_the_lowest_index(k, chunk_elements, generator, device):
    # Small integers make every distance exact in fp32, so ties are real ties.
    c = torch.randint(-3, 4, (33, 5), generator=generator).float()
    c = torch.cat([c, c[:10]]).to(device)  # duplicated rows: exact ties at higher indices
    x = torch.randint(-3, 4, (101, 5), generator=generator).float().to(device)
    d, i = nearest_neighbor(x, c, k, chunk_elements=chunk_elements)
    od, oi = oracle(x, c, k)
    assert torch.equal(i, oi)
    assert torch.equal(d.double(), od)


@pytest.mark.parametrize("n,size,chunk_elements", [(1000, 64, 64 * 17), (257, 300, 299), (5, 9, 1)])
def test_random_inputs_match_the_oracle(n, size, chunk_elements, generator, device):
    x = torch.randn(n, 16, generator=generator).to(device)
    c = torch.randn(size, 16, generator=generator).to(device)
    d, i = nearest_neighbor(x, c, k=2, chunk_elements=chunk_elements)
    od, oi = oracle(x, c, k=2)
    # Where the best two are not within rounding of each other the choice must agree exactly.
    clear = (od[:, 1] - od[:, 0]) > 1e-4
    assert clear.float().mean() > 0.95
    assert torch.equal(i[clear, 0], oi[clear, 0])
    torch.testing.assert_close(d.double(), od, rtol=1e-4, atol=1e-4)


def test_bf16_autocast_still_searches_in_fp32(generator, device):
    x = torch.randn(500, 32, generator=generator).to(device)
    c = torch.randn(256, 32, generator=generator).to(device)
    _, expected = oracle(x, c)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        d, i = nearest_neighbor(x, c)
        d16, i16 = nearest_neighbor(x.bfloat16(), c)
    assert d.dtype == torch.float32
    od, oi = oracle(x, c, 2)
    clear = (od[:, 1] - od[:, 0]) > 1e-4
    assert torch.equal(i[clear], expected[clear])
    # bf16 inputs are searched exactly as their fp32 values would be.
    _, from_bf16 = oracle(x.bfloat16().float(), c)
    od16, _ = oracle(x.bfloat16().float(), c, 2)
    clear16 = (od16[:, 1] - od16[:, 0]) > 1e-4
    assert torch.equal(i16[clear16], from_bf16[clear16])


def test_small_chunks_agree_with_one_block(generator, device):
    # 16-row chunks (2^16 elements of 4096 columns) against one 4096-row block: the chunked
    # search must not change any answer. (Peak memory is measured in benchmarks/layer_speed.py.)
    x = torch.randn(20000, 8, generator=generator).to(device)
    c = torch.randn(4096, 8, generator=generator).to(device)
    _, small = nearest_neighbor(x, c, chunk_elements=1 << 16)
    _, big = nearest_neighbor(x, c)
    assert torch.equal(small, big)


def test_argument_errors(device):
    with pytest.raises(ValueError, match="dimension"):
        nearest_neighbor(torch.randn(3, 4, device=device), torch.randn(5, 3, device=device))
    with pytest.raises(ValueError, match="k must be"):
        nearest_neighbor(torch.randn(3, 4, device=device), torch.randn(5, 4, device=device), k=6)
    with pytest.raises(ValueError, match="2-D"):
        nearest_neighbor(torch.randn(4, device=device), torch.randn(5, 4, device=device))


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("chunk_elements", [1, 7 * 33, 1 << 24])
def test_nearest_indices_are_the_brute_force_indices(k, chunk_elements, generator, device):
    from vqkit.functional import nearest_indices

    # Ties (duplicated codewords, small integers) and a large common offset, where the
    # expansion cancels and only the re-rank gets the answer right.
    c = torch.randint(-3, 4, (33, 5), generator=generator).float()
    c = torch.cat([c, c[:10]])
    x = torch.randint(-3, 4, (101, 5), generator=generator).float()
    for offset in (0.0, 1e6):
        xs, cs = (x + offset).to(device), (c + offset).to(device)
        got = nearest_indices(xs, cs, k, chunk_elements=chunk_elements)
        assert got.dtype == torch.long and got.shape == (101, k)
        assert torch.equal(got, oracle(xs, cs, k)[1].to(device)), offset
        assert torch.equal(got, nearest_neighbor(xs, cs, k, chunk_elements=chunk_elements)[1])


def test_nearest_indices_rejects_what_nearest_neighbor_rejects():
    from vqkit.functional import nearest_indices

    bad = torch.zeros(4, 3)
    bad[2, 1] = float("nan")
    for args, message in (((torch.zeros(5, 3), torch.zeros(4, 2)), "dimension"),
                          ((torch.zeros(5, 3), torch.zeros(4, 3), 5), "k must be"),
                          ((torch.zeros(5, 3), bad), "row 2")):
        with pytest.raises(ValueError, match=message):
            nearest_indices(*args)


@pytest.mark.parametrize("size", [96, 100, 256, 1024])
def test_first_argmin_is_torch_argmin_with_ties_across_blocks_and_nan(size, generator):
    from vqkit.functional.search import argmin_and_runner_up, first_argmin

    # Small integers: most rows hold their minimum several times, in different blocks.
    d = torch.randint(0, 6, (300, size), generator=generator).float()
    d[7, 3] = float("nan")
    d[8] = float("nan")
    assert torch.equal(first_argmin(d), d.argmin(dim=1))
    clean = torch.randn(300, size, generator=generator)
    clean[5, 2] = clean[5, 33] = clean[5].min() - 1  # one tie in two strided blocks
    vals, idx, runner_up = argmin_and_runner_up(clean)
    ordered = clean.sort(dim=1).values
    assert torch.equal(vals[:, 0], ordered[:, 0]) and torch.equal(runner_up[:, 0], ordered[:, 1])
    assert torch.equal(clean.gather(1, idx), vals)
    assert int(first_argmin(clean)[5]) == 2
    with pytest.raises(ValueError, match="2-D"):
        first_argmin(torch.zeros(4))


def test_ties_across_argmin_blocks_go_to_the_lowest_index(generator):
    # 256 codewords (the strided-block path), with duplicates 37 rows apart: every query
    # equal to a duplicated codeword ties between two blocks.
    c = torch.randint(-3, 4, (256, 4), generator=generator).float()
    c[37:74] = c[:37]
    x = torch.cat([c[:37], torch.randint(-3, 4, (200, 4), generator=generator).float()])
    d, i = nearest_neighbor(x, c)
    od, oi = oracle(x, c)
    assert torch.equal(i, oi) and torch.equal(d.double(), od)
