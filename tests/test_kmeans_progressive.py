"""Progressive-dimension k-means (FAISS's ProgressiveDimClustering) and its PCA rotation.

Oracles: numpy's float64 eigendecomposition of the covariance for the principal axes; a
float64 numpy re-implementation of the whole procedure (rotate, cluster the leading
coordinates with growing dimension from zero-padded centres, rotate back) started from the
same seeds; FAISS's dimension formula; FAISS's own ProgressiveDimClustering where installed.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from vqkit.functional.kmeans import dimension_schedule, kmeans, seed_centres
from vqkit.functional.pca import principal_axes
from vqkit.functional.search import nearest_neighbor


def _correlated(n: int = 3000, d: int = 12, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) * torch.logspace(1, -1, d)[:, None]
    return torch.randn(n, d, generator=g) @ mix + 5.0


def test_principal_axes_match_numpy_float64_eigenvectors():
    x = _correlated().double()  # fp64 data: fp64 products throughout
    pa = principal_axes(x)
    xd = x.double().numpy()
    values, vectors = np.linalg.eigh(np.cov(xd, rowvar=False, bias=True))
    order = np.argsort(values)[::-1]
    ours = pa.axes.numpy()
    np.testing.assert_allclose(pa.mean.numpy(), xd.mean(0), rtol=1e-12)
    for j, col in enumerate(order):  # the same axis up to its sign
        ref = vectors[:, col] * np.sign(vectors[:, col] @ ours[:, j])
        np.testing.assert_allclose(ours[:, j], ref, atol=1e-8)
    y = pa.rotate(x.double())
    variances = y.var(0, unbiased=False).numpy()
    np.testing.assert_allclose(variances, values[order], rtol=1e-8)
    assert np.all(np.diff(variances) <= 0)  # leading coordinates carry the most variance
    torch.testing.assert_close(pa.restore(y), x.double(), rtol=0, atol=1e-9)
    # restore of a prefix pads the missing coordinates with zeros (the mean there)
    torch.testing.assert_close(pa.restore(y[:, :3]), pa.restore(
        torch.nn.functional.pad(y[:, :3], (0, 9))), rtol=0, atol=1e-12)
    # fp32 data: fp32 products, the same axes to fp32 accuracy (well-separated variances)
    pa32 = principal_axes(x.float())
    signs = torch.sign((pa32.axes * pa.axes).sum(0))
    torch.testing.assert_close(pa32.axes * signs, pa.axes, rtol=0, atol=1e-3)
    assert pa32.rotate(x.float()).dtype == torch.float32


def test_dimension_schedule_is_faiss_geometric_growth():
    for dim, steps in ((784, 10), (50, 10), (8, 3), (1, 4)):
        want = [int(math.pow(dim, (1.0 + i) / steps)) for i in range(steps)]
        assert dimension_schedule(dim, steps) == want[:-1] + [dim]
    assert dimension_schedule(784, 1) == [784]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError):
            dimension_schedule(10, bad)


def test_dimension_schedule_rejects_a_dim_that_is_not_a_positive_int():
    for bad in (0, -3, 2.5, True, "8"):
        with pytest.raises(ValueError, match=re.escape(f"dim={bad!r}")):
            dimension_schedule(bad, 3)


def _reference(x: np.ndarray, seeds_1d: np.ndarray, axes: np.ndarray, dims: list[int],
               iters: int) -> np.ndarray:
    """The procedure in float64 numpy: rotate, Lloyd on growing prefixes, rotate back."""
    mean = x.mean(0)
    y = (x - mean) @ axes
    c = seeds_1d[:, : dims[0]].astype(np.float64)
    for dim in dims:
        c = np.pad(c, ((0, 0), (0, dim - c.shape[1])))
        for _ in range(iters):
            d2 = ((y[:, None, :dim] - c[None]) ** 2).sum(-1)
            idx = d2.argmin(1)
            new = c.copy()
            for k in np.unique(idx):
                new[k] = y[idx == k, :dim].mean(0)
            if np.array_equal(new, c):
                break
            c = new
    return c @ axes[:, : c.shape[1]].T + mean


def test_progressive_kmeans_equals_a_float64_reference_from_the_same_seeds():
    x = _correlated(n=1500, d=10, seed=1)
    k, steps, iters = 8, 4, 6
    dims = dimension_schedule(10, steps)
    pa = principal_axes(x)
    seeds = seed_centres(pa.rotate(x)[:, : dims[0]], k,
                         generator=torch.Generator().manual_seed(5))
    ours = kmeans(x, k, iters=iters, dim_steps=steps, generator=torch.Generator().manual_seed(5))
    ref = _reference(x.double().numpy(), seeds.double().numpy(), pa.axes.numpy(), dims, iters)
    # the same centres, in any order (k-means++ in 1-D ties nothing here)
    d, _ = nearest_neighbor(torch.from_numpy(ref).float(), ours)
    assert float(d.max()) < 1e-6 * float(x.pow(2).sum(1).mean())


def test_progressive_kmeans_recovers_separated_clusters_in_the_original_coordinates():
    g = torch.Generator().manual_seed(2)
    centres = 20 * torch.randn(6, 32, generator=g) + 100.0  # far from the origin: the mean
    x = centres.repeat_interleave(150, 0) + 0.1 * torch.randn(900, 32, generator=g)
    found = kmeans(x, 6, iters=20, dim_steps=5, generator=g)
    d, _ = nearest_neighbor(centres, found)
    assert d.max() < 0.05


def test_progress_counts_every_step_and_dim_steps_one_is_plain_kmeans():
    x = _correlated(n=600, d=6, seed=3)
    seen = []
    kmeans(x, 5, iters=4, dim_steps=3, generator=torch.Generator().manual_seed(0),
           progress=lambda done, total, info: seen.append((done, total)))
    assert seen[-1] == (5 + 3 * 4, 5 + 3 * 4)
    assert all(total == 17 for _, total in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    plain = kmeans(x, 5, iters=4, generator=torch.Generator().manual_seed(0))
    one = kmeans(x, 5, iters=4, dim_steps=1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(plain, one)


def test_progressive_kmeans_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        kmeans(torch.tensor([[0.0, 1.0], [float("nan"), 0.0], [1.0, 1.0]]), 2, dim_steps=2)
    with pytest.raises(ValueError, match="steps"):
        kmeans(torch.randn(10, 3), 2, dim_steps=0)


def test_progressive_kmeans_is_as_good_as_faiss_progressive_dim_clustering():
    """On clustered 64-d data with decaying variances, our objective averaged over 3 seeds
    is no worse than FAISS's own ProgressiveDimClustering's with the same steps, iterations
    and seeding (5 % slack: single seeds vary by tens of percent either way)."""
    faiss = pytest.importorskip("faiss")
    g = torch.Generator().manual_seed(4)
    modes = 30 * torch.randn(40, 64, generator=g) @ torch.diag(torch.logspace(0, -1.5, 64))
    x = modes[torch.randint(0, 40, (4000,), generator=g)] + torch.randn(4000, 64, generator=g)
    xn = np.ascontiguousarray(x.numpy())

    def objective(c):
        return float(nearest_neighbor(x, c)[0].sum())

    ours, theirs = [], []
    for seed in range(3):
        ours.append(objective(kmeans(x, 32, iters=10, dim_steps=10, seeding="random",
                                     generator=torch.Generator().manual_seed(seed))))
        cp = faiss.ProgressiveDimClusteringParameters()
        cp.seed = seed
        clus = faiss.ProgressiveDimClustering(64, 32, cp)
        clus.train(len(xn), faiss.swig_ptr(xn), faiss.ProgressiveDimIndexFactory())
        theirs.append(objective(torch.from_numpy(
            faiss.vector_to_array(clus.centroids).reshape(32, 64))))
    assert sum(ours) <= 1.05 * sum(theirs)


def test_residual_init_runs_every_codebooks_kmeans_progressively():
    """Through the layer: ResidualVQ.init_codebook_(dim_steps=3) gives codebook 0 the
    progressive k-means of the data, and codebook 1 that of the greedy residuals."""
    from vqkit import ResidualVQ

    x = _correlated(n=800, d=6, seed=6)
    q = ResidualVQ(6, 16, 2)
    seen = []
    q.init_codebook_(x, generator=torch.Generator().manual_seed(9), iters=5, dim_steps=3,
                     progress=lambda done, total, info: seen.append(total))
    assert set(seen) == {2 * (16 + 3 * 5)}
    g = torch.Generator().manual_seed(9)
    first = kmeans(x, 16, iters=5, dim_steps=3, generator=g)
    torch.testing.assert_close(q.codebooks[0].effective_codewords(), first)
    residual = x - first[nearest_neighbor(x, first)[1][:, 0]]
    second = kmeans(residual, 16, iters=5, dim_steps=3, generator=g)
    torch.testing.assert_close(q.codebooks[1].effective_codewords(), second)
    with pytest.raises(ValueError, match="dim_steps"):
        q.init_codebook_(x, dim_steps=0)


def test_principal_axes_reject_bad_input_naming_it():
    for bad in (torch.randn(5), torch.randn(5, 2, 2), torch.empty(5, 0)):
        with pytest.raises(ValueError, match=re.escape(str(tuple(bad.shape)))):
            principal_axes(bad)
    with pytest.raises(ValueError, match="got 0"):
        principal_axes(torch.empty(0, 3))
    for value in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="NaN or infinite"):
            principal_axes(torch.tensor([[0.0, value], [1.0, 2.0]]))
    for dtype in (torch.int64, torch.bool, torch.complex64):
        with pytest.raises(TypeError, match=str(dtype)):
            principal_axes(torch.ones(4, 2, dtype=dtype))


def test_principal_axes_of_half_precision_data_are_those_of_its_values():
    """fp16 / bf16 data: the axes of the same (rounded) values in float64 numpy. A product
    in fp16 overflows (X^T X of 3000 centred rows with variances up to ~100 exceeds 65504)
    and one in bf16 turns the axes by tens of degrees."""
    x = _correlated(n=3000, d=8, seed=7)
    for dtype in (torch.float16, torch.bfloat16):
        xh = x.to(dtype)
        pa = principal_axes(xh)
        values, vectors = np.linalg.eigh(np.cov(xh.double().numpy(), rowvar=False, bias=True))
        ref = vectors[:, ::-1]
        signs = np.sign((ref * pa.axes.numpy()).sum(0))
        np.testing.assert_allclose(pa.axes.numpy(), ref * signs, atol=2e-3, err_msg=str(dtype))


def test_progressive_kmeans_takes_any_real_dtype_as_fp32_and_rejects_bad_shapes():
    """As the plain k-means: integer, bool and half-precision data are clustered as their
    fp32 values (the same centres as kmeans of x.float()); a tensor that is not (N, D) and a
    dim_steps that is not an int >= 1 are rejected, naming them."""
    x = _correlated(n=400, d=6, seed=8)
    for data in ((x * 3).round().long(), x > 5, x.half(), x.bfloat16()):
        got = kmeans(data, 4, iters=3, dim_steps=3, generator=torch.Generator().manual_seed(1))
        want = kmeans(data.float(), 4, iters=3, dim_steps=3,
                      generator=torch.Generator().manual_seed(1))
        assert torch.equal(got, want), data.dtype
    with pytest.raises(ValueError, match=re.escape("(10,)")):
        kmeans(torch.randn(10), 2, dim_steps=2)
    for bad in (True, 2.5, "3", None):
        with pytest.raises(ValueError, match=re.escape(f"steps={bad!r}")):
            kmeans(x, 2, dim_steps=bad)


def test_residual_init_progress_runs_once_through_every_codebooks_steps():
    """Codebook m's reports (seeds, then dim_steps * iters Lloyd iterations) fill the m-th
    share of the total, in order; the last report is the total."""
    from vqkit import ResidualVQ

    x = _correlated(n=500, d=6, seed=10)
    seen = []
    ResidualVQ(6, 8, 3).init_codebook_(
        x, generator=torch.Generator().manual_seed(0), iters=4, dim_steps=3,
        progress=lambda done, total, info: seen.append((done, total, info["codebook"])))
    share = 8 + 3 * 4
    dones = [done for done, _, _ in seen]
    assert dones == sorted(dones) and dones[-1] == 3 * share
    assert {total for _, total, _ in seen} == {3 * share}
    for done, _, m in seen:
        assert m * share < done <= (m + 1) * share, (done, m)


def test_rotate_restore_and_lloyd_reject_mismatched_widths_naming_the_shape():
    from vqkit.functional.kmeans import lloyd

    pa = principal_axes(_correlated(n=100, d=4))
    for call, bad in ((pa.rotate, torch.randn(3, 5)), (pa.rotate, torch.randn(3, 3)),
                      (pa.rotate, torch.randn(4)), (pa.restore, torch.randn(3, 5)),
                      (pa.restore, torch.randn(3))):
        with pytest.raises(ValueError, match=re.escape(str(tuple(bad.shape)))):
            call(bad)
    assert pa.restore(torch.randn(3, 2)).shape == (3, 4)  # a prefix of the coordinates
    with pytest.raises(ValueError, match=re.escape("(6, 3) and (2, 4)")):
        lloyd(torch.randn(6, 3), torch.randn(2, 4), 3)
    with pytest.raises(ValueError, match=re.escape("(6,) and (2, 1)")):
        lloyd(torch.randn(6), torch.randn(2, 1), 3)


def test_rotate_to_a_width_is_the_prefix_of_the_full_rotation_and_checks_it():
    x = _correlated(n=200, d=6)
    pa = principal_axes(x)
    full = pa.rotate(x)
    for width in (1, 4, 6):
        torch.testing.assert_close(pa.rotate(x, width=width), full[:, :width], rtol=0,
                                   atol=1e-4)
    for bad in (0, 7, 2.0, True):
        with pytest.raises(ValueError, match=re.escape(f"got {bad!r}")):
            pa.rotate(x, width=bad)


def test_cluster_sums_equal_float64_one_hot_sums_bit_for_bit_with_whole_conversion():
    from vqkit.functional.kmeans import SUM_BLOCK_ROWS, cluster_sums

    gen = torch.Generator().manual_seed(3)
    x = torch.randn(SUM_BLOCK_ROWS * 2 + 37, 5, generator=gen) * 1e3 + 1e4
    idx = torch.randint(0, 6, (x.shape[0],), generator=gen)
    got = cluster_sums(x, idx, 7)  # cluster 6 is empty
    assert got.dtype == torch.float64 and got.shape == (7, 5)
    one_hot = torch.nn.functional.one_hot(idx, 7).double()
    torch.testing.assert_close(got, one_hot.t() @ x.double(), rtol=1e-13, atol=0)
    assert torch.equal(got, torch.zeros(7, 5, dtype=torch.float64).index_add_(0, idx, x.double()))
    assert torch.equal(got[6], torch.zeros(5, dtype=torch.float64))
    with pytest.raises(ValueError, match=re.escape("(3,)")):
        cluster_sums(x[:3], idx[:4], 7)
