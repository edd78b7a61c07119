"""ANN search on Fashion-MNIST 784-d: vqkit PQ / RVQ / AVQ against FAISS PQ, RQ and LSQ.

[vali2023rpavq] Fig. 5 (the thesis's SIFT1M Recall@T experiment) on other data, in the
standard protocol of ANN benchmarks ([xiao2017fashionmnist] raw pixels 0..255, L2): the
60,000 training images are the database and the training set, the 10,000 test images the
queries. 32 and 64 bits (4 and 8 codebooks of 256 entries). The ``small`` variant keeps the
sizes the benchmark had before (2,500 / 2,500 / 250) for quick runs.
"""

from __future__ import annotations

from ..apps.ann.config import BenchmarkConfig, Init, Schedule, Split
from ._ann import ann_reproduction

#: NSVQ's lr in pixel units (0..255), chosen on 1,000 validation vectors carved from the
#: training images; the progressive-dimension k-means (FAISS RQ's) in 5 steps from random
#: seeds (FAISS's seeding) and RVQ's encoding beam of 8, on 5,000 of the 60,000 (docs/ann.md,
#: "How the recipe was chosen").
CONFIG = BenchmarkConfig(Split(n_train=60_000, n_database=60_000, n_queries=10_000),
                         Schedule(steps=1000, batch_size=1024, lr=3.0, replace_every=0),
                         Init(beam=4, dim_steps=5, seeding="random"), validation=5_000,
                         encode_beam=4, rvq_encode_beam=8)
SMALL = BenchmarkConfig(Split(n_train=2_500, n_database=2_500, n_queries=250),
                        Schedule(steps=100, batch_size=256, lr=3.0, replace_every=0),
                        Init(beam=4), validation=250, encode_beam=4)
QUICK = BenchmarkConfig(
    # FAISS RQ's progressive-dimension training runs a PCA: it needs n_train >= D = 784.
    Split(n_train=800, n_database=800, n_queries=50),
    Schedule(steps=10, batch_size=128, replace_every=0), Init(beam=2, dim_steps=3),
    validation=100,
    codebook_size=16, num_codebooks=(2, 4), encode_beam=2, rq_beams=(1, 5), recall_max=100,
)

REPRODUCTION = ann_reproduction(
    "ann-fashion", "fashion", title="ANN search on Fashion-MNIST-784", settings=CONFIG,
    quick_settings=QUICK, small_settings=SMALL,
    description="ANN on Fashion-MNIST-784 (raw pixels, L2; 60k train = database, 10k test "
    "queries): vqkit PQ/RVQ/AVQ exported to FAISS, vs FAISS",
    expected_minutes=90.0, quick_minutes=0.32,
)
