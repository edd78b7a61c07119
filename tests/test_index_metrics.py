"""The one index histogram and the one perplexity against brute-force oracles, and the places
that reuse them (training's per-codebook counts, privacy's g(k), interpret's label histograms)."""

from __future__ import annotations

import math

import pytest
import torch

import vqkit.privacy
from vqkit.functional import counts_perplexity, index_histogram, perplexity, usage_fraction
from vqkit.interpret import index_histograms
from vqkit.training.evaluate import index_histogram as codebook_histograms
from vqkit.training.evaluate import usage_stats


def _oracle_counts(values: list[int], k: int) -> list[int]:
    return [sum(1 for v in values if v == j) for j in range(k)]


def _oracle_perplexity(values: list[int]) -> float:
    kept = [v for v in values if v != -1]
    if not kept:
        return 0.0
    probs = [kept.count(j) / len(kept) for j in set(kept)]
    return math.exp(-sum(p * math.log(p) for p in probs))


@pytest.mark.parametrize("seed", range(5))
def test_histogram_and_perplexity_match_the_oracle(seed):
    g = torch.Generator().manual_seed(seed)
    k = int(torch.randint(1, 20, (1,), generator=g))
    idx = torch.randint(-1, k, (int(torch.randint(0, 200, (1,), generator=g)),), generator=g)
    values = idx.tolist()
    counts = index_histogram(idx.reshape(-1, 1) if seed % 2 else idx, k)
    assert counts.dtype == torch.int64 and counts.tolist() == _oracle_counts(values, k)
    assert perplexity(idx, k) == pytest.approx(_oracle_perplexity(values), rel=1e-12)
    used = len({v for v in values if v != -1})
    assert usage_fraction(idx, k) == pytest.approx(used / k)


def test_perplexity_of_uniform_and_single_use():
    assert counts_perplexity(torch.tensor([3, 3, 3, 3])) == pytest.approx(4.0)
    assert counts_perplexity(torch.tensor([0, 7, 0])) == pytest.approx(1.0)
    assert counts_perplexity(torch.zeros(5, dtype=torch.long)) == 0.0
    assert perplexity(torch.tensor([-1, -1]), 4) == 0.0


def test_bad_indices_are_refused():
    with pytest.raises(TypeError, match="integer tensor"):
        index_histogram(torch.tensor([0.5, 1.0]), 4)
    with pytest.raises(TypeError, match="integer tensor"):
        index_histogram([0, 1], 4)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        index_histogram(torch.tensor([0, 4]), 4)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        index_histogram(torch.tensor([-2, 1]), 4)
    with pytest.raises(ValueError, match="codebook_size"):
        index_histogram(torch.tensor([0]), 0)


def test_per_codebook_counts_are_the_histogram_of_each_column():
    g = torch.Generator().manual_seed(3)
    sizes = [5, 3, 8]
    idx = torch.stack([torch.randint(-1, s, (50,), generator=g) for s in sizes], dim=1)
    counts = codebook_histograms(idx, sizes)
    for j, size in enumerate(sizes):
        assert counts[j, :size].tolist() == _oracle_counts(idx[:, j].tolist(), size)
        assert counts[j, size:].tolist() == [0] * (max(sizes) - size)
    stats = usage_stats(counts, sizes)
    want = sum(_oracle_perplexity(idx[:, j].tolist()) for j in range(3)) / 3
    assert stats["perplexity"] == pytest.approx(want, rel=1e-12)
    # curve positions are counted at the nearest codeword
    assert codebook_histograms(torch.tensor([0.4, 0.6, 2.2]), [3]).tolist() == [[1, 1, 1]]
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        codebook_histograms(torch.tensor([[0, 3]]), [5, 3])


def test_privacy_and_interpret_count_with_the_same_function():
    assert vqkit.privacy.index_histogram is index_histogram
    idx = torch.tensor([0, 2, 2, 1, 2])
    h = index_histograms(idx, ["a", "b", "b", "a", "b"], 3, window=1)
    assert h["b"].tolist() == [0.0, 0.0, 1.0]  # counts [0, 0, 3] scaled to max 1
    assert h["a"].tolist() == [1.0, 1.0, 0.0]
