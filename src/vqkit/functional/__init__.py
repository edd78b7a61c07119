"""Pure tensor functions of vqkit: search, k-means, estimators, metrics, chunking. No state."""

from .bitstream import pack_indices, unpack_indices
from .chunks import chunk_slices, map_chunks
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
from .search import nearest_indices, nearest_neighbor

__all__ = [
    "bits_per_vector",
    "chunk_slices",
    "counts_perplexity",
    "dead_codes",
    "diveq",
    "diveq_detach",
    "index_histogram",
    "kmeans",
    "kmeans_plus_plus",
    "map_chunks",
    "mse",
    "nearest_indices",
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
