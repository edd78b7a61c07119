"""The FAISS bridge is exact: codes, decoded vectors and search results equal ours, both ways."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

faiss = pytest.importorskip("faiss")

from vqkit.apps.ann import faiss_bridge as fb  # noqa: E402
from vqkit.apps.ann.evaluate import adc_search  # noqa: E402
from vqkit.quantizers.additive import AdditiveVQ  # noqa: E402
from vqkit.quantizers.encoders import BeamSearch, Greedy  # noqa: E402
from vqkit.quantizers.product import ProductVQ  # noqa: E402
from vqkit.quantizers.residual import ResidualVQ  # noqa: E402

DIM = 16


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    # Correlated, anisotropic data, so the codebooks (and the codes) are far from trivial.
    mix = torch.randn(DIM, DIM, generator=g) * torch.linspace(2.0, 0.2, DIM)
    return torch.randn(1500, DIM, generator=g) @ mix


def _fitted(q, x: torch.Tensor):
    q.init_codebook_(x[:1000], generator=torch.Generator().manual_seed(0))
    return q.eval()


def _unpack(codes: np.ndarray, num: int, nbits: int) -> np.ndarray:
    return faiss.unpack_bitstrings(np.ascontiguousarray(codes), num, nbits).astype(np.int64)


@pytest.mark.parametrize("nbits", [8, 5])
def test_product_export_codes_and_decode_are_equal(data, nbits):
    pvq = _fitted(ProductVQ(DIM, 2**nbits, 4), data)
    x = data[1000:]
    idx = pvq.encode(x)
    pq = fb.to_faiss_quantizer(pvq)
    assert isinstance(pq, faiss.ProductQuantizer)
    assert (pq.M, pq.nbits, pq.dsub) == (4, nbits, DIM // 4)
    codes = pq.compute_codes(x.numpy())
    np.testing.assert_array_equal(_unpack(codes, 4, nbits), idx.numpy())
    np.testing.assert_array_equal(codes, fb.pack_indices(pq, idx))
    np.testing.assert_array_equal(pq.decode(codes), pvq.decode(idx).detach().numpy())


def test_residual_greedy_equals_faiss_beam_1(data):
    rvq = _fitted(ResidualVQ(DIM, 16, 4, encoder=Greedy()), data)
    x = data[1000:]
    rq = fb.to_faiss_quantizer(rvq)
    assert rq.max_beam_size == 1
    codes = rq.compute_codes(x.numpy())
    idx = rvq.encode(x)
    np.testing.assert_array_equal(_unpack(codes, 4, 4), idx.numpy())
    np.testing.assert_array_equal(rq.decode(codes), rvq.decode(idx).detach().numpy())
    # FAISS's default beam (5) is not greedy: the export must set it, or codes differ.
    rq.max_beam_size = 5
    assert not np.array_equal(_unpack(rq.compute_codes(x.numpy()), 4, 4), idx.numpy())


def test_residual_beam_equals_faiss_beam(data):
    rvq = _fitted(ResidualVQ(DIM, 16, 4, encoder=BeamSearch(5)), data)
    x = data[1000:]
    rq = fb.to_faiss_quantizer(rvq)
    assert rq.max_beam_size == 5
    np.testing.assert_array_equal(_unpack(rq.compute_codes(x.numpy()), 4, 4),
                                  rvq.encode(x).numpy())


@pytest.mark.parametrize("make", [
    lambda: ProductVQ(DIM, 16, 4),
    lambda: ResidualVQ(DIM, 16, 4),
    lambda: AdditiveVQ(DIM, 16, 4, encoder=BeamSearch(4)),
], ids=["pq", "rvq", "avq"])
def test_exported_index_decodes_and_searches_like_ours(data, make):
    q = _fitted(make(), data)
    db, queries = data[1000:1400], data[1400:1450]
    idx = q.encode(db)
    index = fb.to_faiss(q, db)
    assert index.ntotal == len(db)
    decoded = q.decode(idx).detach()
    codes = fb.pack_indices(index, idx)
    np.testing.assert_array_equal(index.sa_decode(codes), decoded.numpy())
    dist, found = fb.search(index, queries, 10)
    assert found.dtype == torch.int64 and dist.shape == (50, 10)
    torch.testing.assert_close(found, adc_search(queries, decoded, 10), rtol=0, atol=0)
    ref = torch.cdist(queries.double(), decoded.double()).pow(2).gather(1, found).float()
    torch.testing.assert_close(dist, ref, rtol=1e-4, atol=1e-3)


def test_additive_export_keeps_our_codes_not_lsq_encoding(data):
    avq = _fitted(AdditiveVQ(DIM, 16, 4, encoder=BeamSearch(4)), data)
    db = data[1000:1200]
    index = fb.to_faiss(avq, db)
    stored = _unpack(faiss.vector_to_array(index.codes).reshape(len(db), -1), 4, 4)
    np.testing.assert_array_equal(stored, avq.encode(db).numpy())


def test_import_product_and_residual_encode_like_faiss(data):
    x = data[:1000].numpy()
    pq = faiss.ProductQuantizer(DIM, 4, 6)
    pq.train(x)
    rq = faiss.ResidualQuantizer(DIM, 3, 5)
    rq.max_beam_size = 1
    rq.train(x)
    test = data[1000:]
    for fq, nbits, num, cls in [(pq, 6, 4, ProductVQ), (rq, 5, 3, ResidualVQ)]:
        q = fb.from_faiss(fq)
        assert type(q) is cls and q.codebook_size == 2**nbits and q.num_codebooks == num
        codes = fq.compute_codes(test.numpy())
        idx = torch.from_numpy(_unpack(codes, num, nbits))
        torch.testing.assert_close(q.encode(test), idx, rtol=0, atol=0)
        np.testing.assert_array_equal(fq.decode(codes), q.decode(idx).detach().numpy())
    assert fb.from_faiss(rq).encoder == Greedy()


def test_import_lsq_and_index_decodes_like_faiss(data):
    index = faiss.IndexLocalSearchQuantizer(DIM, 2, 4, faiss.METRIC_L2,
                                            faiss.AdditiveQuantizer.ST_norm_float)
    index.lsq.train_iters = 2
    index.train(data[:1000].numpy())
    avq = fb.from_faiss(index)
    assert isinstance(avq, AdditiveVQ) and avq.num_codebooks == 2
    codes = index.lsq.compute_codes(data[1000:].numpy())
    idx = torch.from_numpy(_unpack(codes, 2, 4))
    np.testing.assert_array_equal(index.lsq.decode(codes), avq.decode(idx).detach().numpy())


def test_round_trip_keeps_codebooks(data):
    for q in (ProductVQ(DIM, 16, 2), ResidualVQ(DIM, 16, 3), AdditiveVQ(DIM, 16, 2)):
        back = fb.from_faiss(fb.to_faiss_quantizer(_fitted(q, data)))
        torch.testing.assert_close(back.codewords, q.codewords, rtol=0, atol=0)


def test_bad_inputs_raise_clear_errors(data):
    with pytest.raises(ValueError, match="power of two"):
        fb.to_faiss_quantizer(ResidualVQ(DIM, 12, 2))
    with pytest.raises(TypeError, match="ProductVQ, ResidualVQ or AdditiveVQ"):
        fb.to_faiss(torch.nn.Linear(2, 2))  # type: ignore[arg-type]
    pq = fb.to_faiss_quantizer(ProductVQ(DIM, 16, 4))
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        fb.pack_indices(pq, torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="complete"):
        fb.pack_indices(pq, torch.full((3, 4), -1))
    index = fb.to_faiss(ProductVQ(DIM, 16, 4), data[:20])
    with pytest.raises(ValueError, match="k must be in"):
        fb.search(index, data[:2], 21)
    with pytest.raises(ValueError, match="trained"):
        fb.from_faiss(faiss.IndexPQ(DIM, 4, 4))


def test_missing_faiss_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        fb.require_faiss()
