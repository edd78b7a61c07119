"""``vqkit index build --ivf`` / ``vqkit index search --nprobe`` end to end, against float64
numpy oracles: brute force over the decoded database, restricted to the lists a query probes,
with the list of every row recomputed from the index's centroids; the stored codes read back
from FAISS's inverted lists; and the user errors (exit 2, one line)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from vqkit.training.checkpoint import load_quantizer

faiss = pytest.importorskip("faiss")

NLIST, K, M = 8, 10, 4
# FAISS computes the distances in fp32; every one must be within GAP / 2 of float64, and the
# data are such that consecutive float64 distances are more than GAP apart: no rank can swap.
GAP = 1e-4


@pytest.fixture
def split(tmp_path):
    """1,000 database and 100 query vectors in 8-d, around 12 centres."""
    rng = np.random.default_rng(6)
    centres = rng.standard_normal((12, 8)) * 2
    x = centres[rng.integers(0, 12, 1100)] + rng.standard_normal((1100, 8))
    x = x.astype(np.float32)
    np.save(tmp_path / "db.npy", x[:1000])
    np.save(tmp_path / "q.npy", x[1000:])
    return tmp_path, x[:1000].astype(np.float64), x[1000:].astype(np.float64)


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def _assert_no_ties(sorted_d: np.ndarray, what: str) -> None:
    """The data have no near-ties: consecutive sorted distances are more than GAP apart."""
    finite = np.isfinite(sorted_d[:, 1:]) & np.isfinite(sorted_d[:, :-1])
    gaps = np.diff(sorted_d, axis=1)[finite]
    assert gaps.size == 0 or gaps.min() > GAP, f"near-tie in {what}: {gaps.min()}"


def _restricted_brute_force(queries, decoded, allowed, k):
    """float64 top-k of each query over the rows ``allowed[q]`` only, -1 padded as FAISS."""
    d = np.where(allowed, _sq_dist(queries, decoded), np.inf)
    order = np.argsort(d, axis=1, kind="stable")
    top = np.take_along_axis(d, order, axis=1)[:, : k + 1]
    _assert_no_ties(top, "the query-to-database distances")
    ids = np.where(np.isfinite(top[:, :k]), order[:, :k], -1)
    return ids, top[:, :k]


def _probed_rows(queries, centroids, database, nprobe):
    """``(Q, N)``: row n is in a list that query q probes (its nprobe nearest centroids)."""
    to_db = np.sort(_sq_dist(database, centroids), axis=1)[:, :2]
    _assert_no_ties(to_db, "the coarse assignment")
    assign = _sq_dist(database, centroids).argmin(axis=1)
    to_q = _sq_dist(queries, centroids)
    if nprobe < len(centroids):
        _assert_no_ties(np.sort(to_q, axis=1)[:, nprobe - 1 : nprobe + 1], "the probed lists")
    probed = np.argsort(to_q, axis=1)[:, :nprobe]
    return (assign[None, :] == probed[:, :, None]).any(axis=1), assign


def _search(vqkit, folder, index, *extra, k=K):
    ids, dist = folder / "ids.npy", folder / "d.npy"
    code, _, err = vqkit("index", "search", index, folder / "q.npy", "-k", k, "--out", ids,
                         "--distances", dist, *extra)
    assert code == 0, err
    return np.load(ids), np.load(dist).astype(np.float64)


@pytest.mark.parametrize("argv, kind", [
    (["--quantizer", "rvq", "--beam", "4"], "IndexIVFResidualQuantizer"),
    (["--quantizer", "avq", "--beam", "3"], "IndexIVFLocalSearchQuantizer"),
    (["--quantizer", "pvq"], "IndexIVFPQ"),
])
def test_ivf_index_against_float64_oracles(vqkit, split, argv, kind):
    from faiss.contrib.inspect_tools import get_invlist

    folder, db, queries = split
    ckpt, ivf, flat = folder / "q.ckpt", folder / "ivf.faiss", folder / "flat.faiss"
    # 4 x 256 codewords: 2**32 codes for 1,000 vectors, so no two share a code.
    code, _, err = vqkit("fit", folder / "db.npy", *argv, "--num-codebooks", M, "--bits", "8",
                         "--steps", "30", "-q", "-o", ckpt)
    assert code == 0, err
    code, out, err = vqkit("index", "build", ckpt, folder / "db.npy", "-o", ivf, "-q",
                           "--ivf", NLIST, "--nprobe", "3", "--coarse-iters", "50")
    assert code == 0 and f"{kind} of 1000 vectors" in out and "(nprobe 3)" in out, err
    assert vqkit("index", "build", ckpt, folder / "db.npy", "-o", flat, "-q")[0] == 0

    quantizer, _ = load_quantizer(ckpt)
    quantizer.eval()
    with torch.no_grad():
        codes = quantizer.encode(torch.from_numpy(db).float())
        decoded = quantizer.decode(codes).double().numpy()
    index = faiss.read_index(str(ivf))
    assert type(index).__name__ == kind and index.nlist == NLIST and index.nprobe == 3
    assert not index.by_residual
    centroids = index.quantizer.reconstruct_n(0, NLIST).astype(np.float64)

    # The coarse quantizer is a converged k-means of the database: every centroid is the
    # mean of the rows nearest to it.
    everything, assign = _probed_rows(queries, centroids, db, NLIST)
    for c in range(NLIST):
        np.testing.assert_allclose(centroids[c], db[assign == c].mean(axis=0), atol=1e-4)

    # Each list holds exactly the rows nearest its centroid, with their vqkit codes.
    for c in range(NLIST):
        ids, stored = get_invlist(index.invlists, c)
        assert sorted(ids.tolist()) == np.flatnonzero(assign == c).tolist()
        assert np.array_equal(stored[:, :M], codes[ids].numpy())  # 8 bits: one byte per index
        if kind != "IndexIVFPQ":  # then the norm of the decoded vector, as a float
            norms = stored[:, M:].copy().view(np.float32)[:, 0]
            np.testing.assert_allclose(norms, (decoded[ids] ** 2).sum(1), rtol=1e-5)
    index.make_direct_map()
    np.testing.assert_allclose(index.reconstruct_n(0, len(db)), decoded, atol=1e-5)

    # nprobe == nlist: the flat index's results, and float64 brute force.
    found, found_d = _search(vqkit, folder, ivf, "--nprobe", NLIST)
    flat_ids, flat_d = _search(vqkit, folder, flat)
    ref_ids, ref_d = _restricted_brute_force(queries, decoded, everything, K)
    assert np.array_equal(found, flat_ids) and np.array_equal(found, ref_ids)
    # IVF forms ||q - c_list - r||^2 from other fp32 terms than the flat index: a few ulps
    np.testing.assert_allclose(found_d, flat_d, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(found_d, ref_d, rtol=0, atol=GAP / 2)

    # nprobe < nlist, stored (3) and given: brute force over the probed lists only.
    for nprobe, extra in ((3, ()), (1, ("--nprobe", "1")), (5, ("--nprobe", "5"))):
        probed, _ = _probed_rows(queries, centroids, db, nprobe)
        found, found_d = _search(vqkit, folder, ivf, *extra)
        ref_ids, ref_d = _restricted_brute_force(queries, decoded, probed, K)
        assert np.array_equal(found, ref_ids), nprobe
        np.testing.assert_allclose(found_d, ref_d, rtol=0, atol=GAP / 2)

    # k = N: exactly the rows of the probed lists, in order, then -1 (FAISS's padding).
    for nprobe in (1, 2, NLIST - 1):
        probed, _ = _probed_rows(queries, centroids, db, nprobe)
        found, found_d = _search(vqkit, folder, ivf, "--nprobe", nprobe, k=len(db))
        for row, dist, allowed in zip(found, found_d, probed, strict=True):
            n = int(allowed.sum())
            assert sorted(row[:n].tolist()) == np.flatnonzero(allowed).tolist(), nprobe
            assert (row[n:] == -1).all() and (np.diff(dist[:n]) >= 0).all()


def test_seed_and_iterations_reach_the_coarse_kmeans(vqkit, split):
    folder, _, _ = split
    ckpt = folder / "q.ckpt"
    assert vqkit("fit", folder / "db.npy", "--quantizer", "rvq", "--num-codebooks", "2",
                 "--bits", "4", "--steps", "5", "-q", "-o", ckpt)[0] == 0

    def centroids(*argv):
        out = folder / "i.faiss"
        assert vqkit("index", "build", ckpt, folder / "db.npy", "-o", out, "-q", "--ivf",
                     "20", *argv)[0] == 0
        index = faiss.read_index(str(out))  # alive while its coarse quantizer is read
        return index.quantizer.reconstruct_n(0, 20)

    first = centroids("--seed", "1")
    assert np.array_equal(first, centroids("--seed", "1"))
    assert not np.array_equal(first, centroids("--seed", "2"))
    assert not np.array_equal(first, centroids("--seed", "1", "--coarse-iters", "0"))


def _error(vqkit, *argv):
    code, _, err = vqkit(*argv)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    return err


def test_ivf_user_errors_are_one_line_exit_2(vqkit, split, vectors, tmp_path, monkeypatch):
    folder, _, _ = split
    ckpt, db, ivf, flat = folder / "rvq.ckpt", folder / "db.npy", folder / "i.faiss", \
        folder / "f.faiss"
    assert vqkit("fit", db, "--quantizer", "rvq", "--num-codebooks", "2", "--bits", "4",
                 "--steps", "5", "-q", "-o", ckpt)[0] == 0
    assert vqkit("index", "build", ckpt, db, "-o", ivf, "-q", "--ivf", "8")[0] == 0
    assert vqkit("index", "build", ckpt, db, "-o", flat, "-q")[0] == 0
    new, ids = tmp_path / "new.faiss", folder / "ids.npy"
    build = ("index", "build", ckpt, db, "-o", new, "-q")
    assert "--ivf NLIST must be >= 1, got 0" in _error(vqkit, *build, "--ivf", "0")
    assert "nlist must be in [1, 1000]" in _error(vqkit, *build, "--ivf", "1001")
    assert "got 0" in _error(vqkit, *build, "--ivf", "8", "--nprobe", "0")
    assert "nprobe must be in [1, 8]" in _error(vqkit, *build, "--ivf", "8", "--nprobe", "9")
    assert "add --ivf NLIST" in _error(vqkit, *build, "--nprobe", "2")
    search = ("index", "search", ivf, folder / "q.npy", "--out", ids)
    assert "nprobe must be in [1, 8]" in _error(vqkit, *search, "--nprobe", "9")
    assert "got 0" in _error(vqkit, *search, "--nprobe", "0")
    assert "not to a flat IndexResidualQuantizer" in _error(
        vqkit, "index", "search", flat, folder / "q.npy", "--out", ids, "--nprobe", "1")
    fsq = tmp_path / "fsq.ckpt"
    assert vqkit("fit", vectors, "--quantizer", "fsq", "--levels", "5", "5", "5", "5", "5",
                 "5", "--steps", "2", "-q", "-o", fsq)[0] == 0
    assert "no FAISS equivalent" in _error(vqkit, "index", "build", fsq, vectors, "-o", new,
                                           "--ivf", "4")
    assert not new.exists() and not ids.exists()
    monkeypatch.setitem(sys.modules, "faiss", None)
    assert "pip install faiss-cpu" in _error(vqkit, *build, "--ivf", "8")
