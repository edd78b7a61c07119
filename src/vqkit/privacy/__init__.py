"""Privacy PORCUPINE ([vali2024porcupine]).

- :func:`occurrence_normalise`: resample an SFVQ curve into K codewords that each receive the
  same number of training vectors, so every index is shared by about M/K speakers;
- :mod:`.metrics`: the disclosure metrics of a test-set index histogram (KL divergence to
  Binomial(M, 1/K), worst-case and average disclosure, l2/l1 sparseness, standard deviation);
- :func:`index_histogram`: the histogram ``g`` of test-set indices those metrics take, which
  is :func:`vqkit.functional.index_histogram` (re-exported here).
"""

from ..functional.metrics import index_histogram
from ..space_filling.normalisation import occurrence_normalise, resample_curve
from .metrics import (
    PrivacyMetrics,
    average_disclosure,
    kl_divergence_to_binomial,
    privacy_metrics,
    sparseness,
    std_of_counts,
    worst_case_disclosure,
    worst_case_disclosure_plus_one,
)

__all__ = [
    "PrivacyMetrics",
    "average_disclosure",
    "index_histogram",
    "kl_divergence_to_binomial",
    "occurrence_normalise",
    "privacy_metrics",
    "resample_curve",
    "sparseness",
    "std_of_counts",
    "worst_case_disclosure",
    "worst_case_disclosure_plus_one",
]
