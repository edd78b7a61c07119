"""Pure tensor functions of vqkit: search, k-means, estimators, metrics. No state."""

from .bitstream import pack_indices, unpack_indices
from .estimators import diveq, diveq_detach, noise_substitution, rotate_to, straight_through
from .kmeans import kmeans, kmeans_plus_plus
from .metrics import (
    bits_per_vector,
    counts_perplexity,
    dead_codes,
    index_histogram,
    mse,
    perplexity,
    psnr,
    usage_fraction,
)
from .search import nearest_neighbor

__all__ = [
    "bits_per_vector",
    "counts_perplexity",
    "dead_codes",
    "diveq",
    "diveq_detach",
    "index_histogram",
    "kmeans",
    "kmeans_plus_plus",
    "mse",
    "nearest_neighbor",
    "noise_substitution",
    "pack_indices",
    "perplexity",
    "psnr",
    "rotate_to",
    "straight_through",
    "unpack_indices",
    "usage_fraction",
]
