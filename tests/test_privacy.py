"""PORCUPINE: disclosure metrics against their formulas, occurrence normalisation on Gaussians."""

from __future__ import annotations

import math

import pytest
import torch

from vqkit import VectorQuantizer, fit_space_filling
from vqkit.functional.kmeans import kmeans
from vqkit.privacy import (
    average_disclosure,
    index_histogram,
    kl_divergence_to_binomial,
    occurrence_normalise,
    privacy_metrics,
    resample_curve,
    sparseness,
    std_of_counts,
    worst_case_disclosure,
    worst_case_disclosure_plus_one,
)

torch.set_num_threads(1)


def _kl_oracle(g: list[int]) -> float:
    """Exact binomial pmf with math.comb, histogram of histograms by counting."""
    m, k = sum(g), len(g)
    total = 0.0
    for n in set(g):
        f_hat = g.count(n) / k
        # f = comb(m, n) (1/k)^n ((k-1)/k)^(m-n), as an exact fraction num / den.
        num, den = math.comb(m, n) * (k - 1) ** (m - n), k**m
        total += f_hat * (math.log2(f_hat) - math.log2(num) + math.log2(den))
    return total


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_their_formulas(seed):
    gen = torch.Generator().manual_seed(seed)
    k = int(torch.randint(2, 12, (1,), generator=gen))
    g = torch.randint(1, 30, (k,), generator=gen)
    gl = g.tolist()
    m = sum(gl)
    assert kl_divergence_to_binomial(g) == pytest.approx(_kl_oracle(gl), rel=1e-9, abs=1e-9)
    assert worst_case_disclosure(g) == pytest.approx(-math.log2(min(gl) / m))
    assert worst_case_disclosure_plus_one(g) == pytest.approx(-math.log2((min(gl) + 1) / m))
    p = [x / m for x in gl]
    assert average_disclosure(g) == pytest.approx(-sum(q * math.log2(q) for q in p))
    assert sparseness(g) == pytest.approx(math.sqrt(sum(x * x for x in gl)) / m)
    mean = m / k
    assert std_of_counts(g) == pytest.approx(math.sqrt(sum((x - mean) ** 2 for x in gl) / k))


def test_metric_limits():
    uniform = torch.full((16,), 640)
    met = privacy_metrics(uniform)
    assert met.worst_case_disclosure == pytest.approx(4.0)
    assert met.average_disclosure == pytest.approx(4.0)
    assert met.sparseness == pytest.approx(0.25) and met.std == 0.0
    # All 16 bins at the binomial mode: KL = -log2 f(640), about 6.9 bits, finite.
    assert met.kl_divergence == pytest.approx(_kl_oracle([640] * 16), rel=1e-9)
    skewed = torch.tensor([10240 - 15] + [1] * 15)
    assert privacy_metrics(skewed).kl_divergence > 1000  # far in the tail, still finite
    assert math.isinf(worst_case_disclosure(torch.tensor([3, 0, 5])))
    assert worst_case_disclosure_plus_one(torch.tensor([3, 0, 5])) == pytest.approx(3.0)


def test_bad_histograms():
    with pytest.raises(ValueError, match="counts"):
        sparseness(torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match="1-D"):
        std_of_counts(torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        index_histogram(torch.tensor([0, 4]), 4)


def test_resample_curve_equal_chunks():
    pts = torch.arange(10.0).unsqueeze(1)
    torch.testing.assert_close(resample_curve(pts, 3).flatten(), torch.tensor([1.5, 5.0, 8.0]))
    with pytest.raises(ValueError, match="codebook_size"):
        resample_curve(pts, 11)


def test_occurrence_normalisation_on_gaussians_beats_vq():
    """Anisotropic Gaussian 'embeddings': the normalised codebook spreads the held-out
    vectors far more evenly over the indices than minimum-MSE VQ (k-means)."""
    gen = torch.Generator().manual_seed(0)
    scale = torch.linspace(2.0, 0.2, 8)
    train = torch.randn(8192, 8, generator=gen) * scale
    test = torch.randn(4096, 8, generator=gen) * scale
    k = 16
    sf = fit_space_filling(train, 4, epochs_per_stage=3, lr=1e-2, generator=gen)
    norm_vq = occurrence_normalise(sf, train)
    assert isinstance(norm_vq, VectorQuantizer) and norm_vq.codebook_size == k
    # On the training set itself every index is used by about M/K vectors.
    g_train = index_histogram(norm_vq.encode(train), k)
    assert g_train.min() > 0.5 * 8192 / k
    plain = VectorQuantizer(8, k).eval()
    centres = kmeans(train, k, generator=torch.Generator().manual_seed(1))
    plain.codebook.overwrite_(torch.arange(k), centres)
    m_norm = privacy_metrics(index_histogram(norm_vq.encode(test), k))
    m_vq = privacy_metrics(index_histogram(plain.encode(test), k))
    assert m_norm.std < 0.7 * m_vq.std
    assert m_norm.kl_divergence < m_vq.kl_divergence
    assert m_norm.worst_case_disclosure < m_vq.worst_case_disclosure
    assert m_norm.sparseness < m_vq.sparseness


def test_occurrence_normalise_rejects_plain_vq():
    with pytest.raises(TypeError, match="SpaceFillingVQ"):
        occurrence_normalise(VectorQuantizer(4, 8), torch.randn(20, 4))


def test_occurrence_normalise_oracle_on_a_known_curve():
    """Data lying on a hand-set U-shaped curve: every projection is the point itself, so the
    codewords must be the means of equal chunks of the points sorted by their arc position t
    (a sort by segment only, by lambda only, or from the far end gives other codewords)."""
    from vqkit import SpaceFillingVQ

    corners = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    sf = SpaceFillingVQ(2, 4).eval()
    with torch.no_grad():
        sf.codebook.corners[:4] = corners
    gen = torch.Generator().manual_seed(0)
    t = 3.0 * torch.rand(999, generator=gen).pow(2)  # skewed density along the curve
    seg = t.floor().long().clamp(max=2)
    lam = (t - seg).unsqueeze(1)
    x = (1 - lam) * corners[seg] + lam * corners[seg + 1]
    vq = occurrence_normalise(sf, x, codebook_size=6)
    chunks = torch.tensor_split(x[t.argsort()], 6)  # sizes 167, 167, 167, 166, 166, 166
    expected = torch.stack([c.mean(0) for c in chunks])
    torch.testing.assert_close(vq.codewords, expected, atol=1e-5, rtol=0)
    # Nearest-codeword cells are not the chunks, but close to them on this curve.
    counts = torch.bincount(vq.encode(x), minlength=6)
    assert counts.min() > 100 and counts.max() < 240
