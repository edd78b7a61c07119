"""Seeded NSVQ training must reach stated quality on data where the codebook matters.

The D = 8, K = 64 Gaussian mixture of ``vqkit.experiments.nsvq_toy`` (16 components): NSVQ +
dead-code replacement, trained alone from the default U(-1/K, 1/K) codebook, must come within
5 % of k-means run to convergence, clearly below a codebook of random training vectors, and
use at least 95 % of its codewords. (STE and the other rows are reported by
``vqkit reproduce nsvq-toy`` in results/nsvq_toy.json.)
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from vqkit import NoiseSubstitution
from vqkit.experiments.nsvq_toy import MIXTURE, mixture_data, quantization_mse, train_standalone
from vqkit.functional import kmeans, usage_fraction


def test_nsvq_with_replacement_reaches_kmeans_quality():
    train, test = mixture_data(seed=0)
    size = MIXTURE.codebook_size

    def sample(n, g):
        return train[torch.randint(0, train.shape[0], (n,), generator=g)]

    km = kmeans(train, size, iters=500, generator=torch.Generator().manual_seed(0))
    kmeans_mse = quantization_mse(km, test)
    pick = torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(0))[:size]
    random_mse = quantization_mse(train[pick], test)

    vq = train_standalone(NoiseSubstitution(), sample, replace_every=100,
                          replace_until=int(0.8 * MIXTURE.steps), seed=0, **asdict(MIXTURE))
    nsvq_mse = quantization_mse(vq.codewords.detach(), test)
    usage = usage_fraction(vq.encode(test), size)

    assert nsvq_mse <= 1.05 * kmeans_mse, (nsvq_mse, kmeans_mse)
    assert nsvq_mse < 0.8 * random_mse, (nsvq_mse, random_mse)
    assert usage >= 0.95, usage
