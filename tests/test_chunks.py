"""The one chunked loop: slices, progress reports, and results equal to all rows at once."""

from __future__ import annotations

import pytest
import torch

from vqkit import AdditiveVQ, ProductVQ, ResidualVQ, SpaceFillingVQ, VectorQuantizer
from vqkit.functional.chunks import chunk_slices, map_chunks


def test_slices_cover_the_rows_in_order_and_report_rows_done():
    seen = []
    slices = list(chunk_slices(7, 3, lambda d, t, i: seen.append((d, t, i))))
    assert [(s.start, s.stop) for s in slices] == [(0, 3), (3, 6), (6, 7)]
    assert seen == [(3, 7, {}), (6, 7, {}), (7, 7, {})]


def test_progress_follows_the_consumer():
    """A chunk is reported done only once the caller asks for the next one."""
    seen = []
    it = chunk_slices(4, 2, lambda d, t, i: seen.append(d))
    next(it)
    assert seen == []
    next(it)
    assert seen == [2]


def test_no_rows_reports_zero_of_zero_once():
    seen = []
    assert list(chunk_slices(0, 5, lambda d, t, i: seen.append((d, t)))) == []
    assert seen == [(0, 0)]


@pytest.mark.parametrize(("n", "chunk"), [(-1, 2), (3, 0)])
def test_bad_sizes_raise(n, chunk):
    with pytest.raises(ValueError, match=str(n if n < 0 else chunk)):
        list(chunk_slices(n, chunk))


def test_map_chunks_keeps_the_leading_axes_and_equals_one_call():
    x = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(0))
    seen = []
    out = map_chunks(lambda v: v.cumsum(-1), x, chunk=4, progress=lambda d, t, i: seen.append(d))
    assert torch.equal(out, x.cumsum(-1))
    assert seen == [4, 8, 12, 15]
    per_row = map_chunks(lambda v: v.flatten(1).sum(1), x, tail=2, chunk=2)
    assert torch.equal(per_row, x.flatten(1).sum(1))
    ids = torch.arange(10).reshape(2, 5)
    assert torch.equal(map_chunks(lambda i: i * 2, ids, tail=0, chunk=3), ids * 2)


def test_map_chunks_of_no_rows_asks_fn_for_the_shape():
    out = map_chunks(lambda v: v[:, :2].long(), torch.empty(0, 4), chunk=3)
    assert out.shape == (0, 2) and out.dtype == torch.long


def test_map_chunks_rejects_a_bad_tail_and_a_fn_that_drops_rows():
    with pytest.raises(ValueError, match="tail"):
        map_chunks(lambda v: v, torch.zeros(2, 3), tail=3)
    with pytest.raises(ValueError, match="returned 1 rows for 2"):
        map_chunks(lambda v: v[:1], torch.zeros(4, 3), chunk=2)


QUANTIZERS = [
    lambda: VectorQuantizer(6, 32),
    lambda: ResidualVQ(6, 8, 3),
    lambda: ProductVQ(6, 8, 2),
    lambda: AdditiveVQ(6, 8, 2),
    lambda: SpaceFillingVQ(6, 16),
]


@pytest.mark.parametrize("make", QUANTIZERS, ids=["vq", "rvq", "pvq", "avq", "sfvq"])
def test_encode_and_decode_in_chunks_equal_all_at_once(make):
    """Eval-mode encode / decode treat each vector on its own: any chunk size gives the same
    indices and reconstructions, bit for bit."""
    torch.manual_seed(0)
    q = make().eval()
    x = torch.randn(3, 333, 6, generator=torch.Generator().manual_seed(1)) * 2
    indices = q.encode(x)
    tail = len(q.index_shape)
    for chunk in (1, 7, 100, 5000):
        assert torch.equal(map_chunks(q.encode, x, chunk=chunk), indices)
        assert torch.equal(map_chunks(q.decode, indices, tail=tail, chunk=chunk),
                           q.decode(indices))
