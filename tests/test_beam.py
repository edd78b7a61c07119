"""Beam search oracles: exhaustive width = brute force, width 1 = a per-vector reference,
beam never loses to greedy, chunking changes nothing (on the device of ``--device``; random
draws stay on the CPU and are moved)."""

from __future__ import annotations

import itertools

import pytest
import torch

from vqkit.functional.beam import additive_beam_search, residual_beam_search

torch.set_num_threads(1)


def _books(num, size, dim, seed, device, decay=1.0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, dim, generator=g) * decay**m).to(device) for m in range(num)]


def _x(n, dim, seed, device, scale=1.0):
    return (torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)) * scale).to(device)


def _error(x, books, idx):
    xh = sum(b.double()[idx[:, m]] for m, b in enumerate(books))
    return ((x.double() - xh) ** 2).sum(-1)


def _brute_force(x, books):
    best = torch.full((x.shape[0],), float("inf"), dtype=torch.float64, device=x.device)
    for combo in itertools.product(*[range(b.shape[0]) for b in books]):
        xh = sum(b.double()[i] for b, i in zip(books, combo, strict=True))
        best = torch.minimum(best, ((x.double() - xh) ** 2).sum(-1))
    return best


def _free_order_greedy_reference(x, books):
    """Per vector, in float64: at each step the nearest unused-codebook codeword to the
    correct residual x - (sum of all chosen codewords)."""
    out = []
    for v in x.double():
        chosen: dict[int, int] = {}
        r = v.clone()
        for _ in books:
            best = None
            for m, b in enumerate(books):
                if m in chosen:
                    continue
                d = ((r - b.double()) ** 2).sum(-1)
                k = int(d.argmin())
                if best is None or float(d[k]) < best[0]:
                    best = (float(d[k]), m, k)
            _, m, k = best
            chosen[m] = k
            r = r - books[m].double()[k]
        out.append([chosen[m] for m in range(len(books))])
    return torch.tensor(out, device=x.device)


@pytest.mark.parametrize("use_lut", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_additive_exhaustive_width_equals_brute_force(seed, use_lut, device):
    books = _books(3, 4, 3, seed, device)
    x = _x(150, 3, 100 + seed, device, scale=2)
    # W >= M K and >= the number of partial sets C(3, 2) 4^2 = 48: nothing is ever pruned.
    idx = additive_beam_search(x, books, width=64, use_lut=use_lut)
    torch.testing.assert_close(_error(x, books, idx), _brute_force(x, books), rtol=1e-5, atol=1e-5)


def test_residual_exhaustive_width_equals_brute_force(device):
    books = _books(3, 5, 4, 3, device, decay=0.7)
    x = _x(150, 4, 7, device)
    idx = residual_beam_search(x, books, width=25)
    torch.testing.assert_close(_error(x, books, idx), _brute_force(x, books), rtol=1e-5, atol=1e-5)


def test_additive_width_one_uses_the_correct_residual(device):
    books = _books(4, 8, 5, 11, device)
    x = _x(120, 5, 12, device, scale=2)
    idx = additive_beam_search(x, books, width=1)
    ref = _free_order_greedy_reference(x, books)
    torch.testing.assert_close(_error(x, books, idx), _error(x, books, ref), rtol=1e-5, atol=1e-5)
    assert (idx == ref).all(dim=1).float().mean() > 0.97  # identical up to fp32 near-ties


@pytest.mark.parametrize("search", [additive_beam_search, residual_beam_search])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_never_loses_to_greedy_in_mse(search, seed, device):
    books = _books(4, 16, 8, seed, device, decay=0.8)
    x = _x(1500, 8, 50 + seed, device)
    greedy = _error(x, books, search(x, books, width=1)).mean()
    beam = _error(x, books, search(x, books, width=8)).mean()
    wider = _error(x, books, search(x, books, width=32)).mean()
    assert beam < greedy and wider <= beam * 1.0001


@pytest.mark.parametrize("search", [additive_beam_search, residual_beam_search])
def test_chunking_changes_nothing(search, device):
    books = _books(3, 16, 6, 5, device)
    x = _x(333, 6, 6, device)
    full = search(x, books, width=8)
    assert torch.equal(search(x, books, width=8, chunk_elements=1000), full)
    assert torch.equal(search(x, books, width=8, chunk_elements=1), full)


def test_additive_order_is_free(device):
    # The best first codeword comes from the last codebook.
    a = torch.tensor([[0.0, 0.0], [0.0, 1.0]], device=device)
    b = torch.tensor([[0.0, 0.0], [1.0, 0.0]], device=device)
    c = torch.tensor([[0.0, 0.0], [50.0, 50.0]], device=device)
    idx = additive_beam_search(torch.tensor([[51.0, 51.0]], device=device), [a, b, c], width=1)
    assert idx.tolist() == [[1, 1, 1]]


def test_width_larger_than_the_pool_and_one_codebook(device):
    books = _books(2, 3, 2, 9, device)
    x = torch.randn(20, 2).to(device)
    torch.testing.assert_close(
        _error(x, books, additive_beam_search(x, books, width=100)), _brute_force(x, books)
    )
    one = additive_beam_search(x, books[:1], width=4)
    assert one.shape == (20, 1)


def test_bad_arguments(device):
    books = _books(2, 4, 3, 0, device)
    with pytest.raises(ValueError, match="width"):
        additive_beam_search(torch.randn(2, 3, device=device), books, width=0)
    with pytest.raises(ValueError, match=r"codebooks\[1\]"):
        residual_beam_search(torch.randn(2, 3, device=device),
                             [books[0], torch.randn(4, 2, device=device)], width=2)
    with pytest.raises(ValueError, match="2-D"):
        additive_beam_search(torch.randn(3, device=device), books, width=2)


@pytest.mark.parametrize("dim", [8, 200])
def test_gram_table_search_equals_direct_search(dim, device):
    books = _books(4, 32, dim, 21, device, decay=0.8)
    x = _x(300, dim, 22, device)
    direct = additive_beam_search(x, books, width=8, use_lut=False)
    table = additive_beam_search(x, books, width=8, use_lut=True)
    torch.testing.assert_close(_error(x, books, table), _error(x, books, direct),
                               rtol=1e-5, atol=1e-5)
    assert (table == direct).all(dim=1).float().mean() > 0.99
    assert torch.equal(additive_beam_search(x, books, width=8, use_lut=True, chunk_elements=1),
                       table)
