"""The look-up-table residual beam search (FAISS's ``use_beam_LUT``) against oracles: a float64
beam search over explicit residuals of all beams (exact on integer data, ties included), the
direct search, and FAISS's ``ResidualQuantizer`` fed the same codebooks; and the blocked
selection against a stable sort."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vqkit.functional.beam import residual_beam, residual_beam_search
from vqkit.functional.beam_select import smallest, smallest_blocked

torch.set_num_threads(1)


def reference_residual_beam(x: torch.Tensor, books: list[torch.Tensor], width: int,
                            last: int = 1):
    """Float64 stage-ordered beam search: every beam's residual ``x - s_b`` is formed
    explicitly and compared with every codeword of the stage; the ``width`` best (beam,
    codeword) pairs survive, ordered by error, then beam rank, then codeword index. The last
    stage keeps ``last``: ``(n, M)`` for 1 (the best tuple), else ``(n, last, M)``."""
    x = x.double()
    books = [b.double() for b in books]
    n = x.shape[0]
    sums = torch.zeros(n, 1, x.shape[1], dtype=torch.float64)
    paths = torch.zeros(n, 1, 0, dtype=torch.long)
    for m, c in enumerate(books):
        err = (x[:, None, None, :] - sums[:, :, None, :] - c).pow(2).sum(-1)  # (n, B, K)
        keep = min(last if m == len(books) - 1 else width, err.shape[1] * err.shape[2])
        order = torch.sort(err.reshape(n, -1), dim=1, stable=True).indices[:, :keep]
        beam, code = order // c.shape[0], order % c.shape[0]
        paths = torch.cat([paths.gather(1, beam[..., None].expand(-1, -1, m)),
                           code[..., None]], dim=2)
        sums = sums.gather(1, beam[..., None].expand(-1, -1, x.shape[1])) + c[code]
    return paths[:, 0] if last == 1 else paths


def _integer_problem(n, num, size, dim, span, seed):
    """Small integers: every distance, product and partial sum is exact in fp32, so any
    correct search returns the oracle's indices exactly, ties included. The first codebook
    holds each row and its negation, so its mean (by which the search centres) is exactly 0."""
    g = torch.Generator().manual_seed(seed)
    books = [torch.randint(-span, span + 1, (size, dim), generator=g).float() for _ in range(num)]
    books[0] = torch.cat([books[0][: size // 2], -books[0][: size // 2]])
    x = torch.randint(-3 * span, 3 * span + 1, (n, dim), generator=g).float()
    return x, books


@pytest.mark.parametrize("width", [1, 2, 5, 32])
@pytest.mark.parametrize("span", [2, 50])
def test_table_search_equals_the_float64_oracle_exactly(width, span):
    # span 2: codewords on a tiny grid, so distances tie everywhere and only the tie rule
    # (error, then beam rank, then codeword index) gives the oracle's answer.
    x, books = _integer_problem(300, 4, 64, 4, span, seed=span + width)
    ref = reference_residual_beam(x, books, width)
    for use_lut in (True, False):
        got = residual_beam_search(x, books, width, use_lut=use_lut)
        assert torch.equal(got, ref), f"use_lut={use_lut}: {(got != ref).any(1).sum()} rows"


@pytest.mark.parametrize("width", [2, 5, 32])
def test_whole_beam_equals_the_float64_oracle_exactly(width):
    # residual_beam keeps the whole final beam, best first: the oracle's last stage keeps
    # `width` tuples too (span 2: ties everywhere, so the order rule is checked as well).
    for span in (2, 50):
        x, books = _integer_problem(300, 4, 64, 4, span, seed=7 * span + width)
        ref = reference_residual_beam(x, books, width, last=width)
        for use_lut in (True, False):
            got = residual_beam(x, books, width, use_lut=use_lut)
            assert got.shape == (300, width, 4)
            assert torch.equal(got, ref), f"use_lut={use_lut}, span={span}"
            assert torch.equal(got[:, 0], residual_beam_search(x, books, width, use_lut=use_lut))


def test_whole_beam_holds_every_tuple_when_the_width_exceeds_them():
    x, books = _integer_problem(50, 2, 4, 3, 20, seed=4)
    got = residual_beam(x, books, width=40)
    assert got.shape == (50, 16, 2)  # min(W, K^M) tuples, each once
    assert all(len({tuple(t) for t in row.tolist()}) == 16 for row in got)


def test_table_search_equals_the_direct_search_on_glove_sized_books():
    # 8 codebooks x 256 (64 bits) on 50-d floats: the scale of the GloVe benchmark.
    g = torch.Generator().manual_seed(3)
    books = [torch.randn(256, 50, generator=g) * 0.8**m for m in range(8)]
    x = torch.randn(400, 50, generator=g) * 1.5 + 3.0  # an offset: the search centres
    for width in (1, 5, 32):
        direct = residual_beam_search(x, books, width, use_lut=False)
        table = residual_beam_search(x, books, width, use_lut=True)
        assert torch.equal(table, direct), width


def test_table_search_chunks_and_reports_progress():
    x, books = _integer_problem(333, 4, 32, 6, 20, seed=9)
    calls = []
    full = residual_beam_search(x, books, 8, use_lut=True)
    parts = residual_beam_search(x, books, 8, use_lut=True, chunk_elements=1000,
                                 progress=lambda done, total, info: calls.append((done, total)))
    assert torch.equal(parts, full)
    assert len(calls) > 1 and calls[-1] == (333, 333)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


@pytest.mark.parametrize("width", [1, 5, 8])
@pytest.mark.parametrize("faiss_lut", [0, 1])
def test_residual_beam_search_equals_faiss_codes(width, faiss_lut):
    faiss = pytest.importorskip("faiss")
    num, bits, dim = 4, 5, 12
    g = torch.Generator().manual_seed(width)
    books = [torch.randn(2**bits, dim, generator=g) * 0.7**m for m in range(num)]
    x = torch.randn(800, dim, generator=g)
    rq = faiss.ResidualQuantizer(dim, num, bits)
    faiss.copy_array_to_vector(torch.cat(books).numpy().ravel(), rq.codebooks)
    rq.is_trained = True
    rq.max_beam_size = width
    rq.use_beam_LUT = faiss_lut
    if faiss_lut:
        rq.compute_codebook_tables()
    codes = faiss.unpack_bitstrings(rq.compute_codes(x.numpy()), num, bits)
    theirs = torch.from_numpy(np.asarray(codes)).long().reshape(len(x), num)
    for use_lut in (True, False):
        ours = residual_beam_search(x, books, width, use_lut=use_lut)
        assert torch.equal(ours, theirs), f"use_lut={use_lut}: {(ours != theirs).any(1).sum()}"


@pytest.mark.parametrize(("n", "k"), [(8192, 32), (1280, 5), (10240, 8), (4096, 1), (96, 5)])
def test_blocked_selection_equals_the_stable_sort(n, k):
    g = torch.Generator().manual_seed(n + k)
    real = torch.randn(40, n, generator=g)
    grid = torch.randint(0, 6, (40, n), generator=g).float()  # ties at every rank
    grid[:3] = float("inf")
    grid[3:6, ::3] = float("inf")
    grid[6:9] = -0.0
    for d in (real, grid):
        vals, idx = smallest_blocked(d, k)
        ref_vals, ref_idx = torch.sort(d, dim=1, stable=True)
        assert torch.equal(idx, ref_idx[:, :k]) and torch.equal(vals, ref_vals[:, :k])


def test_blocked_selection_refuses_a_non_matrix():
    with pytest.raises(ValueError, match="2-D"):
        smallest_blocked(torch.zeros(2, 3, 4), 1)


@pytest.mark.parametrize("k", [1, 16, 60])
def test_selection_with_planted_ties_equals_the_stable_sort(k):
    """Ties inside the k smallest (index-ordered only), at the k-th / (k+1)-th place with few
    equal entries (resolved from a 4k-wide selection) and with hundreds (the stable sort)."""
    g = torch.Generator().manual_seed(k)
    d = torch.randn(60, 2048, generator=g)
    order = d.argsort(dim=1)
    rows = torch.arange(20)
    d[rows, order[:20, k // 2 + 1]] = d[rows, order[:20, k // 2]]  # a tie inside the set
    d[rows + 20, order[20:40, k]] = d[rows + 20, order[20:40, k - 1]]  # a tie at the boundary
    d[rows + 20, order[20:40, k + 3]] = d[rows + 20, order[20:40, k - 1]]  # and one more
    d[40:] = torch.randint(0, 3, (20, 2048), generator=g).float()  # ~680 of each value
    vals, idx = smallest(d, k)
    ref_vals, ref_idx = torch.sort(d, dim=1, stable=True)
    assert torch.equal(idx, ref_idx[:, :k]) and torch.equal(vals, ref_vals[:, :k])
