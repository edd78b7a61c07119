"""Interpretation tools that use the order of a space-filling VQ's codewords.

- :mod:`.directions`: curve positions of inputs and unit directions between consecutive
  codewords (the interpretable directions of [vali2025ganlatent]);
- :mod:`.histograms`: per-label index histograms smoothed by a Blackman window of 7 and the
  Jensen-Shannon distance matrix between label groups ([vali2023sfvq] Fig. 3a-b, Fig. 4);
- :mod:`.structure`: the codeword distance matrix and the index transition matrix;
- their PNG figures: :func:`vqkit.plotting.label_histograms` and :func:`vqkit.plotting.matrix`.
"""

from .directions import curve_positions, nearest_corner, unit_directions
from .histograms import (
    index_histograms,
    jensen_shannon_distance,
    jensen_shannon_matrix,
    smooth_histogram,
)
from .structure import codeword_distances, transition_matrix

__all__ = [
    "codeword_distances",
    "curve_positions",
    "index_histograms",
    "jensen_shannon_distance",
    "jensen_shannon_matrix",
    "nearest_corner",
    "smooth_histogram",
    "transition_matrix",
    "unit_directions",
]
